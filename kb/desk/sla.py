"""SLA clocks that count only inside a service's support hours (DOMAIN.md, 服务目录与指标).

Support-hours patterns: ``7x24`` (every hour of every day), ``7x8`` (eight business hours on every day of the week)
and ``5x8`` (eight business hours Monday to Friday; stops on public holidays and runs on make-up working days,
调休). The hours, holidays and make-up days come from the service catalog file (``kb/data/service_catalog.yaml``,
or ``KB_SERVICE_CATALOG``), in the desk's time zone (Asia/Shanghai by default).

A clock is two operations: :meth:`BusinessCalendar.add` (when is the target reached, starting at ``start``) and
:meth:`BusinessCalendar.elapsed` (business minutes between two instants). Both walk the open windows day by day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from kb.config import DATA_DIR
from kb.errors import InvalidInputError

CATALOG_FILE = DATA_DIR / "service_catalog.yaml"
#: Days a clock may look ahead for an open window before giving up (a calendar with no open day at all).
MAX_DAYS = 3660


@dataclass(frozen=True)
class SupportHours:
    """Open from ``start`` to ``end`` (minutes after midnight, ``end`` up to 1440) on ``weekdays`` (0 = Monday);
    ``holidays``: whether public holidays close it and make-up working days open it."""

    name: str
    weekdays: frozenset[int]
    start: int
    end: int
    holidays: bool


@dataclass(frozen=True)
class BusinessCalendar:
    """Support hours in a time zone with the desk's holidays and make-up working days."""

    hours: SupportHours
    tz: ZoneInfo
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()

    def is_open_day(self, day: dt.date) -> bool:
        """Whether the support hours apply on ``day`` at all."""
        if self.hours.holidays:
            if day in self.workdays:
                return True
            if day in self.holidays:
                return False
        return day.weekday() in self.hours.weekdays

    def windows(self, since: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Open windows (aware datetimes in the calendar's zone) that end after ``since``, in order."""
        local = since.astimezone(self.tz)
        day = local.date()
        for _ in range(MAX_DAYS):
            if self.is_open_day(day):
                midnight = dt.datetime.combine(day, dt.time(), tzinfo=self.tz)
                opens = midnight + dt.timedelta(minutes=self.hours.start)
                closes = midnight + dt.timedelta(minutes=self.hours.end)
                if closes > local:
                    yield max(opens, local), closes
            day += dt.timedelta(days=1)

    def add(self, start: dt.datetime, minutes: float) -> dt.datetime:
        """The instant at which ``minutes`` of support time have passed since ``start`` (aware).

        Raises:
            InvalidInputError: ``start`` is naive, or the calendar has no open time in ten years.
        """
        _aware(start)
        left = dt.timedelta(minutes=minutes)
        for opens, closes in self.windows(start):
            if closes - opens >= left:
                return opens + left
            left -= closes - opens
        raise InvalidInputError(f"Support hours {self.hours.name} are never open.")

    def elapsed(self, start: dt.datetime, end: dt.datetime) -> float:
        """Support-time minutes between ``start`` and ``end`` (0 if ``end`` is not after ``start``)."""
        _aware(start)
        _aware(end)
        total = dt.timedelta()
        for opens, closes in self.windows(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total.total_seconds() / 60


@dataclass(frozen=True)
class ServiceLevel:
    """A catalog entry: the service, its support hours, response and resolution targets (minutes of support time)
    and the group responsible with its contact."""

    key: str
    name: str
    hours: str
    response_minutes: int
    resolution_minutes: int
    group: str
    contact: str


@dataclass(frozen=True)
class ServiceCatalog:
    """The desk's services, support-hours patterns and calendar (see module docstring)."""

    services: dict[str, ServiceLevel]
    patterns: dict[str, SupportHours]
    tz: ZoneInfo
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]

    def service(self, key_or_name: str) -> ServiceLevel:
        """A service by key (``daily_service``) or Chinese name (``日常服务``).

        Raises:
            InvalidInputError: unknown service type (the message lists the known ones).
        """
        for level in self.services.values():
            if key_or_name in (level.key, level.name):
                return level
        known = ", ".join(f"{s.key} ({s.name})" for s in self.services.values())
        raise InvalidInputError(f"Unknown service type {key_or_name!r}; the catalog has: {known}.")

    def calendar(self, level: ServiceLevel) -> BusinessCalendar:
        """The business calendar of a service."""
        return BusinessCalendar(self.patterns[level.hours], self.tz, self.holidays, self.workdays)


def load_catalog(path: Path | None = None) -> ServiceCatalog:
    """Read the catalog YAML (default the bundled one).

    Raises:
        InvalidInputError: unreadable or inconsistent file (unknown hours pattern, bad time).
    """
    path = path or CATALOG_FILE
    try:
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        patterns = {
            name: SupportHours(
                name, frozenset(p["weekdays"]), _minutes(p["start"]), _minutes(p["end"]), bool(p.get("holidays"))
            )
            for name, p in data["support_hours"].items()
        }
        services = {
            key: ServiceLevel(
                key,
                s["name"],
                s["hours"],
                int(s["response_minutes"]),
                int(s["resolution_minutes"]),
                s["group"],
                s.get("contact", ""),
            )
            for key, s in data["services"].items()
        }
        unknown = {s.hours for s in services.values()} - set(patterns)
        if unknown:
            raise ValueError(f"services use undefined support hours {sorted(unknown)}")
        return ServiceCatalog(
            services,
            patterns,
            ZoneInfo(data.get("timezone", "Asia/Shanghai")),
            frozenset(dt.date.fromisoformat(str(d)) for d in data.get("holidays") or []),
            frozenset(dt.date.fromisoformat(str(d)) for d in data.get("workdays") or []),
        )
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"Invalid service catalog {path}: {exc}") from exc


def _minutes(value: str) -> int:
    hours, minutes = str(value).split(":")
    total = int(hours) * 60 + int(minutes)
    if not 0 <= total <= 1440:
        raise ValueError(f"time of day out of range: {value}")
    return total


def _aware(value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise InvalidInputError("SLA clocks need timezone-aware times.")
