"""A ticket whose text held a credential is never shown in similar tickets (个人信息保护, GB/T 22239-2019 7.1.4.10)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kb.desk.similar import WITHHELD
from kb.ingest.tickets import import_tickets
from kb.models import Ticket
from tests.helpers import EXPORT, kb_of

pytestmark = pytest.mark.security

VPN = {"title": "VPN 连上了但是 OA 打不开", "description": "VPN 显示已连接，OA 超时", "service": "日常服务"}


def test_similar_ticket_that_held_a_password_shows_no_text(client: TestClient) -> None:
    kb = kb_of(client)
    import_tickets(kb.database, EXPORT, "kb-zh")
    with kb.database.session() as session:
        leaked = session.scalars(select(Ticket).where(Ticket.external_id.like("INC-100%")).order_by(Ticket.id)).first()
        assert leaked is not None
        leaked.work_notes = "用户口头告知 密码 Vpn#2026pass 已重置"
        leaked_id = leaked.id
    assert kb.ticket_vectors.embed_closed() == 12
    similar = client.post("/suggest", json=VPN).json()["similar_tickets"]
    shown = {s["ticket_id"]: s for s in similar}
    assert leaked_id in shown  # it still counts for the group vote and is listed by number
    assert (shown[leaked_id]["title"], shown[leaked_id]["resolution"]) == (WITHHELD, WITHHELD)
    assert "Vpn#2026pass" not in str(similar)
    assert any(s["title"] != WITHHELD for s in similar)
