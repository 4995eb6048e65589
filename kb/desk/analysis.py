"""Operations analysis (运维分析) over a date window: what the desk reports, beside the catalog's targets.

For the desk's tickets opened in ``[start, end)``:

- **satisfaction**: rated tickets, mean (1-5), share rated 4 or 5 (the catalog's "ticket satisfaction > 90 %");
- **SLA**: response and resolution breaches (timeouts), and per service type the response time achieved
  (median minutes of support time, share within target) beside the catalog target;
- **reassignment ping-pong (推诿)**: tickets reassigned ``ping_pong_min`` (default 3) or more times, or sent back to
  a group they had already left;
- **complaints (投诉)**: tickets of the complaint service type;
- **frequent problems (频发问题)**: groups of alike tickets (the grouping of :mod:`kb.desk.distill`, at least 3);
  every ticket of the window counts in a group's size, but only a ticket the caller may read
  (``ticket.read`` and :func:`kb.identity.scopes.ticket_visible`) gives the example title, redacted
  (:mod:`kb.ingest.redaction`, as distillation redacts), and is listed by number. A caller without ``ticket.read``
  (kb_editor) gets the sizes only: no title and no ticket number. The same holds for the numbers listed under
  complaints and ping-pong: the counts are the window's, the lists the caller's readable tickets;
- **deflection rate (工单拦截率)**: deflected / closed; **KB coverage**: closed tickets with a linked article
  (used at closure, or the deflecting article) / closed.

``as_csv`` flattens the same numbers into ``section,key,metric,value`` rows.
"""

from __future__ import annotations

import datetime as dt
import io
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from kb.db import Database
from kb.desk.similar import TicketVectors, fit_tfidf, group_alike
from kb.desk.sla import ServiceCatalog
from kb.desk.workflow import SOURCE
from kb.errors import InvalidInputError
from kb.identity.exports import SafeCsvWriter
from kb.identity.permissions import Permission
from kb.identity.scopes import Principal, ticket_visible
from kb.ingest.redaction import Redactor
from kb.models import Ticket, TicketEvent, as_utc, utcnow
from kb.search.text import TextAnalyzer

COMPLAINT = "投诉"
SATISFIED = 4
#: The catalog's "ticket satisfaction > 90 %" (DOMAIN.md), as a share.
SATISFACTION_TARGET = 0.9
FREQUENT_MIN = 3


@dataclass(frozen=True)
class Satisfaction:
    """Rated tickets, their mean rating (1-5) and the share rated 4 or 5 (0-1), beside the target share."""

    rated: int
    mean: float | None
    satisfied_share: float | None
    target_share: float = SATISFACTION_TARGET


@dataclass(frozen=True)
class ServiceResponse:
    """Response times achieved for one service type: median minutes of support time and the share within the
    catalog target (0-1), beside that target."""

    service: str
    support_hours: str
    response_target_minutes: int
    responded: int
    median_response_minutes: float | None
    within_target_share: float | None


@dataclass(frozen=True)
class SlaSummary:
    """Tickets past their response / resolution targets, and response times per service type."""

    response_breaches: int
    resolution_breaches: int
    services: list[ServiceResponse]


@dataclass(frozen=True)
class PingPongTicket:
    """A ticket bounced between groups: reassignment count and the groups it went through."""

    ticket_id: int
    reassignments: int
    path: list[str]


@dataclass(frozen=True)
class PingPong:
    """Tickets reassigned ``threshold`` or more times or sent back to a group they had left (推诿)."""

    threshold: int
    count: int
    tickets: list[PingPongTicket]


@dataclass(frozen=True)
class Complaints:
    """Tickets of the complaint service type (投诉)."""

    count: int
    ids: list[str]


@dataclass(frozen=True)
class FrequentProblem:
    """A group of alike tickets (频发问题): its size (every ticket of the window), an example title (redacted, from
    a ticket the caller may read; None when they may read none of them) and the numbers of the tickets of the
    group the caller may read."""

    size: int
    example: str | None
    tickets: list[str]


