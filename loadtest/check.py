"""The locust run's verdict: every event sent enrolled its contact exactly once, fast enough.

`judge` is pure; `wait_and_read` waits (bounded) for the pipeline to catch up and reads the
enrollments back from Postgres."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from store import db

SHOWN = 3  # event ids named per kind of problem


@dataclass(frozen=True, slots=True)
class Sent:
    """What an event that was sent must produce: its contact enrolled in this workflow."""

    workflow_id: str
    contact_id: str


@dataclass(frozen=True, slots=True)
class Row:
    """An enrollment read back; `latency_ms` is enrolled_at - ingested_at (the XADD)."""

    event_id: str
    workflow_id: str
    contact_id: str
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_avg_ms: float = 200.0
    max_p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    avg: float
    p50: float
    p95: float
    p99: float
    max: float

    def text(self) -> str:
        return (
            f"avg {self.avg:.1f} ms, p50 {self.p50:.1f} ms, p95 {self.p95:.1f} ms,"
            f" p99 {self.p99:.1f} ms, max {self.max:.1f} ms"
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    expected: int
    enrolled_once: int
    missing: list[str]
    duplicated: list[str]
    wrong: list[str]
    unexpected: int
    latency: Latency | None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        out = [
            f"{self.expected:,} events sent -> {self.enrolled_once:,} enrolled exactly once;"
            f" {len(self.missing):,} missing, {len(self.duplicated):,} duplicated,"
            f" {len(self.wrong):,} wrong contact/workflow, {self.unexpected:,} unexpected"
            " (requests cut off at stop)"
        ]
        if self.latency is not None:
            out.append(
                f"XADD -> enrollment latency over {self.latency.count:,} enrollments: "
                + self.latency.text()
            )
        out += [f"FAIL: {f}" for f in self.failures] or ["PASS"]
        return out


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_of(values: Iterable[float]) -> Latency | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return Latency(
        count=len(ordered),
        avg=sum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
    )


def _named(what: str, ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN]) + (", ..." if len(ids) > SHOWN else "")
    return f"{len(ids):,} {what} (events {shown})"


def judge(sent: Mapping[str, Sent], rows: Iterable[Row], thresholds: Thresholds) -> Verdict:
    """Compare the enrollments read back with the events sent."""
    rows = list(rows)
    counts = Counter(r.event_id for r in rows)
    first: dict[str, Row] = {}
    for r in rows:
        first.setdefault(r.event_id, r)
    missing = [e for e in sent if e not in first]
    duplicated = [e for e in sent if counts[e] > 1]
    wrong = [
        e
        for e, want in sent.items()
        if e in first
        and (first[e].workflow_id, first[e].contact_id) != (want.workflow_id, want.contact_id)
    ]
    latency = latency_of(first[e].latency_ms for e in sent if e in first)
    failures = []
    if not sent:
        failures.append("no events were sent (did every request fail?)")
    if missing:
        failures.append(_named("expected enrollments missing", missing))
    if duplicated:
        failures.append(_named("events enrolled more than once", duplicated))
    if wrong:
        failures.append(_named("events enrolled the wrong contact or workflow", wrong))
    if latency is not None and latency.avg > thresholds.max_avg_ms:
        failures.append(
            f"average latency {latency.avg:.1f} ms is over {thresholds.max_avg_ms:g} ms"
        )
    if latency is not None and thresholds.max_p95_ms and latency.p95 > thresholds.max_p95_ms:
        failures.append(f"p95 latency {latency.p95:.1f} ms is over {thresholds.max_p95_ms:g} ms")
    return Verdict(
        expected=len(sent),
        enrolled_once=sum(1 for e in sent if counts[e] == 1) - sum(counts[e] == 1 for e in wrong),
        missing=missing,
        duplicated=duplicated,
        wrong=wrong,
        unexpected=sum(1 for e in counts if e not in sent),
        latency=latency,
        failures=failures,
    )


_WHERE = (
    "FROM workflow_enrollments WHERE account_id = ANY($1::uuid[]) AND workflow_id = ANY($2::uuid[])"
)


async def _count(url: str, accounts: list[str], workflows: list[str]) -> int:
    conn = await db.connect(url)
    try:
        n: int = await conn.fetchval(f"SELECT count(*) {_WHERE}", accounts, workflows)
        return n
    finally:
        await conn.close()


async def _read(url: str, accounts: list[str], workflows: list[str]) -> list[Row]:
    conn = await db.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT event_id::text, workflow_id::text, contact_id::text,"
            f" extract(epoch FROM enrolled_at - ingested_at) * 1000 AS ms {_WHERE}",
            accounts,
            workflows,
        )
    finally:
        await conn.close()
    return [Row(r["event_id"], r["workflow_id"], r["contact_id"], float(r["ms"])) for r in rows]


def wait_and_read(
    url: str,
    accounts: list[str],
    workflows: list[str],
    sent: Mapping[str, Sent],
    timeout: float,
    poll: float = 0.5,
) -> list[Row]:
    """The enrollments of these workflows, once every sent event has one or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while True:
        if asyncio.run(_count(url, accounts, workflows)) >= len(sent):
            rows = asyncio.run(_read(url, accounts, workflows))
            found = {r.event_id for r in rows}
            if all(e in found for e in sent) or time.monotonic() >= deadline:
                return rows
        elif time.monotonic() >= deadline:
            return asyncio.run(_read(url, accounts, workflows))
        time.sleep(poll)
