"""The /metrics SLA gauge counts open tickets in SQL: the same numbers as the open-ticket list, no row loaded."""

from __future__ import annotations

import threading
from collections import Counter

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, update

from kb.api.metrics import open_tickets_by_sla_state
from kb.models import Ticket
from tests.helpers import kb_of, sysadmin


def test_sla_gauge_matches_the_open_ticket_list_in_one_statement(client: TestClient) -> None:
    kb = kb_of(client)
    ids = [client.post("/tickets", json={"title": f"打印机脱机 {i}", "service": "日常服务"}).json()["ticket"]["id"]
           for i in range(6)]  # fmt: skip
    for ticket_id, state in zip(ids, ("at_risk", "at_risk", "breached", "ok", "breached", "at_risk"), strict=True):
        kb.desk.set_sla_state(ticket_id, state, "tester")
    with kb.database.session() as session:  # one closed and one imported ticket: neither is open desk work
        session.execute(update(Ticket).where(Ticket.id == ids[0]).values(status="closed"))
        session.execute(update(Ticket).where(Ticket.id == ids[1]).values(source="import"))
        session.commit()

    statements: list[str] = []

    me = threading.get_ident()

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if threading.get_ident() == me:  # not the background applier's outbox polls
            statements.append(statement)

    event.listen(kb.database.engine, "before_cursor_execute", count)
    try:
        states = open_tickets_by_sla_state(kb)
    finally:
        event.remove(kb.database.engine, "before_cursor_execute", count)
    assert states == Counter(t.sla_state for t in kb.desk.open_tickets())
    assert states == Counter({"breached": 2, "at_risk": 1, "ok": 1})
    assert len(statements) == 1 and "GROUP BY" in statements[0]

    scraped = {
        sample.labels["sla_state"]: sample.value
        for family in text_string_to_metric_families(sysadmin(client).get("/metrics").text)
        for sample in family.samples
        if sample.name == "kb_tickets_open"
    }
    assert scraped == {"ok": 1.0, "at_risk": 1.0, "breached": 2.0}
