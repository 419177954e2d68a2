"""Postgres side of the scheduler: watermarks, the agenda of date occurrences, recurring runs,
and enrollments queued for business hours."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pipelines.messages import encode_enrollment
from store.db import Conn, Executor

AgendaKey = tuple[uuid.UUID, uuid.UUID, str]  # (trigger, contact, occurrence)


async def watermark(conn: Executor, trigger_id: uuid.UUID) -> tuple[datetime, datetime] | None:
    """(watermark, planned_at) of a time trigger, or None if never planned."""
    row = await conn.fetchrow(
        "SELECT watermark, planned_at FROM time_watermarks WHERE trigger_id = $1", trigger_id
    )
    return (row["watermark"], row["planned_at"]) if row else None


async def set_watermark(
    conn: Executor, trigger_id: uuid.UUID, mark: datetime, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO time_watermarks (trigger_id, watermark, planned_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (trigger_id) DO UPDATE SET watermark = EXCLUDED.watermark,"
        " planned_at = EXCLUDED.planned_at",
        trigger_id,
        mark,
        now,
    )


async def dated_contacts(
    conn: Executor,
    account_id: uuid.UUID,
    field: str,
    *,
    month_days: Sequence[int] = (),
    days: Sequence[date] = (),
) -> list[tuple[uuid.UUID, date, str | None]]:
    """Live contacts whose `field` falls on one of these month-days (yearly) or days (once):
    (contact, the date, the contact's own timezone if any). Index lookups, never a scan."""
    rows = await conn.fetch(
        "SELECT d.contact_id, d.day, c.state->>'timezone' AS tz FROM contact_dates d"
        " JOIN contacts c ON c.account_id = d.account_id AND c.contact_id = d.contact_id"
        " WHERE d.account_id = $1 AND d.field = $2 AND NOT c.deleted"
        " AND (d.md = ANY($3::smallint[]) OR d.day = ANY($4::date[]))",
        account_id,
        field,
        list(month_days),
        list(days),
    )
    return [(r["contact_id"], r["day"], r["tz"]) for r in rows]


async def add_agenda(conn: Executor, rows: list[tuple[Any, ...]]) -> None:
    """(trigger, contact, occurrence, account, field, day, due_at) rows; known ones are kept."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    await conn.execute(
        "INSERT INTO time_agenda (trigger_id, contact_id, occurrence, account_id, field, day,"
        " due_at) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[],"
        " $5::text[], $6::date[], $7::timestamptz[]) ON CONFLICT DO NOTHING",
        *(list(c) for c in columns),
    )


async def due_agenda(conn: Executor, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Pending occurrences due by `now`, with the contact's current date and deleted flag."""
    rows = await conn.fetch(
        "SELECT g.trigger_id, g.contact_id, g.occurrence, g.account_id, g.field, g.day,"
        " g.due_at, d.day AS current_day, coalesce(c.deleted, true) AS deleted"
        " FROM time_agenda g"
        " LEFT JOIN contact_dates d ON d.account_id = g.account_id"
        " AND d.contact_id = g.contact_id AND d.field = g.field"
        " LEFT JOIN contacts c ON c.account_id = g.account_id AND c.contact_id = g.contact_id"
        " WHERE g.status = 'pending' AND g.due_at <= $1 ORDER BY g.due_at LIMIT $2",
        now,
        limit,
    )
    return [dict(r) for r in rows]


async def mark_agenda(conn: Executor, keys: list[AgendaKey], status: str) -> None:
    if keys:
        await conn.execute(
            "UPDATE time_agenda g SET status = $4 FROM unnest($1::uuid[], $2::uuid[], $3::text[])"
            " AS k(t, c, o) WHERE g.trigger_id = k.t AND g.contact_id = k.c"
            " AND g.occurrence = k.o",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            status,
        )


async def add_runs(conn: Executor, rows: list[tuple[uuid.UUID, str, uuid.UUID, datetime]]) -> None:
    """(trigger, occurrence, account, due_at) of recurring occurrences; known ones are kept."""
    if rows:
        columns = list(zip(*rows, strict=True))
        await conn.execute(
            "INSERT INTO recurring_runs (trigger_id, occurrence, account_id, due_at)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[])"
            " ON CONFLICT DO NOTHING",
            *(list(c) for c in columns),
        )


async def due_runs(conn: Executor, now: datetime) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT trigger_id, occurrence, account_id, due_at, cursor FROM recurring_runs"
        " WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at",
        now,
    )
    return [dict(r) for r in rows]


