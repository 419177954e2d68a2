"""The accepted ranges (docs/contract.md §15), as pure checks."""

from __future__ import annotations

from datetime import datetime

import pytest

from pipelines.bounds import INT8_MAX, INT8_MIN, check_datetime, is_int8


@pytest.mark.parametrize(
    "text",
    [
        "1970-01-01T00:00:00+00:00",
        "1970-01-01T14:00:00+14:00",
        "1969-12-31T14:00:00-10:00",
        "2199-12-31T23:59:59.999999+00:00",
        "2026-06-01T12:00:00",  # no offset: read as UTC
    ],
)
def test_dates_inside_the_range_pass_unchanged(text: str) -> None:
    at = datetime.fromisoformat(text)
    assert check_datetime(at) is at


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+14:00",  # not an instant in UTC at all
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59+00:00",
        "1969-12-31T23:59:59.999999+00:00",
        "1970-01-01T00:00:00+00:01",
        "2200-01-01T00:00:00+00:00",
        "2199-12-31T23:59:59-00:01",
        "1969-12-31T23:59:59",
    ],
)
def test_dates_outside_the_range_say_the_range(text: str) -> None:
    with pytest.raises(ValueError, match="1970-01-01T00:00:00Z to 2199-12-31T23:59:59Z"):
        check_datetime(datetime.fromisoformat(text))


@pytest.mark.parametrize(
    ("value", "held"),
    [
        (0, True),
        (INT8_MAX, True),
        (INT8_MIN, True),
        (INT8_MAX + 1, False),
        (INT8_MIN - 1, False),
        (2**64 - 1, False),
        (True, False),
        (1.0, False),
        ("1", False),
    ],
)
def test_int8_is_what_a_postgres_bigint_holds(value: object, held: bool) -> None:
    assert is_int8(value) is held
