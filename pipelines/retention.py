"""Retention of the shard streams (pure): how far a stream may be trimmed.

Entries older than the retention go, but only those every consumer group has processed: an
entry not yet delivered, or delivered and not acknowledged, is never trimmed here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

StreamId = tuple[int, int]  # (milliseconds, sequence)


@dataclass(frozen=True, slots=True)
class GroupProgress:
    """How far a consumer group got: its last delivered entry, its oldest unacknowledged one."""

    last_delivered: str
    oldest_pending: str | None = None


def parse_id(entry_id: str | bytes) -> StreamId:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(entry_id: StreamId) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def trim_floor(now_ms: int, retention_ms: int, groups: Iterable[GroupProgress]) -> str | None:
    """The MINID to trim the stream to (entries below it go), or None when nothing may go:
    no retention (0), or no consumer group yet (nothing is processed)."""
    progress = list(groups)
    if retention_ms <= 0 or not progress:
        return None
    floor = (max(now_ms - retention_ms, 0), 0)
    for group in progress:
        floor = min(floor, parse_id(group.last_delivered))
        if group.oldest_pending is not None:
            floor = min(floor, parse_id(group.oldest_pending))
    return None if floor == (0, 0) else format_id(floor)


@dataclass(frozen=True, slots=True)
class Loss:
    """Entries a consumer group never received: above its last delivered id, up to `up_to`."""

    count: int | None  # None: not known (entries deleted with XDEL)
    up_to: str


def _before(entry_id: StreamId) -> StreamId:
    ms, seq = entry_id
    return (ms, seq - 1) if seq else (ms - 1, 2**64 - 1)


def lost_before_delivery(
    last_delivered: str | bytes,
    lag: int | None,
    length: int,
    first_entry: str | bytes | None,
    last_generated: str | bytes,
    max_deleted: str | bytes | None = None,
) -> Loss | None:
    """Entries deleted before the group got them: a length cap cut the head of its backlog
    (`lag`, the entries added since its last read, exceeds what the stream holds), or XDEL
    removed an entry beyond its last delivered one. Redis before 7 reports neither (None)."""
    delivered = parse_id(last_delivered)
    if lag is not None and lag > length:
        if first_entry is None:  # all of them gone
            return Loss(lag, format_id(parse_id(last_generated)))
        first = parse_id(first_entry)
        if first > delivered:  # the cut went past the group's position
            return Loss(lag - length, format_id(_before(first)))
    if max_deleted is not None and parse_id(max_deleted) > delivered:
        return Loss(None, format_id(parse_id(max_deleted)))
    return None
