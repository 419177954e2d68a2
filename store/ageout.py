"""Data that ages out (docs/operations.md §15): execution-log partitions past the log retention
are dropped, and ended enrollments leave the live table for the partitioned history, whose
partitions past the enrollment retention are dropped in turn. What "ended" means, and why
single enrollments stay: docs/decisions.md §13."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipelines.partitions import ENROLLMENT_HISTORY, LOGS, Partitioned, cutoff, plan
from store import partitions
from store.db import Conn

_COLUMNS = (
    "id, account_id, workflow_id, trigger_id, contact_id, event_id, status, run_at, enrolled_at,"
    " event_data, single, ingested_at"
)
# A published `multiple` enrollment that nothing reads any more: not its pair's latest, or the
# latest with the cooldown of the workflow's live trigger over.
_ENDED = (
    "NOT e.single AND e.status = 'triggered' AND e.enrolled_at < $1"
    " AND NOT EXISTS (SELECT 1 FROM enrollment_outbox o WHERE o.enrollment_id = e.id)"
    " AND (EXISTS (SELECT 1 FROM workflow_enrollments n WHERE n.account_id = e.account_id"
    " AND n.contact_id = e.contact_id AND n.workflow_id = e.workflow_id"
    " AND n.enrolled_at > e.enrolled_at)"
    " OR NOT EXISTS (SELECT 1 FROM workflow_triggers t WHERE t.workflow_id = e.workflow_id"
    " AND t.deleted_at IS NULL AND e.enrolled_at > $2::timestamptz - make_interval(secs =>"
    " coalesce((t.settings->>'reenroll_cooldown_seconds')::double precision, 0))))"
)


@dataclass(frozen=True, slots=True)
class Retention:
    log_days: int  # 0: kept forever
    enrollment_days: int  # 0: kept forever
    live_hours: int  # enrollments younger than this stay live (the dedupe window); 0: all stay
    ahead_days: int = 7
    batch: int = 5000
    max_batches: int = 20


@dataclass(slots=True)
class Report:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # busy: tried again on the next round
    pruned: int = 0  # default-partition rows past retention
    moved: int = 0  # enrollments moved to the history
    deleted: int = 0  # ended enrollments already past the enrollment retention


async def age_out(conn: Conn, retention: Retention, now: datetime) -> Report:
    report = Report()
    await _partitions(conn, LOGS, retention.log_days, retention, now, report)
    if retention.live_hours > 0:
        # History partitions from the retention on (kept forever: from a month before the
        # live window; older rows go to the default partition, which nothing drops then).
        behind = cutoff(now, retention.enrollment_days) or now - timedelta(
            hours=retention.live_hours, days=31
        )
        await _partitions(
            conn, ENROLLMENT_HISTORY, retention.enrollment_days, retention, now, report, behind
        )
        await _end_enrollments(conn, retention, now, report)
    return report


async def _partitions(
    conn: Conn,
    spec: Partitioned,
    retention_days: int,
    retention: Retention,
    now: datetime,
    report: Report,
    behind: datetime | None = None,
) -> None:
    found = await partitions.existing(conn, spec)
    todo = plan(spec, set(found), now, retention_days, retention.ahead_days, behind)
    for start in todo.create:
        done = await partitions.create(conn, spec, start)
        (report.created if done else report.skipped).append(spec.name(start))
    for start in todo.drop:
        done = await partitions.drop(conn, spec, found[start])
        (report.dropped if done else report.skipped).append(found[start])
    oldest = cutoff(now, retention_days)
    if oldest is not None:
        for _ in range(retention.max_batches):
            n = await partitions.prune_default(conn, spec, oldest, retention.batch)
            report.pruned += n
            if n < retention.batch:
                break


async def _end_enrollments(conn: Conn, retention: Retention, now: datetime, report: Report) -> None:
    live_before = now - timedelta(hours=retention.live_hours)
    oldest = cutoff(now, retention.enrollment_days)
    for _ in range(retention.max_batches):
        moved, deleted = await move_ended(conn, live_before, oldest, now, retention.batch)
        report.moved += moved
        report.deleted += deleted
        if moved + deleted < retention.batch:
            break


async def move_ended(
    conn: Conn, live_before: datetime, oldest: datetime | None, now: datetime, limit: int
) -> tuple[int, int]:
    """Up to `limit` ended enrollments enrolled before `live_before` leave the live table, in
    one statement: those past retention (`oldest`) are deleted, the others go to the history.
    Returns (moved, deleted). Row locks only, and SKIP LOCKED: the batch path never waits."""
    rows = await conn.fetch(
        f"WITH gone AS (DELETE FROM workflow_enrollments WHERE id = ANY(ARRAY("
        f"SELECT e.id FROM workflow_enrollments e WHERE {_ENDED} ORDER BY e.enrolled_at"
        f" LIMIT $4 FOR UPDATE OF e SKIP LOCKED)) RETURNING {_COLUMNS}),"
        f" kept AS (INSERT INTO {ENROLLMENT_HISTORY.table} ({_COLUMNS}) SELECT {_COLUMNS}"
        f" FROM gone WHERE $3::timestamptz IS NULL OR enrolled_at >= $3 RETURNING 1)"
        f" SELECT (SELECT count(*) FROM gone) AS gone, (SELECT count(*) FROM kept) AS kept",
        live_before,
        now,
        oldest,
        limit,
    )
    gone, kept = int(rows[0]["gone"]), int(rows[0]["kept"])
    return kept, gone - kept
