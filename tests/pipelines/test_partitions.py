"""Which time partitions should exist and which are past retention (docs/operations.md §15)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.config import Settings
from pipelines.partitions import ENROLLMENT_HISTORY, LOGS, Period, bounds, next_start, plan

NOW = datetime(2027, 1, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "period", "expected"),
    [
        (date(2027, 1, 10), Period.DAY, date(2027, 1, 11)),
        (date(2027, 2, 28), Period.DAY, date(2027, 3, 1)),
        (date(2027, 1, 1), Period.MONTH, date(2027, 2, 1)),
        (date(2027, 12, 1), Period.MONTH, date(2028, 1, 1)),
    ],
)
def test_next_period(start: date, period: Period, expected: date) -> None:
    assert next_start(start, period) == expected


def test_bounds_are_utc_midnights() -> None:
    assert bounds(date(2027, 1, 10), Period.DAY) == (
        datetime(2027, 1, 10, tzinfo=UTC),
        datetime(2027, 1, 11, tzinfo=UTC),
    )


def test_names_round_trip_and_foreign_names_are_ignored() -> None:
    assert LOGS.start_of(LOGS.name(date(2027, 1, 10))) == date(2027, 1, 10)
    assert LOGS.start_of(LOGS.default) is None
    assert LOGS.start_of("trigger_execution_logs_p20271340") is None
    assert ENROLLMENT_HISTORY.start_of("workflow_enrollment_history_p20270110") is None


def test_the_days_ahead_are_made_and_those_past_retention_dropped() -> None:
    existing = {date(2027, 1, d) for d in range(1, 12)} | {date(2026, 11, 30)}
    todo = plan(LOGS, existing, NOW, retention_days=7, ahead_days=3)
    assert todo.create == [date(2027, 1, 12), date(2027, 1, 13)]
    # the cutoff is 3 Jan 15:00: 2 Jan ends before it, 3 Jan does not
    assert todo.drop == [date(2026, 11, 30), date(2027, 1, 1), date(2027, 1, 2)]


def test_a_partition_is_kept_until_its_whole_period_is_past_retention() -> None:
    todo = plan(ENROLLMENT_HISTORY, {date(2026, 12, 1)}, NOW, retention_days=30, ahead_days=0)
    assert todo.drop == []  # 10 Dec 15:00 is inside December
    later = plan(ENROLLMENT_HISTORY, {date(2026, 12, 1)}, NOW + timedelta(days=22), 30, 0)
    assert later.drop == [date(2026, 12, 1)]


def test_no_retention_drops_nothing_and_makes_from_behind() -> None:
    todo = plan(ENROLLMENT_HISTORY, set(), NOW, 0, 0, behind=NOW - timedelta(days=40))
    assert todo.drop == []
    assert todo.create == [date(2026, 12, 1), date(2027, 1, 1)]


def test_retention_defaults_and_bounds() -> None:
    settings = Settings()
    assert (settings.log_retention_days, settings.enrollment_retention_days) == (30, 365)
    assert settings.live_hours == 168 + 24
    with pytest.raises(ValueError, match="HAIRTRIGGER_LOG_RETENTION_DAYS must be at least 8"):
        Settings(log_retention_days=7)
    with pytest.raises(ValueError, match="HAIRTRIGGER_ENROLLMENT_RETENTION_DAYS must not be"):
        Settings(enrollment_retention_days=-1)
    assert Settings(stream_retention_hours=0, log_retention_days=1).live_hours == 0
