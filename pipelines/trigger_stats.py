"""Per-trigger analytics (docs/contract.md §6): counts per trigger and hour, kept up to date by
every batch from what it actually recorded, and read back per hour or day without scanning the
logs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipelines.enrollment import Enrollment
from pipelines.reasons import ENROLLMENT_BLOCKS, NOT_MATCHED, Blocked, blocked_of

# Upper bounds (ms) of the XADD -> enrollment latency histogram; the last bucket is open.
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
)
BUCKETS = len(LATENCY_BOUNDS_MS) + 1
TriggerKey = tuple[uuid.UUID, uuid.UUID, uuid.UUID]  # (account_id, workflow_id, trigger_id)


@dataclass(slots=True)
class Tally:
    """One trigger's counts for one hour (or, summed, for any bucket)."""

    evaluated: int = 0
    matched: int = 0
    enrolled: int = 0
    errors: int = 0
    blocked: dict[Blocked, int] = field(default_factory=lambda: dict.fromkeys(ENROLLMENT_BLOCKS, 0))
    latency: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, other: Tally) -> None:
        self.evaluated += other.evaluated
        self.matched += other.matched
        self.enrolled += other.enrolled
        self.errors += other.errors
        for reason, n in other.blocked.items():
            self.blocked[reason] = self.blocked.get(reason, 0) + n
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]


def hour_of(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def latency_bucket(ms: float) -> int:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms <= bound:
            return i
    return len(LATENCY_BOUNDS_MS)


@dataclass(frozen=True, slots=True)
class Decision:
    """A log row a batch inserted (a redelivery inserts none, so nothing counts twice)."""

    key: TriggerKey
    matched: bool
    enrolled: bool
    failure_reason: str | None


def tally(
    evaluated: Mapping[TriggerKey, int],
    decisions: Iterable[Decision],
    enrollments: Iterable[Enrollment],
) -> dict[TriggerKey, Tally]:
    """A batch's contribution. `evaluated`: how many events each trigger was checked against
    (index candidates and non-match loggers; a redelivered event counts again). The other
    counts come from `decisions` and `enrollments` the batch inserted: exactly once."""
    out: dict[TriggerKey, Tally] = {}
    for key, n in evaluated.items():
        out.setdefault(key, Tally()).evaluated += n
    for d in decisions:
        t = out.setdefault(d.key, Tally())
        reason = d.failure_reason
        if d.matched:
            t.matched += 1
            blocked = blocked_of(reason)
            if blocked in t.blocked:
                t.blocked[blocked] += 1
        elif reason is not None and reason != NOT_MATCHED:
            t.errors += 1  # a filter that failed at evaluation time
    for e in enrollments:
        t = out.setdefault((e.account_id, e.workflow_id, e.trigger_id), Tally())
        t.enrolled += 1
        ms = (e.enrolled_at - e.ingested_at).total_seconds() * 1000
        t.latency[latency_bucket(ms)] += 1
    return out


def percentile_ms(latency: list[int], q: float) -> int | None:
    """The upper bound of the histogram bucket holding the q-quantile (None if empty; the open
    last bucket reports its lower bound)."""
    total = sum(latency)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, n in enumerate(latency):
        seen += n
        if seen >= rank and n:
            return LATENCY_BOUNDS_MS[min(i, len(LATENCY_BOUNDS_MS) - 1)]
    return LATENCY_BOUNDS_MS[-1]


def bucket_start(hour: datetime, bucket: str) -> datetime:
    return hour if bucket == "hour" else hour.replace(hour=0)


def rollup(rows: Iterable[tuple[datetime, Tally]], bucket: str) -> list[tuple[datetime, Tally]]:
    """Hourly tallies summed per hour or per (UTC) day, oldest first."""
    sums: dict[datetime, Tally] = {}
    for hour, t in rows:
        sums.setdefault(bucket_start(hour, bucket), Tally()).add(t)
    return sorted(sums.items())
