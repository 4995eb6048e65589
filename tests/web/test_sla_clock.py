"""The queue's SLA clock: time left, at risk and breached."""

from __future__ import annotations

import datetime as dt

from kb.models import Ticket
from kb.web.ticket_view import sla_clock

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _ticket(minutes_left: float | None, state: str = "ok", status: str = "assigned") -> Ticket:
    due = None if minutes_left is None else NOW + dt.timedelta(minutes=minutes_left)
    return Ticket(status=status, resolution_due=due, sla_state=state)


def test_time_left_at_risk_and_breached() -> None:
    assert sla_clock(_ticket(125), NOW).label == "剩余 2小时05分"
    assert sla_clock(_ticket(125), NOW).state == "ok"
    assert sla_clock(_ticket(30, "at_risk"), NOW).state == "at_risk"
    late = sla_clock(_ticket(-(2 * 24 * 60 + 90)), NOW)
    assert late.label == "超时 2天1小时" and late.state == "breached"
    assert sla_clock(_ticket(-1, "ok"), NOW).state == "breached"  # past the deadline before the monitor noticed


def test_no_clock_for_closed_tickets_or_without_deadline() -> None:
    assert sla_clock(_ticket(10, status="closed"), NOW).label == "—"
    assert sla_clock(_ticket(None), NOW).label == "—"
