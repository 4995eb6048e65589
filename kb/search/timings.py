"""Per-stage timings of one search, handed to listeners (the Prometheus ``/metrics`` of :mod:`kb.api.metrics`).

Search knows nothing of metrics: :class:`kb.search.engine.SearchEngine` measures its stages with
``time.perf_counter`` and calls each subscribed listener with a :class:`SearchTimings`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: The stages a search reports, in order: query analysis, the BM25 leg (its index search), the vector leg
#: (query encoding and its index search), and ranking (filters, fusion, grouping, duplicates, snippets).
STAGES = ("analyze", "bm25", "vector", "rank")


@dataclass(frozen=True, slots=True)
class SearchTimings:
    """Seconds spent in each stage of one search (``stages``: stage name of :data:`STAGES` -> seconds; a leg
    that did not run is absent) and in total (``total_s``), for a search in ``mode``."""

    mode: str
    total_s: float
    stages: dict[str, float] = field(default_factory=dict)


TimingListener = Callable[[SearchTimings], None]


class StageClock:
    """Adds the seconds since the previous lap to a stage; ``stages`` holds the sums, ``last`` the last lap's
    ``time.perf_counter()``. Starts at ``started`` (a ``perf_counter()`` value)."""

    def __init__(self, started: float) -> None:
        self.last = started
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        """Add the time since the previous lap to ``stage``."""
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self.last
        self.last = now