@dataclass(frozen=True)
class AnalysisReport:
    """The operations analysis of one window (see module docstring); rates are shares (0-1) or None."""

    window: dict[str, str]
    tickets: int
    closed: int
    by_channel: dict[str, int]
    satisfaction: Satisfaction
    sla: SlaSummary
    ping_pong: PingPong
    complaints: Complaints
    frequent_problems: list[FrequentProblem] = field(default_factory=list)
    deflection_rate: float | None = None
    kb_coverage: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON the API answers with."""
        return asdict(self)


class OperationsAnalysis:
    """Builds :class:`AnalysisReport` for the desk's tickets.

    Args:
        database: the tickets and their events.
        catalog: support hours and response targets per service type.
        vectors: stored ticket embeddings (encoded when missing), for the grouping of frequent problems.
        analyzer: TF-IDF terms of that grouping.
        redactor: removes personal data and credentials from the example titles.
        similarity: the "alike" bar of the grouping (setting ``distill_similarity``).
    """

    def __init__(
        self,
        database: Database,
        catalog: ServiceCatalog,
        vectors: TicketVectors,
        analyzer: TextAnalyzer,
        *,
        redactor: Redactor | None = None,
        similarity: float = 0.8,
    ) -> None:
        self.redactor = redactor or Redactor()
        self.database = database
        self.catalog = catalog
        self.vectors = vectors
        self.analyzer = analyzer
        self.similarity = similarity

    def analyze(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        viewer: Principal | None = None,
        ping_pong_min: int = 3,
        now: dt.datetime | None = None,
    ) -> AnalysisReport:
        """The report for tickets opened in ``[start, end)`` (aware datetimes) as ``viewer`` may see it (which
        tickets it names and shows a title of, module docstring; None: the system itself, the command line, every
        ticket); ``now`` for open tickets' clocks.

        Raises:
            InvalidInputError: ``start`` is not before ``end``.
        """
        if start >= end:
            raise InvalidInputError(
                f"The window is empty: start {start.isoformat()} is not before end {end.isoformat()}."
            )
        now = now or utcnow()
        with self.database.session() as session:
            tickets = [
                t
                for t in session.scalars(select(Ticket).where(Ticket.source == SOURCE).order_by(Ticket.id))
                if t.opened_at is not None and start <= as_utc(t.opened_at) < end
            ]
            ids = [t.id for t in tickets]
            events = list(session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids)))) if ids else []
        by_ticket: dict[int, list[TicketEvent]] = {}
        for event in sorted(events, key=lambda e: e.id):
            by_ticket.setdefault(event.ticket_id, []).append(event)
        closed = [t for t in tickets if t.status == "closed"]

        def readable(ticket: Ticket) -> bool:
            return viewer is None or (viewer.may(Permission.TICKET_READ) and ticket_visible(viewer, ticket))

        rated = [t.satisfaction for t in tickets if t.satisfaction is not None]
        linked = [
            t
            for t in closed
            if t.deflected or any(e.kind == "closed" and e.data.get("articles") for e in by_ticket.get(t.id, []))
        ]
        return AnalysisReport(
            window={"start": start.isoformat(), "end": end.isoformat()},
            tickets=len(tickets),
            closed=len(closed),
            by_channel=dict(Counter(t.channel or "unknown" for t in tickets)),
            satisfaction=Satisfaction(
                rated=len(rated),
                mean=round(statistics.fmean(rated), 2) if rated else None,
                satisfied_share=round(sum(r >= SATISFIED for r in rated) / len(rated), 4) if rated else None,
            ),
            sla=self._sla(tickets, now),
            ping_pong=_ping_pong(by_ticket, ping_pong_min, {t.id for t in tickets if readable(t)}),
            complaints=Complaints(
                count=sum(t.service == COMPLAINT for t in tickets),
                ids=[t.external_id for t in tickets if t.service == COMPLAINT and readable(t)],
            ),
            frequent_problems=self._frequent(tickets, readable),
            deflection_rate=round(sum(t.deflected for t in closed) / len(closed), 4) if closed else None,
            kb_coverage=round(len(linked) / len(closed), 4) if closed else None,
        )

    def _sla(self, tickets: list[Ticket], now: dt.datetime) -> SlaSummary:
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
                calendar = self.catalog.calendar(self.catalog.service(t.service))
                per_service.setdefault(t.service, []).append(calendar.elapsed(as_utc(t.opened_at), responded))
        services = []
        for level in self.catalog.services.values():
            times = per_service.get(level.name, [])
            within = round(sum(x <= level.response_minutes for x in times) / len(times), 4) if times else None
            services.append(
                ServiceResponse(
                    service=level.name,
                    support_hours=level.hours,
                    response_target_minutes=level.response_minutes,
                    responded=len(times),
                    median_response_minutes=round(statistics.median(times), 1) if times else None,
                    within_target_share=within,
                )
            )
        return SlaSummary(response_breaches, resolution_breaches, services)

    def _frequent(self, tickets: list[Ticket], readable: Callable[[Ticket], bool]) -> list[FrequentProblem]:
        if len(tickets) < FREQUENT_MIN:
            return []
        self.vectors.ensure(tickets)
        try:
            _, tfidf = fit_tfidf(self.analyzer, [f"{t.title}\n{t.description}" for t in tickets], min_df=2)
        except ValueError:  # no term shared by two tickets: no frequent problem
            return []
        groups = group_alike(self.vectors.matrix(tickets), tfidf, self.similarity, FREQUENT_MIN)
        problems = []
        for group in groups:
            shown = [t for t in (tickets[int(i)] for i in group) if readable(t)]
            example = self.redactor.redact(shown[0].title, [shown[0].requester or ""]) if shown else None
            problems.append(FrequentProblem(len(group), example, [t.external_id for t in shown]))
        return problems


def _ping_pong(by_ticket: dict[int, list[TicketEvent]], minimum: int, shown: set[int]) -> PingPong:
    flagged, count = [], 0
    for ticket_id, events in by_ticket.items():
        moves = [e for e in events if e.kind == "reassigned"]
        groups = [str(m.data.get("to")) for m in moves]
        left = [str(m.data.get("from")) for m in moves]
        bounced_back = any(g in left[:i] for i, g in enumerate(groups))
        if len(moves) >= minimum or bounced_back:
            count += 1
            if ticket_id not in shown:  # counted, not named
                continue
            flagged.append(PingPongTicket(ticket_id, len(moves), [left[0], *groups] if moves else []))
    return PingPong(minimum, count, flagged)


def as_csv(analysis: AnalysisReport) -> str:
    """The report as CSV rows ``section,key,metric,value`` (one row per number); text cells that a spreadsheet
    would evaluate are made safe (:mod:`kb.identity.exports`)."""
    report = analysis.as_dict()
    out = io.StringIO()
    writer = SafeCsvWriter(out)  # ticket titles are user text: no formulas (kb.identity.exports)
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
