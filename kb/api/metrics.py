"""Prometheus metrics of one app: request latency, per-stage search latency, index and desk gauges.

One :class:`Metrics` per app, on its own ``CollectorRegistry`` (never the process-global one, so several apps in
one process — the tests — do not collide). Exposed by ``GET /metrics`` (:mod:`kb.api.routes.metrics`) in the
Prometheus text format (prometheus-client's ``generate_latest``).

- ``kb_http_request_duration_seconds{method, route, status}``: histogram, measured by :class:`RequestTimer`
  around the whole app; ``route`` is the route's path template (``/articles/{article_id}``), never the raw path,
  so the label set stays bounded; unmatched paths are ``route="unmatched"``.
- ``kb_search_duration_seconds{mode}`` and ``kb_search_stage_duration_seconds{stage}``: histograms of every
  search (API, suggestions, escalation), from :class:`kb.search.timings.SearchTimings`.
- Gauges read at scrape time: ``kb_index_pending_changes`` (outbox rows not yet applied: the index lag),
  ``kb_index_chunks``, ``kb_index_articles``, ``kb_articles``, ``kb_index_last_seq``, and
  ``kb_tickets_open{sla_state}`` (open tickets by their recorded SLA state: ok, at_risk, breached).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.desk.workflow import OPEN, SOURCE
from kb.models import Ticket
from kb.search.timings import SearchTimings
from kb.service import KnowledgeBase

#: Histogram buckets in seconds: 1 ms to 10 s (searches take ~5-50 ms; imports and exports seconds).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The SLA states a ticket records (kb.desk.escalation.SlaMonitor), always exported, 0 when none.
SLA_STATES = ("ok", "at_risk", "breached")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The registry and instruments of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = self._histogram(
            "kb_http_request_duration_seconds",
            "HTTP request latency, by method, route template and status code.",
            ("method", "route", "status"),
        )
        self.searches = self._histogram(
            "kb_search_duration_seconds", "Search latency in the engine, by mode.", ("mode",)
        )
        self.stages = self._histogram(
            "kb_search_stage_duration_seconds",
            "Search latency per stage: analyze, bm25 (leg), vector (encode + leg), rank.",
            ("stage",),
        )

    def _histogram(self, name: str, doc: str, labels: tuple[str, ...]) -> Histogram:
        return Histogram(name, doc, labels, registry=self.registry, buckets=BUCKETS)

    def observe_search(self, timings: SearchTimings) -> None:
        """A :class:`~kb.search.timings.TimingListener`: records one search."""
        self.searches.labels(timings.mode).observe(timings.total_s)
        for stage, seconds in timings.stages.items():
            self.stages.labels(stage).observe(seconds)

    def watch(self, kb: KnowledgeBase) -> None:
        """Record ``kb``'s searches and export its gauges (once per app, at startup)."""
        kb.engine.subscribe(self.observe_search)
        self.registry.register(_KnowledgeBaseGauges(kb))

    def unwatch(self, kb: KnowledgeBase) -> None:
        """Stop recording ``kb``'s searches (the app shuts down; ``kb`` may outlive it, as in tests)."""
        kb.engine.unsubscribe(self.observe_search)

    def exposition(self) -> bytes:
        """The current values in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class _KnowledgeBaseGauges(Collector):
    """Gauges computed at scrape time from the index status and the desk."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def describe(self) -> list[Metric]:
        return []  # values come from the database at scrape time; no sample at registration

    def collect(self) -> Iterator[Metric]:
        status = self.kb.index.status(full=False)
        for name, doc, value in (
            (
                "kb_index_pending_changes",
                "Outbox rows not yet applied to the search index (index lag).",
                status.pending,
            ),
            ("kb_index_last_seq", "Last outbox seq applied to the search index.", status.last_seq),
            ("kb_index_chunks", "Chunk documents in the BM25 index.", status.bm25_chunks),
            ("kb_index_vectors", "Chunk vectors in the vector index.", status.vector_chunks),
            ("kb_index_articles", "Articles with chunks in the search index.", status.indexed_articles),
            ("kb_articles", "Articles in the database.", status.articles),
        ):
            yield GaugeMetricFamily(name, doc, value=float(value))
        states = open_tickets_by_sla_state(self.kb)
        sla = GaugeMetricFamily("kb_tickets_open", "Open tickets by recorded SLA state.", labels=["sla_state"])
        for state in sorted(set(SLA_STATES) | set(states)):
            sla.add_metric([state], float(states.get(state, 0)))
        yield sla


def open_tickets_by_sla_state(kb: KnowledgeBase) -> Counter[str]:
    """Open desk tickets (the set :meth:`kb.desk.workflow.Desk.open_tickets` lists) counted by recorded SLA
    state, in one ``GROUP BY`` statement: no ticket row is loaded, whatever the size of the queue."""
    query = (
        select(Ticket.sla_state, func.count())
        .where(Ticket.status.in_(OPEN), Ticket.source == SOURCE)
        .group_by(Ticket.sla_state)
    )
    with kb.database.session() as session:
        return Counter({str(state): int(count) for state, count in session.execute(query).all()})


class RequestTimer:
    """ASGI middleware: observes each HTTP request's latency in ``metrics.requests``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)
