"""Schedule arithmetic (docs/contract.md §7): when time triggers fire, in local time with correct
DST, and when business hours next open. Pure functions; instants are timezone-aware UTC
datetimes."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.cron import parse_cron
from pipelines.settings import WEEKDAYS

EVERY_ANCHOR = date(2000, 1, 3)  # a Monday: "every N days" counts from here


def parse_clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall time `at` on `day` in `tz`. A time skipped by a DST jump fires at
    the first valid instant after the jump; a time that happens twice fires at the first one."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive:
        return first.astimezone(UTC)
    # In a gap: the wall clock jumps over `naive`; the jump happens at the earliest instant
    # whose local time is past it (found minute by minute: gaps are at most a few hours).
    instant = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    while instant.astimezone(tz).replace(tzinfo=None) < naive:
        instant += timedelta(minutes=1)
    return instant.replace(second=0, microsecond=0)


def yearly_day(month: int, day: int, year: int) -> date:
    """The day a yearly date falls on in `year`: 29 February is 28 February in common years."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


def local_days(start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[date]:
    """Every local date in `tz` that overlaps the instants [start, end]."""
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Occurrence:
    key: str  # identifies the occurrence: the local date, or the local date-time for schedules
    at: datetime  # UTC instant


def date_occurrences(
    kind: str, value: date, settings: Any, tz: ZoneInfo, start: datetime, end: datetime
) -> list[Occurrence]:
    """Occurrences of a birthday, anniversary or scheduled date with `value` in (start, end]."""
    at = parse_clock(settings.time_of_day or "09:00")
    found = []
    for day in local_days(start, end, tz):
        if kind == "scheduled_date":
            hit = day == value + timedelta(days=settings.offset_days or 0)
        elif kind == "anniversary":
            hit = day.year > value.year and day == yearly_day(value.month, value.day, day.year)
        else:  # birthday
            hit = day == yearly_day(value.month, value.day, day.year)
        if hit:
            instant = local_instant(day, at, tz)
            if start < instant <= end:
                found.append(Occurrence(day.isoformat(), instant))
    return found


def month_days(days: Iterator[date] | list[date]) -> set[int]:
    """month*100+day keys of yearly dates that fall on these days (29/2 on 28/2 too)."""
    keys = set()
    for day in days:
        keys.add(day.month * 100 + day.day)
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            keys.add(229)
    return keys


# -- recurring schedules --------------------------------------------------------------------


def schedule_occurrences(
    settings: Any, tz: ZoneInfo, start: datetime, end: datetime
) -> list[Occurrence]:
    """Occurrences of a recurring schedule (cron, or every N days on some weekdays at
    time_of_day) in (start, end], in `tz`."""
    found: list[Occurrence] = []
    cron = parse_cron(settings.cron) if settings.cron else None
    for day in local_days(start, end, tz):
        if cron is not None:
            if not cron.day_matches(day):
                continue
            times = [time(h, m) for h in sorted(cron.hours) for m in sorted(cron.minutes)]
        else:
            every = settings.every or 1
            weekdays = settings.days_of_week or WEEKDAYS
            if (day - EVERY_ANCHOR).days % every or WEEKDAYS[day.weekday()] not in weekdays:
                continue
            times = [parse_clock(settings.time_of_day or "09:00")]
        for at in times:
            instant = local_instant(day, at, tz)
            if start < instant <= end:
                found.append(Occurrence(f"{day.isoformat()}T{at.isoformat('minutes')}", instant))
    return _first_per_instant(found)


def _first_per_instant(found: list[Occurrence]) -> list[Occurrence]:
    """Two wall times can map to one instant (a DST gap): fire once."""
    seen: set[datetime] = set()
    unique = []
    for occurrence in sorted(found, key=lambda o: o.at):
        if occurrence.at not in seen:
            seen.add(occurrence.at)
            unique.append(occurrence)
    return unique


# -- business hours ---------------------------------------------------------------------------


def next_opening(instant: datetime, hours: dict[str, Any], tz: ZoneInfo) -> datetime | None:
    """None if the business is open at `instant`, else when it next opens (UTC)."""
    open_at, close_at = parse_clock(hours["start"]), parse_clock(hours["end"])
    days = set(hours["days"])
    local = instant.astimezone(tz)
    for ahead in range(8):
        day = local.date() + timedelta(days=ahead)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        opens, closes = local_instant(day, open_at, tz), local_instant(day, close_at, tz)
        if ahead == 0 and opens <= instant < closes:
            return None
        if instant < opens:
            return opens
    return None  # no opening day at all (refused at configuration time)
