"""NUL and control characters in intake text (issue 10 item 4), SQLite and PostgreSQL: one rule for every channel
(kb.ingest.intake_text): the HTTP ticket routes, the IM webhook, e-mail and the workflow itself remove NUL, C0 and C1
controls (tab and line breaks kept) instead of refusing the ticket; article bodies and search queries keep
refusing NUL with 422 and store nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kb.desk.channels.email import handle_message
from kb.desk.workflow import Closure
from kb.ingest.intake_text import clean_strings, clean_text
from kb.models import Article, Ticket
from tests.helpers import kb_of, mail, onebot, post_im

DIRTY = "打印机\x00脱机\x1b[31m红色\x7f\x85\x9f\t第二列\r\n第二行\x0b\x0c"
CLEAN = "打印机脱机[31m红色\t第二列\n第二行"


def test_the_rule() -> None:
    assert clean_text(DIRTY) == CLEAN
    assert clean_text("单独\r回车") == "单独\n回车" and clean_text("孤立\ud800代理") == "孤立代理"
    nested = {"a\x00": ["x\x01", {"b": "y\x00"}, 3, None, True], "n": 1.5}
    assert clean_strings(nested) == {"a": ["x", {"b": "y"}, 3, None, True], "n": 1.5}
    deep: object = "z\x00"
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [deep]
    out = clean_strings(deep)
    for _ in range(5000):
        assert isinstance(out, list)
        out = out[0]
    assert out == "z"


def test_http_ticket_routes_remove_controls_instead_of_refusing(client: TestClient) -> None:
    made = client.post(
        "/tickets",
        json={
            "title": DIRTY,
            "description": DIRTY,
            "service": "日常服务",
            "requester": "王\x00强",
            "category": "事\x1f件",
        },
    )
    assert made.status_code == 201, made.text
    tid = made.json()["ticket"]["id"]
    ticket = kb_of(client).desk.get(tid)
    assert (ticket.title, ticket.description, ticket.requester, ticket.category) == (CLEAN, CLEAN, "王强", "事件")
    assert client.post(f"/tickets/{tid}/notes", json={"text": "备注\x00内容\x07"}).status_code == 200
    assert kb_of(client).desk.get(tid).work_notes.endswith("备注内容")
    assert client.post(f"/tickets/{tid}/assign", json={"group": "服务台\x00"}).status_code == 200
    escalated = client.post(f"/tickets/{tid}/escalate", json={"reason": "需要\x00二线"})
    assert escalated.status_code == 200, escalated.text
    reasons = [e.data.get("reason") for e in kb_of(client).desk.events(tid) if e.kind == "escalated"]
    assert reasons == ["需要二线"]
    assert client.post(f"/tickets/{tid}/status", json={"status": "in_progress"}).status_code == 200
    assert client.post(f"/tickets/{tid}/status", json={"status": "resolved"}).status_code == 200
    closed = client.post(f"/tickets/{tid}/close", json={"resolution": "重启\x00服务", "root_cause": "进程\x1b挂起"})
    assert closed.status_code == 200, closed.text
    assert (kb_of(client).desk.get(tid).resolution, kb_of(client).desk.get(tid).root_cause) == ("重启服务", "进程挂起")
    only_controls = client.post("/tickets", json={"title": "\x00\x01", "service": "日常服务"})
    assert only_controls.status_code == 422  # nothing left: "A ticket needs a title."


def test_im_and_e_mail_take_the_same_rule(client: TestClient) -> None:
    kb = kb_of(client)
    answer = post_im(client, onebot(7001, "VPN\x00 连不上\x1b 提示 809"))
    assert answer.status_code == 200, answer.text
    result = handle_message(kb.tickets, bytes(mail("邮件\x00标题", "正文\x00内容\x85")), "日常服务")
    with kb.database.session() as session:
        texts = [(t.title, t.description) for t in session.scalars(select(Ticket).order_by(Ticket.id))]
    assert texts[0][0] == "VPN 连不上 提示 809" and "\x00" not in texts[0][1]
    assert texts[1] == ("邮件标题", "正文内容") and result.ticket_id


def test_the_workflow_cleans_what_other_callers_store(client: TestClient) -> None:
    """The pages and the library call the workflow directly: it applies the same rule."""
    kb = kb_of(client)
    tid = client.post("/tickets", json={"title": "工单", "service": "日常服务"}).json()["ticket"]["id"]
    assert kb.desk.note(tid, "页面\x00备注", "dev").work_notes.endswith("页面备注")
    kb.desk.assign(tid, "服务台", "dev")
    kb.desk.move(tid, "in_progress", "dev")
    kb.desk.move(tid, "resolved", "dev")
    closed = kb.desk.close(tid, Closure("解决\x00", "原因\x01", comment="满意\x00"), "dev")
    assert (closed.resolution, closed.root_cause, closed.satisfaction_comment) == ("解决", "原因", "满意")


def test_other_fields_keep_refusing_nul_and_store_nothing(client: TestClient) -> None:
    refused = client.post("/articles", json={"body": "# 标题\n正文\u0000"})
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_input"
    assert "NUL" in refused.json()["detail"]
    assert client.get("/search", params={"q": "打印\x00机"}).status_code == 422
    with kb_of(client).database.session() as session:
        assert session.scalar(select(func.count()).select_from(Article)) == 0
