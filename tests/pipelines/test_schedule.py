"""Schedule arithmetic (docs/contract.md §7, REQ-E-023..026, REQ-S-003): table tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from pipelines.schedule import (
    date_occurrences,
    local_instant,
    month_days,
    next_opening,
    parse_cron,
    schedule_occurrences,
    yearly_day,
)

NY, BERLIN = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")
SYDNEY, TOKYO = ZoneInfo("Australia/Sydney"), ZoneInfo("Asia/Tokyo")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("day", "at", "tz", "expected"),
    [
        (date(2026, 6, 1), time(9), NY, utc(2026, 6, 1, 13)),  # EDT
        (date(2026, 12, 1), time(9), NY, utc(2026, 12, 1, 14)),  # EST
        # spring forward: 02:30 does not exist -> the first valid instant, 03:00 local
        (date(2026, 3, 8), time(2, 30), NY, utc(2026, 3, 8, 7)),
        (date(2026, 3, 29), time(2, 30), BERLIN, utc(2026, 3, 29, 1)),
        (date(2026, 10, 4), time(2, 15), SYDNEY, utc(2026, 10, 3, 16)),
        # fall back: 01:30 happens twice -> the first one
        (date(2026, 11, 1), time(1, 30), NY, utc(2026, 11, 1, 5, 30)),
        (date(2026, 10, 25), time(2, 30), BERLIN, utc(2026, 10, 25, 0, 30)),
        (date(2026, 12, 31), time(23, 59), TOKYO, utc(2026, 12, 31, 14, 59)),
    ],
)
def test_local_instant(day: date, at: time, tz: ZoneInfo, expected: datetime) -> None:
    assert local_instant(day, at, tz) == expected


@pytest.mark.parametrize(
    ("month", "day", "year", "expected"),
    [
        (2, 29, 2027, date(2027, 2, 28)),
        (2, 29, 2028, date(2028, 2, 29)),
        (12, 31, 2026, date(2026, 12, 31)),
        (1, 1, 2027, date(2027, 1, 1)),
    ],
)
def test_yearly_day_moves_29_february(month: int, day: int, year: int, expected: date) -> None:
    assert yearly_day(month, day, year) == expected


def s(**kw: object) -> SimpleNamespace:
    base = {
        "time_of_day": "09:00",
        "offset_days": 0,
        "cron": None,
        "every": None,
        "days_of_week": None,
    }
    return SimpleNamespace(**{**base, **kw})


def window(start: datetime, days: int) -> tuple[datetime, datetime]:
    return start, start + timedelta(days=days)


DATES = [
    # (id, kind, value, settings, tz, window start, days, expected instants)
    (
        "birthday",
        "birthday",
        date(1990, 3, 10),
        s(),
        NY,
        utc(2027, 3, 9),
        3,
        [utc(2027, 3, 10, 14)],
    ),
    (
        "birthday 29 Feb, common year",
        "birthday",
        date(1992, 2, 29),
        s(),
        BERLIN,
        utc(2027, 2, 26),
        4,
        [utc(2027, 2, 28, 8)],
    ),
    (
        "birthday 29 Feb, leap year",
        "birthday",
        date(1992, 2, 29),
        s(),
        BERLIN,
        utc(2028, 2, 26),
        4,
        [utc(2028, 2, 29, 8)],
    ),
    (
        "birthday across the year boundary",
        "birthday",
        date(1980, 1, 1),
        s(time_of_day="00:30"),
        TOKYO,
        utc(2026, 12, 31),
        2,
        [utc(2026, 12, 31, 15, 30)],
    ),
    (
        "birthday on a DST day",
        "birthday",
        date(1970, 3, 8),
        s(time_of_day="02:30"),
        NY,
        utc(2026, 3, 7),
        3,
        [utc(2026, 3, 8, 7)],
    ),
    (
        "anniversary",
        "anniversary",
        date(2020, 5, 4),
        s(time_of_day="08:00"),
        NY,
        utc(2026, 5, 3),
        3,
        [utc(2026, 5, 4, 12)],
    ),
    (
        "anniversary never in its own year",
        "anniversary",
        date(2026, 5, 4),
        s(),
        NY,
        utc(2026, 5, 3),
        3,
        [],
    ),
    (
        "scheduled 7 days before",
        "scheduled_date",
        date(2027, 1, 3),
        s(offset_days=-7),
        NY,
        utc(2026, 12, 26),
        3,
        [utc(2026, 12, 27, 14)],
    ),
    (
        "scheduled 30 days after",
        "scheduled_date",
        date(2026, 2, 1),
        s(offset_days=30),
        BERLIN,
        utc(2026, 3, 2),
        2,
        [utc(2026, 3, 3, 8)],
    ),
    (
        "scheduled only once",
        "scheduled_date",
        date(2026, 2, 1),
        s(),
        BERLIN,
        utc(2027, 1, 31),
        3,
        [],
    ),
]


@pytest.mark.parametrize(
    ("kind", "value", "settings", "tz", "start", "days", "expected"),
    [d[1:] for d in DATES],
    ids=[d[0] for d in DATES],
)
def test_date_occurrences(
    kind: str,
    value: date,
    settings: SimpleNamespace,
    tz: ZoneInfo,
    start: datetime,
    days: int,
    expected: list[datetime],
) -> None:
    found = date_occurrences(kind, value, settings, tz, *window(start, days))
    assert [o.at for o in found] == expected


def test_contact_timezone_differs_from_account() -> None:
    """The same birthday fires at 09:00 where the contact lives."""
    start, end = window(utc(2027, 3, 9), 3)
    in_tokyo = date_occurrences("birthday", date(1990, 3, 10), s(), TOKYO, start, end)
    in_ny = date_occurrences("birthday", date(1990, 3, 10), s(), NY, start, end)
    assert in_tokyo[0].at == utc(2027, 3, 10, 0)
    assert in_ny[0].at == utc(2027, 3, 10, 14)
    assert in_tokyo[0].key == in_ny[0].key == "2027-03-10"


def test_window_is_half_open() -> None:
    at = utc(2027, 3, 10, 14)
    assert date_occurrences("birthday", date(1990, 3, 10), s(), NY, at, at + timedelta(1)) == []
    found = date_occurrences("birthday", date(1990, 3, 10), s(), NY, at - timedelta(1), at)
    assert [o.at for o in found] == [at]


def test_month_days_include_29_february_on_28_in_common_years() -> None:
    assert month_days([date(2027, 2, 28)]) == {228, 229}
    assert month_days([date(2028, 2, 28)]) == {228}


CRONS = [
    (
        "daily 09:00",
        "0 9 * * *",
        NY,
        utc(2026, 11, 1),
        3,
        [utc(2026, 11, 1, 14), utc(2026, 11, 2, 14), utc(2026, 11, 3, 14)],
    ),
    (
        "weekdays only",
        "0 9 * * 1-5",
        NY,
        utc(2026, 11, 27),
        4,  # Fri..Mon
        [utc(2026, 11, 27, 14), utc(2026, 11, 30, 14)],
    ),
    (
        "every 15 min in an hour",
        "*/15 9 * * *",
        BERLIN,
        utc(2026, 6, 1, 6),
        1,
        [utc(2026, 6, 1, 7, m) for m in (0, 15, 30, 45)],
    ),
    (
        "day of month OR weekday",
        "0 12 1 * 0",
        BERLIN,
        utc(2026, 10, 31),
        3,  # Sun 1 Nov
        [utc(2026, 11, 1, 11)],
    ),
    ("Sunday as 7", "0 12 * * 7", BERLIN, utc(2026, 11, 7), 2, [utc(2026, 11, 8, 11)]),
    (
        "last day of the year",
        "59 23 31 12 *",
        TOKYO,
        utc(2026, 12, 31),
        1,
        [utc(2026, 12, 31, 14, 59)],
    ),
    ("in a DST gap fires once", "30 2 * * *", NY, utc(2026, 3, 8), 1, [utc(2026, 3, 8, 7)]),
    (
        "in a DST overlap fires once",
        "30 1 * * *",
        NY,
        utc(2026, 11, 1),
        1,
        [utc(2026, 11, 1, 5, 30)],
    ),
]


@pytest.mark.parametrize(
    ("cron", "tz", "start", "days", "expected"), [c[1:] for c in CRONS], ids=[c[0] for c in CRONS]
)
def test_cron_occurrences(
    cron: str, tz: ZoneInfo, start: datetime, days: int, expected: list[datetime]
) -> None:
    found = schedule_occurrences(s(cron=cron), tz, *window(start, days))
    assert [o.at for o in found] == expected
    assert len({o.key for o in found}) == len(found)


def test_every_n_days_on_some_weekdays() -> None:
    settings = s(every=1, days_of_week=["mon", "wed"], time_of_day="08:15")
    found = schedule_occurrences(settings, BERLIN, *window(utc(2026, 11, 23), 7))
    assert [o.at for o in found] == [utc(2026, 11, 23, 7, 15), utc(2026, 11, 25, 7, 15)]
    every_other = schedule_occurrences(s(every=2), BERLIN, *window(utc(2026, 11, 23), 4))
    assert len(every_other) == 2


def test_parse_cron_refuses_nonsense() -> None:
    for bad in ("* * * *", "*/0 * * * *", "5-1 * * * *", "0 24 * * *"):
        with pytest.raises(ValueError, match="cron"):
            parse_cron(bad)


HOURS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}


@pytest.mark.parametrize(
    ("instant", "tz", "expected"),
    [
        (utc(2026, 11, 25, 15), NY, None),  # Wednesday 10:00 NY: open
        (utc(2026, 11, 29, 3), NY, utc(2026, 11, 30, 14)),  # Saturday night -> Monday 09:00
        (utc(2026, 11, 25, 22, 30), NY, utc(2026, 11, 26, 14)),  # after closing -> tomorrow
        (utc(2026, 11, 25, 13), NY, utc(2026, 11, 25, 14)),  # before opening -> today
        (utc(2026, 11, 27, 22), NY, utc(2026, 11, 30, 14)),  # Friday 17:00 closed -> Monday
        (utc(2026, 3, 6, 23), NY, utc(2026, 3, 9, 13)),  # weekend across spring forward
        (utc(2026, 11, 28, 12), BERLIN, utc(2026, 11, 30, 8)),
    ],
)
def test_next_opening(instant: datetime, tz: ZoneInfo, expected: datetime | None) -> None:
    assert next_opening(instant, HOURS, tz) == expected
