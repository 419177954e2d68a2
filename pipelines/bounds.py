"""The accepted ranges of input values (docs/contract.md §15), checked before a value reaches
date arithmetic, Redis stream ids or Postgres.

Dates: 1970-01-01 to 2199-12-31 (UTC), the range SPEC §15 gives event timestamps, for every
date a client sends. Python's datetime ends at years 1 and 9999 *in local time*, so an edge
date with an offset cannot even be converted to UTC; before 1970 a stream id would be
negative. Integers: Postgres bigint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeGuard

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
RANGE_TEXT = "from 1970-01-01T00:00:00Z to 2199-12-31T23:59:59Z"
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1


def check_datetime(value: datetime) -> datetime:
    """`value` unchanged if it lies in the accepted range (a value without an offset is read
    as UTC); else ValueError saying the range."""
    try:
        at = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: before year 1 in UTC
        at = None
    if at is None or not EARLIEST <= at <= LATEST:
        raise ValueError(f"dates must lie {RANGE_TEXT}")
    return value


def is_int8(value: object) -> TypeGuard[int]:
    """`value` is an int (not a bool) that Postgres bigint holds."""
    return isinstance(value, int) and not isinstance(value, bool) and INT8_MIN <= value <= INT8_MAX
