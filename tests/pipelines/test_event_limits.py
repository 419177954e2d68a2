"""The ranges an event must keep to (SPEC §15): a table, and the same answers with and without
the raw JSON's shortcut."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from pipelines.event_limits import MAX_DEPTH, check_envelope, check_timestamp, check_values
from pipelines.reasons import DeadLetter


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):  # `data` itself is the first level
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("timestamp", "inside"),
    [
        ("1970-01-01T00:00:00Z", True),
        ("1970-01-01T13:59:59+14:00", False),  # 1969-12-31T23:59:59Z
        ("1969-12-31T23:59:59Z", False),
        ("2199-12-31T23:59:59.999999Z", True),
        ("2200-01-01T00:00:00Z", False),
        ("2199-12-31T23:00:00-01:00", False),  # 2200-01-01T00:00:00Z
        ("0001-01-01T00:00:00+14:00", False),  # before year 1 in UTC: no such datetime
        ("9999-12-31T23:59:59-14:00", False),  # after year 9999 in UTC
        ("9999-12-31T23:59:59Z", False),
        ("2026-12-03T10:00:00", True),  # offset-less: UTC
        ("1969-12-31T23:59:59", False),
    ],
)
def test_timestamps_from_1970_through_2199_utc(timestamp: str, inside: bool) -> None:
    found = check_timestamp(datetime.fromisoformat(timestamp))
    assert (found is None) is inside
    if found is not None:
        assert found.code is DeadLetter.TIMESTAMP_OUT_OF_RANGE
        assert found.pointer == "/timestamp"


@pytest.mark.parametrize(
    ("data", "pointer", "code"),
    [
        ({"a": 2**63 - 1, "b": -(2**63)}, None, None),
        ({"a": 2**63}, "/data/a", DeadLetter.NUMBER_OUT_OF_RANGE),
        ({"a": [1, {"b": -(2**63) - 1}]}, "/data/a/1/b", DeadLetter.NUMBER_OUT_OF_RANGE),
        ({"a/b~c": 2**80}, "/data/a~1b~0c", DeadLetter.NUMBER_OUT_OF_RANGE),
        ({"big float": 1e308, "flag": True}, None, None),
        (_nested(MAX_DEPTH), None, None),
        (_nested(MAX_DEPTH + 1), "/data" + "/x" * MAX_DEPTH, DeadLetter.TOO_DEEP),
        ({"deep": [[[[]]]] * 3, "n": "1234567890123456789012345"}, None, None),
    ],
)
def test_data_depth_and_integers(data: Any, pointer: str | None, code: DeadLetter | None) -> None:
    raw = json.dumps({"data": data}).encode()
    for given in (raw, None):  # the raw shortcut never changes the answer
        found = check_values(given, data)
        got = (found.pointer, found.code) if found is not None else (None, None)
        assert got == (pointer, code)


def test_metadata_is_checked_too() -> None:
    found = check_envelope(
        None, datetime.fromisoformat("2026-01-01T00:00:00Z"), {}, {"depth": 2**64}
    )
    assert found is not None
    assert (found.pointer, found.code) == ("/metadata/depth", DeadLetter.NUMBER_OUT_OF_RANGE)


def test_a_hostile_depth_does_not_exhaust_the_stack() -> None:
    data = _nested(100_000)
    found = check_values(None, data)
    assert found is not None
    assert found.code is DeadLetter.TOO_DEEP
