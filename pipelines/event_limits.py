"""What an event may carry so that the engine can process it deterministically (docs/contract.md
§3, SPEC §15): a timestamp from 1970 through 2199 (UTC), data nested at most 32 levels, integers
within 64 bits. The decoder dead-letters anything past these at first sight and `POST /events`
refuses it, so an accepted event never fails a batch for what it carries. (Over HTTP, as in
every body, a JSON integer beyond 64 bits is read as a double: only a producer writing to the
shards directly can send one.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.reasons import DeadLetter

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_DEPTH = 32  # objects and arrays inside `data` (and `metadata`), the envelope's own not counted
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# Cheap first looks at the raw JSON: an envelope with fewer brackets than the depth limit, and
# with no run of 19 digits, cannot break either limit; only the others are walked.
_DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 19


@dataclass(frozen=True, slots=True)
class Violation:
    """Where an envelope is out of range (a JSON pointer into it), and why."""

    pointer: str
    code: DeadLetter
    reason: str


def check_timestamp(timestamp: datetime) -> Violation | None:
    if timestamp.tzinfo is None:  # an offset-less time is taken as UTC
        timestamp = timestamp.replace(tzinfo=UTC)
    try:
        inside = EARLIEST <= timestamp <= LATEST
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 has no UTC time
        inside = False
    if inside:
        return None
    return Violation(
        "/timestamp",
        DeadLetter.TIMESTAMP_OUT_OF_RANGE,
        f"timestamp {timestamp.isoformat()} is outside 1970-01-01 .. 2199-12-31 (UTC)",
    )


def check_values(raw: bytes | None, data: Any, metadata: Any = None) -> Violation | None:
    """Depth and integer range of `data` and `metadata` (given as decoded JSON). `raw`, the
    encoded envelope when at hand, lets most events skip the walk."""
    if raw is not None and _plainly_inside(raw):
        return None
    return _walk(data, "/data", 1) or _walk(metadata, "/metadata", 1)


def check_envelope(
    raw: bytes | None, timestamp: datetime, data: Any, metadata: Any = None
) -> Violation | None:
    return check_timestamp(timestamp) or check_values(raw, data, metadata)


def _plainly_inside(raw: bytes) -> bool:
    """A run of 19 digits is the shortest integer beyond 64 bits."""
    brackets = raw.count(b"{") + raw.count(b"[")
    return brackets <= MAX_DEPTH and _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO)


def _walk(value: Any, pointer: str, depth: int) -> Violation | None:
    """The first value past the limits, depth first (iterative: a hostile depth must not
    exhaust the interpreter's stack)."""
    stack: list[tuple[Any, str, int]] = [(value, pointer, depth)]
    while stack:
        item, where, level = stack.pop()
        if isinstance(item, dict):
            children = [(v, f"{where}/{_escape(str(k))}") for k, v in item.items()]
        elif isinstance(item, list):
            children = [(v, f"{where}/{i}") for i, v in enumerate(item)]
        else:
            if type(item) is int and not INT_MIN <= item <= INT_MAX:
                return Violation(
                    where, DeadLetter.NUMBER_OUT_OF_RANGE, f"{where}: integer beyond 64 bits"
                )
            continue
        if level > MAX_DEPTH:
            return Violation(
                where, DeadLetter.TOO_DEEP, f"{where}: nested deeper than {MAX_DEPTH} levels"
            )
        stack.extend((v, w, level + 1) for v, w in reversed(children))
    return None


def _escape(key: str) -> str:
    """A key as a JSON pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
