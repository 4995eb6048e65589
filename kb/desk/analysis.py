"""Operations analysis (运维分析) over a date window: what the desk reports, beside the catalog's targets.

For the desk's tickets opened in ``[start, end)``:

- **satisfaction**: rated tickets, mean (1-5), share rated 4 or 5 (the catalog's "ticket satisfaction > 90 %");
- **SLA**: response and resolution breaches (timeouts), and per service type the response time achieved
  (median minutes of support time, share within target) beside the catalog target;
- **reassignment ping-pong (推诿)**: tickets reassigned ``ping_pong_min`` (default 3) or more times, or sent back to
  a group they had already left;
- **complaints (投诉)**: tickets of the complaint service type;
- **frequent problems (频发问题)**: groups of alike tickets (the grouping of :mod:`kb.desk.distill`, at least 3);
- **deflection rate (工单拦截率)**: deflected / closed; **KB coverage**: closed tickets with a linked article
  (used at closure, or the deflecting article) / closed.

``as_csv`` flattens the same numbers into ``section,key,metric,value`` rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from kb.desk.distill import ensure_embeddings, group_alike, tfidf_matrix
from kb.models import Ticket, TicketEvent, as_utc, utcnow

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

COMPLAINT = "投诉"
SATISFIED = 4
FREQUENT_MIN = 3


def analyze(
    kb: KnowledgeBase, start: dt.datetime, end: dt.datetime, *, ping_pong_min: int = 3, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The report for tickets opened in ``[start, end)`` (aware datetimes); ``now`` for open tickets' clocks."""
    now = now or utcnow()
    with kb.database.session() as session:
        tickets = [
            t
            for t in session.scalars(select(Ticket).where(Ticket.source == "desk").order_by(Ticket.id))
            if t.opened_at is not None and start <= as_utc(t.opened_at) < end
        ]
        ids = [t.id for t in tickets]
        events = list(session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids)))) if ids else []
    by_ticket: dict[int, list[TicketEvent]] = {}
    for event in sorted(events, key=lambda e: e.id):
        by_ticket.setdefault(event.ticket_id, []).append(event)
    closed = [t for t in tickets if t.status == "closed"]
    rated = [t.satisfaction for t in tickets if t.satisfaction is not None]
    linked = [
        t for t in closed if t.deflected or any(e.kind == "closed" and e.data.get("articles") for e in by_ticket[t.id])
    ]
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "tickets": len(tickets),
        "closed": len(closed),
        "by_channel": dict(Counter(t.channel or "unknown" for t in tickets)),
        "satisfaction": {
            "rated": len(rated),
            "mean": round(statistics.fmean(rated), 2) if rated else None,
            "satisfied_share": round(sum(r >= SATISFIED for r in rated) / len(rated), 4) if rated else None,
            "target_share": 0.9,
        },
        "sla": _sla(kb, tickets, now),
        "ping_pong": _ping_pong(by_ticket, ping_pong_min),
        "complaints": {
            "count": sum(t.service == COMPLAINT for t in tickets),
            "ids": [t.external_id for t in tickets if t.service == COMPLAINT],
        },
        "frequent_problems": _frequent(kb, tickets),
        "deflection_rate": round(sum(t.deflected for t in closed) / len(closed), 4) if closed else None,
        "kb_coverage": round(len(linked) / len(closed), 4) if closed else None,
    }


def _sla(kb: KnowledgeBase, tickets: list[Ticket], now: dt.datetime) -> dict[str, Any]:
    response_breaches = resolution_breaches = 0
    per_service: dict[str, list[float]] = {}
    for t in tickets:
        responded = as_utc(t.responded_at) if t.responded_at else None
        if t.response_due is not None and (responded or now) > as_utc(t.response_due):
            response_breaches += 1
        finished = as_utc(t.closed_at) if t.closed_at else None
        if t.resolution_due is not None and (finished or now) > as_utc(t.resolution_due):
            resolution_breaches += 1
        if responded is not None and t.opened_at is not None and t.service:
            calendar = kb.catalog.calendar(kb.catalog.service(t.service))
            per_service.setdefault(t.service, []).append(calendar.elapsed(as_utc(t.opened_at), responded))
    services = []
    for level in kb.catalog.services.values():
        times = per_service.get(level.name, [])
        services.append(
            {
                "service": level.name,
                "support_hours": level.hours,
                "response_target_minutes": level.response_minutes,
                "responded": len(times),
                "median_response_minutes": round(statistics.median(times), 1) if times else None,
                "within_target_share": round(sum(x <= level.response_minutes for x in times) / len(times), 4)
                if times
                else None,
            }
        )
    return {"response_breaches": response_breaches, "resolution_breaches": resolution_breaches, "services": services}


def _ping_pong(by_ticket: dict[int, list[TicketEvent]], minimum: int) -> dict[str, Any]:
    flagged = []
    for ticket_id, events in by_ticket.items():
        moves = [e for e in events if e.kind == "reassigned"]
        groups = [str(m.data.get("to")) for m in moves]
        left = [str(m.data.get("from")) for m in moves]
        bounced_back = any(g in left[:i] for i, g in enumerate(groups))
        if len(moves) >= minimum or bounced_back:
            flagged.append(
                {"ticket_id": ticket_id, "reassignments": len(moves), "path": [left[0], *groups] if moves else []}
            )
    return {"threshold": minimum, "count": len(flagged), "tickets": flagged}


def _frequent(kb: KnowledgeBase, tickets: list[Ticket]) -> list[dict[str, Any]]:
    if len(tickets) < FREQUENT_MIN:
        return []
    ensure_embeddings(kb, tickets, lambda _p, _d, _t: None)
    vectors = np.vstack([np.frombuffer(t.embedding or b"", dtype=np.float32) for t in tickets])
    texts = [f"{t.title}\n{t.description}" for t in tickets]
    tfidf, _ = tfidf_matrix(kb, texts)
    groups = group_alike(vectors, tfidf, kb.settings.distill_similarity, FREQUENT_MIN)
    return [
        {"size": len(g), "example": tickets[int(g[0])].title, "tickets": [tickets[int(i)].external_id for i in g]}
        for g in groups
    ]


def as_csv(report: dict[str, Any]) -> str:
    """The report as CSV rows ``section,key,metric,value`` (one row per number)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "key", "metric", "value"])
    writer.writerow(["window", "", "start", report["window"]["start"]])
    writer.writerow(["window", "", "end", report["window"]["end"]])
    for metric in ("tickets", "closed", "deflection_rate", "kb_coverage"):
        writer.writerow(["summary", "", metric, report[metric]])
    for channel, count in report["by_channel"].items():
        writer.writerow(["channel", channel, "tickets", count])
    for metric, value in report["satisfaction"].items():
        writer.writerow(["satisfaction", "", metric, value])
    writer.writerow(["sla", "", "response_breaches", report["sla"]["response_breaches"]])
    writer.writerow(["sla", "", "resolution_breaches", report["sla"]["resolution_breaches"]])
    for row in report["sla"]["services"]:
        for metric, value in row.items():
            if metric != "service":
                writer.writerow(["sla_service", row["service"], metric, value])
    writer.writerow(["ping_pong", "", "count", report["ping_pong"]["count"]])
    writer.writerow(["complaints", "", "count", report["complaints"]["count"]])
    for i, group in enumerate(report["frequent_problems"], start=1):
        writer.writerow(["frequent_problem", i, "size", group["size"]])
        writer.writerow(["frequent_problem", i, "example", group["example"]])
    return out.getvalue()
