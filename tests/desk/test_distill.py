"""Distillation of closed tickets into draft KCS articles: grouping, clearest resolution, redaction, update proposals.

tests/data/tickets-zh-distill.csv holds Chinese tickets in our export layout, written after common desk cases (the
people and numbers are made up): five "VPN connected but OA times out" tickets, five "printer offline" tickets, three
others (one still open). A published article about the printer fix exists before distilling.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from kb.articles.content import ArticleContent
from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.ingest.tickets import import_tickets
from kb.models import Ticket
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import EXPORT, SHARED

PRINTER_ARTICLE = """# 打印机显示脱机的处理

## 症状

打印机显示脱机，打印任务排队，无法打印。

## 解决方法

重启 Print Spooler（打印后台处理程序）服务，清空打印队列。
"""


def _kb(tmp_path: Path, analyzer: TextAnalyzer, **overrides: object) -> KnowledgeBase:
    settings = Settings(data_dir=tmp_path, embedding_model="hash", distill_min_group=4, **overrides)  # type: ignore[arg-type]
    return KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()


def test_alike_tickets_become_drafts_and_known_fixes_become_update_proposals(
    tmp_path: Path, analyzer: TextAnalyzer
) -> None:
    kb = _kb(tmp_path, analyzer, distill_similarity=0.5)
    try:
        printer = kb.writer.create(ArticleContent(title="打印机显示脱机的处理", body=PRINTER_ARTICLE), "editor")
        assert printer.article is not None
        assert import_tickets(kb.database, EXPORT, "kb-zh").created == 13
        report = kb.distiller.distill("distiller")
        assert report.tickets == 12  # the open ticket is not distilled
        by_proposal = {g.proposal: g for g in report.groups}
        assert set(by_proposal) == {"create", "update"} and len(report.groups) == 2

        vpn = kb.store.get(by_proposal["create"].article_id or 0)
        assert vpn.status == "draft" and vpn.kind == "troubleshooting" and vpn.service == "日常服务"
        sections = vpn.body.split("## ")
        assert [s.split("\n")[0] for s in sections[1:]] == ["症状", "环境", "原因", "解决方法", "适用范围"]
        # The clearest resolution is the one most tickets agree on, not the terse "重连".
        assert "补充 OA 网段路由" in vpn.body.split("## 解决方法")[1] and "VPN 网关路由表缺少 OA 网段" in vpn.body
        assert sorted(vpn.meta["distilled_from"]["tickets"]) == [f"INC-100{i}" for i in range(1, 6)]
        for secret in ("13812345678", "wang.qiang@example.com", "010-62345678", "张伟", "李娜"):
            assert secret not in vpn.body and secret not in vpn.title

        proposal = kb.store.get(by_proposal["update"].article_id or 0)
        assert proposal.meta["proposal"] == "update" and proposal.meta["target_article"] == printer.article.id
        assert proposal.title == "更新建议：打印机显示脱机的处理" and proposal.status == "draft"
        assert "Print Spooler" in proposal.body

        published, _ = kb.store.list_articles(ArticleFilter())
        assert [a.id for a in published] == [printer.article.id]  # nothing reaches agents before review
        with kb.database.session() as session:
            marked = session.scalars(select(Ticket.distilled_into).where(Ticket.distilled_into.is_not(None))).all()
        assert len(marked) == 10
        assert kb.distiller.distill("distiller").groups == []  # a re-run makes no second draft
    finally:
        kb.close()


def test_real_english_tickets_distil_into_drafts(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    import csv
    import io
    import zipfile

    archive = SHARED / "data/tickets/it-tickets-en/all_tickets_processed_improved_v3.csv.zip"
    with zipfile.ZipFile(archive) as zf, zf.open(zf.namelist()[0]) as raw:
        rows = list(csv.reader(io.TextIOWrapper(raw, encoding="utf-8")))[:1501]
    export = tmp_path / "first-1500.csv"
    with export.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    kb = _kb(tmp_path / "data", analyzer)
    try:
        import_tickets(kb.database, export, "it-tickets-en")
        report = kb.distiller.distill("distiller").as_dict()
        assert report["tickets"] == 1500 and report["groups"] >= 5
        assert all(d["size"] >= 4 and d["proposal"] == "create" for d in report["drafts"])
        biggest = kb.store.get(report["drafts"][0]["article_id"])
        assert biggest.status == "draft" and "## 适用范围" in biggest.body
        assert biggest.tags and biggest.tags[0] in {"Hardware", "HR Support", "Access", "Miscellaneous", "Purchase"}
    finally:
        kb.close()


def test_common_features_never_bring_back_what_redaction_removed(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    """Found by session 7's outside tester: the draft's "common features" were the raw tickets' top TF-IDF terms,
    so a phone number and a password every ticket repeated reached the draft though the texts were redacted."""
    header = EXPORT.read_text(encoding="utf-8").splitlines()[0]
    rows = [
        f"INC-20{i},VPN 客户端 连接 失败 错误 809,VPN 客户端连接失败报错误 809 电话 13900001111 口令是 Zz123456,"
        f"事件,日常服务,VPN-GW-01,P3,热线,lisi{i},已关闭,网络组,2026-10-0{i}T09:00:00+08:00,"
        f"2026-10-0{i}T10:00:00+08:00,放行 L2TP 端口后客户端重连恢复 联系 13900001111 密码 Zz123456,"
        "防火墙未放行 L2TP,,5"
        for i in range(1, 6)
    ]
    export = tmp_path / "leaky.csv"
    export.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    kb = _kb(tmp_path / "kb", analyzer, distill_similarity=0.5)
    try:
        assert import_tickets(kb.database, export, "kb-zh").created == 5
        report = kb.distiller.distill("distiller")
        assert len(report.groups) == 1
        draft = kb.store.get(report.groups[0].article_id or 0)
        assert "809" in draft.body  # the real common features stay
        for secret in ("13900001111", "zz123456", "Zz123456"):
            assert secret not in draft.body and secret not in draft.title, secret
    finally:
        kb.close()
