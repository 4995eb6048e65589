"""SLA clocks for each support-hours pattern across nights, weekends, a holiday and a make-up working day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from kb.desk.sla import BusinessCalendar, load_catalog
from kb.errors import InvalidInputError

TZ = ZoneInfo("Asia/Shanghai")
CATALOG = load_catalog()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def calendar(service: str) -> BusinessCalendar:
    return CATALOG.calendar(CATALOG.service(service))


def test_7x24_counts_every_minute() -> None:
    cal = calendar("日常服务")
    assert cal.add(at("2026-10-01 23:50"), 15) == at("2026-10-02 00:05")  # across midnight and a holiday
    assert cal.elapsed(at("2026-10-03 22:00"), at("2026-10-04 02:00")) == 240  # a Saturday night


def test_7x8_stops_at_night_but_not_on_weekends() -> None:
    cal = calendar("数据提供")
    assert cal.add(at("2026-11-27 16:50"), 30) == at("2026-11-28 09:20")  # Friday evening -> Saturday morning
    assert cal.add(at("2026-11-28 07:00"), 30) == at("2026-11-28 09:30")  # before opening: starts at 09:00
    assert cal.elapsed(at("2026-11-27 16:00"), at("2026-11-28 10:00")) == 120
    assert cal.add(at("2026-10-01 10:00"), 30) == at("2026-10-01 10:30")  # 7x8 runs on holidays


def test_5x8_skips_weekends_holidays_and_runs_on_make_up_days() -> None:
    cal = calendar("投诉")
    assert cal.add(at("2026-11-27 16:55"), 15) == at("2026-11-30 09:10")  # Friday -> Monday
    assert cal.add(at("2026-11-28 11:00"), 15) == at("2026-11-30 09:15")  # logged on Saturday
    assert cal.add(at("2026-09-30 16:50"), 15) == at("2026-10-08 09:05")  # National Day holidays and weekend
    assert cal.add(at("2026-10-09 16:50"), 15) == at("2026-10-10 09:05")  # Saturday 10-10 is a make-up workday
    assert cal.elapsed(at("2026-11-27 16:00"), at("2026-11-30 10:00")) == 120
    assert cal.elapsed(at("2026-11-30 10:00"), at("2026-11-30 09:00")) == 0


def test_catalog_errors_are_clear() -> None:
    with pytest.raises(InvalidInputError, match=r"Unknown service type '打印'.*日常服务"):
        CATALOG.service("打印")
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        calendar("咨询").add(dt.datetime(2026, 11, 30, 9, 0), 15)
    level = CATALOG.service("daily_service")
    assert (level.name, level.response_minutes, level.hours) == ("日常服务", 15, "7x24")
