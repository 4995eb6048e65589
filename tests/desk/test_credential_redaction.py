"""Credentials in imported ticket text never reach a distilled draft, similar tickets or a new ticket's answer.

Six alike closed tickets are imported through ``POST /ingest/tickets`` (kb-zh), distilled through
``POST /ingest/distill``, read back as the editor who has no ``ticket.read``, and suggested through ``POST /suggest``
and the ticket page, as session 9's outside tester did (M6).
"""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from kb.desk.similar import WITHHELD
from tests.desk.conftest import as_user
from tests.helpers import kb_of, sysadmin

pytestmark = pytest.mark.security

HEADER = ["工单号", "标题", "问题描述", "工单类别", "服务类型", "处理组", "状态", "报告时间", "关闭时间", "解决方案"]
SECRETS = ("S3cretRoot!9", "Tr4d1t10nal!", "sk-live-abcdef123456", "abcdef123456", "Adm1n:Pw", "一三八一二三四五六七八")
RESOLUTION = (
    "登录数据库 mysql -uroot -pS3cretRoot!9 -h 10.2.3.4 重建报表视图；新密碼 Tr4d1t10nal! 已告知用户；"
    "接口配置 api_key=sk-live-abcdef123456；curl -u admin:Adm1n:Pw 验证；回访手机一三八一二三四五六七八"
)
TITLE = "报表系统打开报错 视图不存在"


def _export() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for n in range(1, 7):
        description = f"打开报表系统提示视图不存在，报表无法生成，第 {n} 次报修"
        writer.writerow(
            [f"RPT-{n:03d}", TITLE, description, "事件", "日常服务", "数据组", "已关闭",
             f"2026-11-0{n}T09:00:00+08:00", f"2026-11-0{n}T10:00:00+08:00", RESOLUTION]
        )  # fmt: skip
    return out.getvalue().encode("utf-8")


def _leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_credentials_never_reach_a_draft_or_the_similar_tickets(client: TestClient) -> None:
    """Found by session 9's outside tester: ``-pPASS``, traditional 密碼, ``api_key=sk-…`` (and ``-u user:pass``,
    Chinese-digit phones) in six alike tickets reached the distilled draft, readable by a kb_editor without
    ``ticket.read``, and ``/suggest`` showed them in ``similar_tickets[].resolution`` (M6)."""
    imported = (
        sysadmin(client).post("/ingest/tickets", params={"mapping": "kb-zh", "format": "csv"}, content=_export()).json()
    )
    assert imported["created"] == 6, imported
    report = client.post("/ingest/distill", params={"source": "kb-zh"}).json()
    assert report["groups"] == 1 and report["drafts"][0]["size"] == 6, report
    draft_id = report["drafts"][0]["article_id"]

    editor = as_user(client, "ed.only", ["kb_editor"])
    draft = editor.get(f"/articles/{draft_id}").json()
    assert draft["status"] == "draft"
    assert _leaked(draft["body"] + draft["title"] + draft["html"]) == []
    assert "-p[密码]" in draft["body"] and "api_key=[密钥]" in draft["body"] and "[手机号]" in draft["body"]
    assert "-h 10.2.3.4" in draft["body"]  # the fix still reads
    assert _leaked(editor.get(f"/articles/{draft_id}/markdown").text) == []

    kb_of(client).ticket_vectors.embed_closed()
    asked = {"title": TITLE, "description": "报表系统打开提示视图不存在", "service": "日常服务"}
    similar = client.post("/suggest", json=asked).json()["similar_tickets"]
    assert {s["external_id"] for s in similar} <= {f"RPT-{n:03d}" for n in range(1, 7)} and similar
    assert all((s["title"], s["resolution"]) == (WITHHELD, WITHHELD) for s in similar)
    assert _leaked(str(similar)) == []

    opened = client.post("/tickets", json=asked).json()  # intake answers the same suggestions, recorded
    assert opened["suggestions"]["similar_tickets"] and _leaked(str(opened)) == []
    assert _leaked(client.get(f"/tickets/{opened['ticket']['id']}").text) == []
