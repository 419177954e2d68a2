"""Time partitions of the tables that age out (pure): which ones should exist, which are past
retention, and their names and bounds (docs/operations.md §15).

A partition holds one period, [start, end) in UTC: a day for the execution logs, a month for
the enrollment history. Partitions are made ahead of time, so an insert always finds its own;
one is dropped once its whole period is older than the retention."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Partitioned:
    """A table partitioned by range of one timestamptz column, one partition per period."""

    table: str
    column: str
    period: Period

    @property
    def default(self) -> str:
        """The DEFAULT partition: rows whose period has no partition of its own."""
        return f"{self.table}_default"

    def name(self, start: date) -> str:
        return f"{self.table}_p{start:%Y%m%d}"

    def start_of(self, name: str) -> date | None:
        """The period a partition's name stands for (None: not one of this table's periods)."""
        found = re.fullmatch(rf"{re.escape(self.table)}_p(\d{{8}})", name)
        if found is None:
            return None
        try:
            start = datetime.strptime(found[1], "%Y%m%d").date()
        except ValueError:
            return None
        return start if start == period_start(start, self.period) else None


LOGS = Partitioned("trigger_execution_logs", "occurred_at", Period.DAY)
ENROLLMENT_HISTORY = Partitioned("workflow_enrollment_history", "enrolled_at", Period.MONTH)


def period_start(day: date, period: Period) -> date:
    return day if period is Period.DAY else day.replace(day=1)


def next_start(start: date, period: Period) -> date:
    if period is Period.DAY:
        return start + timedelta(days=1)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def bounds(start: date, period: Period) -> tuple[datetime, datetime]:
    """[from, to) of the partition starting at `start`, as UTC instants."""
    return _midnight(start), _midnight(next_start(start, period))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def periods(first: date, last: date, period: Period) -> list[date]:
    """Starts of the periods from the one holding `first` to the one holding `last`."""
    out: list[date] = []
    start = period_start(first, period)
    while start <= last:
        out.append(start)
        start = next_start(start, period)
    return out


def cutoff(now: datetime, retention_days: int) -> datetime | None:
    """Rows older than this are past retention (None: kept forever)."""
    return None if retention_days <= 0 else now - timedelta(days=retention_days)


@dataclass(frozen=True, slots=True)
class Plan:
    create: list[date]  # period starts, oldest first
    drop: list[date]


def plan(
    spec: Partitioned,
    existing: set[date],
    now: datetime,
    retention_days: int,
    ahead_days: int,
    behind: datetime | None = None,
) -> Plan:
    """Partitions to make (from the one holding `behind`, default now, to `ahead_days` past
    now, never one past retention) and those to drop (wholly older than the retention)."""
    oldest = cutoff(now, retention_days)
    first = (behind or now).astimezone(UTC).date()
    if oldest is not None:
        first = max(first, oldest.astimezone(UTC).date())
    wanted = periods(first, (now + timedelta(days=ahead_days)).astimezone(UTC).date(), spec.period)
    drop = []
    if oldest is not None:
        drop = sorted(s for s in existing if bounds(s, spec.period)[1] <= oldest)
    return Plan([s for s in wanted if s not in existing and s not in drop], drop)
