"""The 运维分析 dashboard's view: the operations analysis of a date window (:mod:`kb.desk.analysis`, the use case
of ``GET /analysis``) and the Apache ECharts options of its charts, built here from the report's numbers so the
page script only draws them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from kb.desk.analysis import AnalysisReport
from kb.errors import InvalidInputError
from kb.identity.scopes import Principal
from kb.service import KnowledgeBase
from kb.web.labels import label

#: Default window of the dashboard, in days back from today.
DEFAULT_DAYS = 30
#: Longest window, in days.
MAX_DAYS = 3660


@dataclass(frozen=True)
class AnalysisView:
    """The report of ``[start, end)`` (dates, UTC midnights), the ECharts options per chart id, and the URL of the
    same report as CSV."""

    start: dt.date
    end: dt.date
    report: AnalysisReport
    charts: dict[str, dict[str, Any]]
    csv_url: str


def _bars(title: str, labels: list[str], series: dict[str, list[float | int | None]]) -> dict[str, Any]:
    return {
        "title": {"text": title, "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 24} if len(series) > 1 else {"show": False},
        "grid": {"left": 48, "right": 16, "top": 56, "bottom": 32},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value"},
        "series": [{"name": name, "type": "bar", "data": values} for name, values in series.items()],
        "animation": False,
    }


def charts_of(report: AnalysisReport) -> dict[str, dict[str, Any]]:
    """ECharts options: tickets per channel, median response minutes per service beside the catalog target,
    and the share of responses within target per service (percent)."""
    services = report.sla.services
    names = [s.service for s in services]
    return {
        "channels": _bars(
            "各渠道工单数", [label(c, "channel") for c in report.by_channel], {"工单": list(report.by_channel.values())}
        ),
        "response": _bars(
            "响应时间（分钟，中位数）与目标",
            names,
            {
                "实际中位数": [s.median_response_minutes for s in services],
                "目标": [s.response_target_minutes for s in services],
            },
        ),
        "within": _bars(
            "按时响应比例（%）",
            names,
            {
                "按时响应": [
                    None if s.within_target_share is None else round(100 * s.within_target_share, 1) for s in services
                ]
            },
        ),
    }


def analysis_view(
    kb: KnowledgeBase, viewer: Principal, start: dt.date | None, end: dt.date | None, today: dt.date
) -> AnalysisView:
    """The dashboard for tickets opened from ``start`` (default ``today`` - :data:`DEFAULT_DAYS`) up to and
    including ``end`` (default ``today``), as ``viewer`` may see it (:meth:`kb.desk.analysis.OperationsAnalysis.
    analyze`: ticket numbers and example titles only of the tickets they may read).

    Raises:
        InvalidInputError: ``end`` before ``start``, or a window longer than :data:`MAX_DAYS`.
    """
    end = end or today
    start = start or end - dt.timedelta(days=DEFAULT_DAYS)
    if end < start:
        raise InvalidInputError("结束日期早于开始日期。")
    if (end - start).days > MAX_DAYS:
        raise InvalidInputError(f"时间窗口最长 {MAX_DAYS} 天。")
    lo = dt.datetime.combine(start, dt.time(), dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    report = kb.analysis.analyze(lo, hi, viewer=viewer)
    csv_url = "/analysis?" + urlencode({"start": lo.isoformat(), "end": hi.isoformat(), "format": "csv"})
    return AnalysisView(start, end, report, charts_of(report), csv_url)