async def contacts_after(
    conn: Executor, account_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """A page of the account's live contacts in id order (keyset pagination)."""
    rows = await conn.fetch(
        "SELECT contact_id FROM contacts WHERE account_id = $1 AND NOT deleted"
        " AND contact_id > $2 ORDER BY contact_id LIMIT $3",
        account_id,
        after or uuid.UUID(int=0),
        limit,
    )
    return [r["contact_id"] for r in rows]


async def advance_run(
    conn: Executor, trigger_id: uuid.UUID, occurrence: str, cursor: uuid.UUID | None, status: str
) -> None:
    await conn.execute(
        "UPDATE recurring_runs SET cursor = $3, status = $4 WHERE trigger_id = $1"
        " AND occurrence = $2",
        trigger_id,
        occurrence,
        cursor,
        status,
    )


async def log_skipped(conn: Executor, rows: list[tuple[Any, ...]]) -> None:
    """(account, workflow, trigger, contact or None, event_type, details) of occurrences
    older than catch_up_hours that were not emitted."""
    if rows:
        columns = list(zip(*rows, strict=True))
        await conn.execute(
            "INSERT INTO trigger_execution_logs (account_id, workflow_id, trigger_id, contact_id,"
            " event_type, matched, failure_reason, details) SELECT a, w, t, c, e, false,"
            " 'skipped: older than catch_up_hours', d FROM unnest($1::uuid[], $2::uuid[],"
            " $3::uuid[], $4::uuid[], $5::text[], $6::jsonb[]) AS u(a, w, t, c, e, d)",
            *(list(c) for c in columns),
        )


async def release_queued(
    conn: Conn, now: datetime, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID, bytes]]:
    """Queued enrollments whose run_at has come: now `triggered`. Returns (id, account, JSON);
    the caller adds them to the outbox in the same transaction and publishes after commit."""
    rows = await conn.fetch(
        "UPDATE workflow_enrollments SET status = 'triggered' WHERE id IN (SELECT id FROM"
        " workflow_enrollments WHERE status = 'queued' AND run_at <= $1 ORDER BY run_at"
        " LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id, account_id, workflow_id, trigger_id,"
        " contact_id, event_id, status, run_at, enrolled_at, event_data",
        now,
        limit,
    )
    return [(r["id"], r["account_id"], encode_enrollment(r)) for r in rows]


async def add_outbox(conn: Executor, items: list[tuple[uuid.UUID, int]]) -> None:
    if items:
        await conn.execute(
            "INSERT INTO enrollment_outbox (enrollment_id, shard)"
            " SELECT * FROM unnest($1::uuid[], $2::int[]) ON CONFLICT DO NOTHING",
            [i for i, _ in items],
            [s for _, s in items],
        )


async def prune(conn: Executor, done_before: datetime, stats_before: datetime) -> dict[str, int]:
    """Delete what planning and reading no longer need: settled agenda rows and finished
    recurring runs due before `done_before` (planning never goes back that far, and the event
    ids would dedupe a repeat anyway), and per-trigger stats hours before `stats_before`."""
    counts: dict[str, int] = {}
    for table, sql, cutoff in (
        (
            "time_agenda",
            "DELETE FROM time_agenda WHERE status <> 'pending' AND due_at < $1",
            done_before,
        ),
        (
            "recurring_runs",
            "DELETE FROM recurring_runs WHERE status <> 'pending' AND due_at < $1",
            done_before,
        ),
        ("trigger_stats", "DELETE FROM trigger_stats WHERE hour < $1", stats_before),
    ):
        done = await conn.execute(sql, cutoff)
        counts[table] = int(done.rsplit(" ", 1)[-1])
    return counts
