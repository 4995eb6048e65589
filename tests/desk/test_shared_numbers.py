"""A ticket number two tickets hold (a database imported before kb.ingest.tickets refused that) credits neither.

``article_usage`` names tickets by number; the recorded use, the tickets an article lists as resolved and the desk's
votes (``ResolvedTicketVotes.resolvable``) must not credit a hidden ticket through a number it shares with a visible
one (session 9's outside tester, L8). New imports refuse such a number (tests/ingest/test_import_conflicts.py); this
is the data already stored.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kb.models import Ticket
from tests.helpers import NO_LICENSES, create, kb_of, new_user

pytestmark = pytest.mark.security


def test_a_number_two_tickets_hold_credits_neither(client: TestClient) -> None:
    """Found by session 9's outside tester: record_usage accepted a number when any ticket holding it was visible,
    and resolvable() and stats() joined by number, so a resolution recorded on the desk's ticket T… also credited
    an imported ticket of another group holding the same number (L8)."""
    kb = kb_of(client)
    aid = create(client, NO_LICENSES, visibility="public")["id"]
    asked = {"title": "远程桌面没有许可证", "description": "提示没有可用的远程桌面授权服务器", "service": "日常服务"}
    opened = client.post("/tickets", json=asked).json()["ticket"]
    number, desk_id, group = opened["external_id"], opened["id"], opened["resolver_group"]
    assert group
    with kb.database.session() as session:  # stored by an import before numbers were unique
        session.add(
            Ticket(source="kb-zh", external_id=number, title="数据库备份失败", description="备份作业报错",
                   status="closed", resolver_group="数据组", requester="req2", content_hash="legacy")
        )  # fmt: skip
        session.flush()
    agent = new_user(client, "ag.desk", ["agent"], groups=(group,))
    hidden = agent.post(f"/articles/{aid}/usage", json={"event": "resolved", "ticket": number})
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    ambiguous = client.post(f"/articles/{aid}/usage", json={"event": "resolved", "ticket": number})
    assert ambiguous.status_code == 409 and ambiguous.json()["error"] == "conflict"
    assert client.get(f"/articles/{aid}", params={"count_view": False}).json()["stats"]["resolved"] == 0

    # The desk closes its own ticket with the article: recorded by number, as every resolution is.
    for step, body in (("assign", {"group": group}), ("status", {"status": "in_progress"})):
        assert client.post(f"/tickets/{desk_id}/{step}", json=body).status_code == 200
    assert client.post(f"/tickets/{desk_id}/status", json={"status": "resolved"}).status_code == 200
    closure = {"resolution": "重新激活授权服务器", "root_cause": "授权过期", "articles": [aid]}
    assert client.post(f"/tickets/{desk_id}/close", json=closure).status_code == 200, "close"
    assert kb.desk_votes.resolvable() == frozenset()  # neither ticket votes through the shared number
    for viewer, shown in ((agent, []), (client, [number])):  # shown and counted only to who sees both holders
        stats = viewer.get(f"/articles/{aid}", params={"count_view": False}).json()["stats"]
        assert stats["tickets"] == shown and stats["resolved"] == len(shown)
