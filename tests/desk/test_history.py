"""A desk history replayed through the desk's own workflow (kb.desk.history): tickets closed at their own times
with the article that resolved them, usage rows dated at the close, embeddings stored, replays idempotent."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select

from kb.articles.content import parse_markdown
from kb.desk.history import RESOLUTION, read_history, replay_history
from kb.models import ArticleUsage, Ticket, TicketEvent, as_utc
from kb.service import KnowledgeBase


def test_history_tickets_are_opened_worked_and_closed_at_their_own_times(kb: KnowledgeBase, tmp_path: Path) -> None:
    made = kb.writer.create(parse_markdown("清除浏览器缓存后重试。", title="OA 打不开"), "tester")
    assert made.article is not None
    rows = [
        {
            "id": "H2",
            "title": "OA 打不开",
            "description": "一直白屏",
            "article": "kb/oa.md",
            "channel": "im",
            "opened_at": "2026-04-02T09:00:00+08:00",
            "closed_at": "2026-04-03T10:00:00+08:00",
            "requester": "张三",
        },
        {
            "id": "H1",
            "title": "OA 白屏",
            "description": "打不开",
            "article": "kb/oa.md",
            "channel": "phone",
            "opened_at": "2026-04-01T09:00:00+08:00",
            "closed_at": "2026-04-01T09:30:00+08:00",
        },
    ]
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tickets = read_history(path)
    assert [t.id for t in tickets] == ["H1", "H2"]  # by closing time
    done = replay_history(kb.desk, kb.ticket_vectors, tickets, {"kb/oa.md": made.article.id})
    assert (done.closed, done.skipped, done.unmapped, done.encoded) == (2, 0, 0, 2)
    with kb.database.session() as session:
        stored = {t.external_id: t for t in session.scalars(select(Ticket))}
        usage = {u.ticket: u for u in session.scalars(select(ArticleUsage).where(ArticleUsage.event == "resolved"))}
        kinds = [e.kind for e in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == stored["H2"].id))]
    h2 = stored["H2"]
    assert h2.status == "closed" and h2.resolution == RESOLUTION and h2.channel == "im" and h2.requester == "张三"
    assert as_utc(h2.opened_at) == dt.datetime(2026, 4, 2, 1, 0, tzinfo=dt.UTC)
    assert as_utc(h2.closed_at) == dt.datetime(2026, 4, 3, 2, 0, tzinfo=dt.UTC)
    assert as_utc(usage["H2"].created_at) == as_utc(h2.closed_at) and usage["H2"].article_id == made.article.id
    assert kinds[0] == "created" and kinds[-1] == "closed" and "assigned" in kinds
    assert h2.embedding is not None
    assert kb.desk.clock() > dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # the wall clock is back
    again = replay_history(kb.desk, kb.ticket_vectors, tickets, {"kb/oa.md": made.article.id})
    assert (again.closed, again.skipped, again.encoded) == (0, 2, 0)
    near = kb.closed_tickets.nearest(kb.ticket_vectors.encode("OA 打不开 白屏"), "OA 打不开 白屏", 5)
    assert {t.external_id for t in near} == {"H1", "H2"}
