"""Postgres side of stream processing: batch reads and one-transaction batch writes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.enrollment import BusinessHours, ContactKey, Enrollment, Last, LogEntry, PairKey
from pipelines.messages import encode_enrollment
from pipelines.projection import Contact, date_fields
from pipelines.reasons import ENROLLMENT_BLOCKS
from pipelines.trigger_stats import (
    Decision,
    Tally,
    TriggerKey,
    hour_of,
    tally,
)
from store.db import Conn, Executor


async def load_contacts(conn: Executor, keys: Iterable[ContactKey]) -> dict[ContactKey, Contact]:
    accounts, contacts = _columns(keys, 2)
    rows = await conn.fetch(
        "SELECT k.a AS account_id, k.c AS contact_id, c.state, c.deleted, c.event_ts"
        " FROM unnest($1::uuid[], $2::uuid[]) AS k(a, c) CROSS JOIN LATERAL (SELECT state,"
        " deleted, event_ts FROM contacts WHERE account_id = k.a AND contact_id = k.c) c",
        accounts,
        contacts,
    )
    return {
        (r["account_id"], r["contact_id"]): Contact(r["state"], r["deleted"], r["event_ts"])
        for r in rows
    }


async def load_history(conn: Executor, pairs: Iterable[PairKey]) -> dict[PairKey, Last]:
    """The latest enrollment of each (account, workflow, contact)."""
    accounts, workflows, contacts = _columns(pairs, 3)
    # One index probe per pair (LATERAL ... LIMIT 1): the plan cannot turn into a scan of
    # all enrollments when the table's statistics are stale.
    rows = await conn.fetch(
        "SELECT k.a AS account_id, k.w AS workflow_id, k.c AS contact_id, e.event_id,"
        " e.enrolled_at FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS k(a, w, c)"
        " CROSS JOIN LATERAL (SELECT event_id, enrolled_at FROM workflow_enrollments"
        " WHERE account_id = k.a AND contact_id = k.c AND workflow_id = k.w"
        " ORDER BY enrolled_at DESC LIMIT 1) e",
        accounts,
        workflows,
        contacts,
    )
    return {
        (r["account_id"], r["workflow_id"], r["contact_id"]): Last(r["event_id"], r["enrolled_at"])
        for r in rows
    }


def _columns(rows: Iterable[tuple[Any, ...]], width: int) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


async def write_batch(
    conn: Conn,
    contacts: dict[ContactKey, Contact],
    enrollments: list[Enrollment],
    logs: list[LogEntry],
    evaluated: Mapping[TriggerKey, int] | None = None,
) -> list[Enrollment]:
    """Projection upserts, enrollments, logs and per-trigger stats in one transaction; returns
    the enrollments actually inserted (a redelivered event inserts none). Publishing them is
    the caller's, after commit (docs/architecture.md, the walk of one event)."""
    async with conn.transaction():
        if contacts:
            await _upsert_contacts(conn, contacts)
            await _replace_dates(conn, contacts)
        inserted: dict[uuid.UUID, datetime] = {}
        if enrollments:
            inserted = await _insert_enrollments(conn, enrollments)
        decisions = await _insert_logs(conn, logs) if logs else []
        added = [replace(e, enrolled_at=inserted[e.id]) for e in enrollments if e.id in inserted]
        if evaluated is not None:
            await _add_stats(conn, tally(evaluated, decisions, added))
    return added


async def _upsert_contacts(conn: Conn, contacts: dict[ContactKey, Contact]) -> None:
    keys = list(contacts)
    await conn.execute(
        "INSERT INTO contacts (account_id, contact_id, state, tags, deleted, event_ts, updated_at)"
        " SELECT a, c, s, ARRAY(SELECT jsonb_array_elements_text(CASE WHEN"
        " jsonb_typeof(s->'tags') = 'array' THEN s->'tags' ELSE '[]' END)), d, t, now()"
        " FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::bool[], $5::timestamptz[])"
        " AS u(a, c, s, d, t)"
        " ON CONFLICT (account_id, contact_id) DO UPDATE SET state = EXCLUDED.state,"
        " tags = EXCLUDED.tags, deleted = contacts.deleted OR EXCLUDED.deleted,"
        " event_ts = EXCLUDED.event_ts, updated_at = now()"
        " WHERE contacts.event_ts IS NULL OR contacts.event_ts <= EXCLUDED.event_ts",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [contacts[k].state for k in keys],
        [contacts[k].deleted for k in keys],
        [contacts[k].event_ts for k in keys],
    )


async def _replace_dates(conn: Conn, contacts: dict[ContactKey, Contact]) -> None:
    """Keep contact_dates equal to the dates in each changed contact's state."""
    keys = list(contacts)
    rows = [
        (a, c, name, day)
        for (a, c) in keys
        for name, day in date_fields(contacts[(a, c)].state).items()
    ]
    await conn.execute(
        "DELETE FROM contact_dates d USING unnest($1::uuid[], $2::uuid[]) AS k(a, c)"
        " WHERE d.account_id = k.a AND d.contact_id = k.c",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    if rows:
        await conn.execute(
            "INSERT INTO contact_dates (account_id, contact_id, field, day, md)"
            " SELECT a, c, f, d, (extract(month FROM d) * 100 + extract(day FROM d))::smallint"
            " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::date[]) AS u(a, c, f, d)",
            *_columns(rows, 4),
        )


async def _insert_enrollments(
    conn: Conn, enrollments: list[Enrollment]
) -> dict[uuid.UUID, datetime]:
    """Insert what is new; {id: enrolled_at} of the rows inserted. No outbox row: the batch
    publishes after commit and before it acknowledges, and writes outbox rows only when
    publishing fails (`hold_unpublished`); a crash in between is made good by the redelivery
    (`committed_entries`)."""
    rows = await conn.fetch(
        "INSERT INTO workflow_enrollments (id, account_id, workflow_id, trigger_id, contact_id,"
        " event_id, status, run_at, event_data, single, ingested_at, enrolled_at)"
        " SELECT u.id, u.a, u.w, u.t, u.c, u.e, u.s, u.r, u.d, u.single, u.i, clock_timestamp()"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],"
        " $6::uuid[], $7::text[], $8::timestamptz[], $9::jsonb[], $10::bool[],"
        " $11::timestamptz[]) AS u(id, a, w, t, c, e, s, r, d, single, i)"
        " ON CONFLICT DO NOTHING RETURNING id, enrolled_at",
        [e.id for e in enrollments],
        [e.account_id for e in enrollments],
        [e.workflow_id for e in enrollments],
        [e.trigger_id for e in enrollments],
        [e.contact_id for e in enrollments],
        [e.event_id for e in enrollments],
        [e.status for e in enrollments],
        [e.run_at for e in enrollments],
        [e.event_data for e in enrollments],
        [e.single for e in enrollments],
        [e.ingested_at for e in enrollments],
    )
    return {r["id"]: r["enrolled_at"] for r in rows}


async def _insert_logs(conn: Conn, logs: list[LogEntry]) -> list[Decision]:
    """Insert what is new; the decisions actually recorded."""
    rows = await conn.fetch(
        "INSERT INTO trigger_execution_logs (account_id, workflow_id, trigger_id, contact_id,"
        " event_id, event_type, matched, enrolled, failure_reason, details, occurred_at)"
        " SELECT a, w, t, c, e, ty, m, en, f, d, coalesce(o, now()) FROM unnest($1::uuid[],"
        " $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::bool[], $8::bool[],"
        " $9::text[], $10::jsonb[], $11::timestamptz[]) AS u(a, w, t, c, e, ty, m, en, f, d, o)"
        " ON CONFLICT DO NOTHING RETURNING account_id, workflow_id, trigger_id, matched, enrolled,"
        " failure_reason",
        [g.account_id for g in logs],
        [g.workflow_id for g in logs],
        [g.trigger_id for g in logs],
        [g.contact_id for g in logs],
        [g.event_id for g in logs],
        [g.event_type for g in logs],
        [g.matched for g in logs],
        [g.enrolled for g in logs],
        [g.failure_reason for g in logs],
        [g.details for g in logs],
        [g.occurred_at for g in logs],
    )
    return [
        Decision(
            (r["account_id"], r["workflow_id"], r["trigger_id"]),
            r["matched"],
            r["enrolled"],
            r["failure_reason"],
        )
        for r in rows
    ]


async def _add_stats(conn: Conn, tallies: dict[TriggerKey, Tally]) -> None:
    """Add a batch's tallies to the trigger's current hour (rows in key order: no deadlocks)."""
    if not tallies:
        return
    hour = hour_of(datetime.now(UTC))
    keys = sorted(tallies)
    t = [tallies[k] for k in keys]
    await conn.execute(
        "INSERT INTO trigger_stats AS s (account_id, workflow_id, trigger_id, hour, evaluated,"
        " matched, enrolled, errors, already_enrolled, cooldown, contact_deleted, loop_depth,"
        " latency_ms) SELECT a, w, tr, $4, ev, m, en, er, ae, cd, dl, ld,"
        " string_to_array(lat, ',')::bigint[] FROM unnest($1::uuid[], $2::uuid[], $3::uuid[],"
        " $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],"
        " $11::bigint[], $12::bigint[], $13::text[])"
        " AS u(a, w, tr, ev, m, en, er, ae, cd, dl, ld, lat)"
        " ON CONFLICT (account_id, workflow_id, hour, trigger_id) DO UPDATE SET"
        " evaluated = s.evaluated + EXCLUDED.evaluated, matched = s.matched + EXCLUDED.matched,"
        " enrolled = s.enrolled + EXCLUDED.enrolled, errors = s.errors + EXCLUDED.errors,"
        " already_enrolled = s.already_enrolled + EXCLUDED.already_enrolled,"
        " cooldown = s.cooldown + EXCLUDED.cooldown,"
        " contact_deleted = s.contact_deleted + EXCLUDED.contact_deleted,"
        " loop_depth = s.loop_depth + EXCLUDED.loop_depth,"
        " latency_ms = ARRAY(SELECT x + y FROM unnest(s.latency_ms, EXCLUDED.latency_ms)"
        " WITH ORDINALITY AS l(x, y, n) ORDER BY n)",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        hour,
        [x.evaluated for x in t],
        [x.matched for x in t],
        [x.enrolled for x in t],
        [x.errors for x in t],
        *([x.blocked[r] for x in t] for r in ENROLLMENT_BLOCKS),
        [",".join(map(str, x.latency)) for x in t],
    )


async def hold_unpublished(conn: Executor, items: list[tuple[uuid.UUID, int]]) -> None:
    """Outbox rows (enrollment id, shard) for committed enrollments that could not be
    published: the partition of that shard publishes them later."""
    await conn.execute(
        "INSERT INTO enrollment_outbox (enrollment_id, shard)"
        " SELECT * FROM unnest($1::uuid[], $2::int[]) ON CONFLICT DO NOTHING",
        [i for i, _ in items],
        [s for _, s in items],
    )


async def committed_entries(
    conn: Executor, ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID, bytes]]:
    """(id, event id, encoded entry) of those of `ids` that are committed and triggered: what a
    redelivered batch publishes again, since its first delivery may have committed them and
    stopped before publishing."""
    rows = await conn.fetch(
        "SELECT id, account_id, workflow_id, trigger_id, contact_id, event_id, status, run_at,"
        " enrolled_at, event_data FROM workflow_enrollments"
        " WHERE id = ANY($1::uuid[]) AND status = 'triggered'",
        ids,
    )
    return [(r["id"], r["event_id"], encode_enrollment(r)) for r in rows]


async def mark_published(conn: Executor, ids: list[uuid.UUID]) -> None:
    await conn.execute("DELETE FROM enrollment_outbox WHERE enrollment_id = ANY($1::uuid[])", ids)


async def unpublished(
    conn: Executor, shards: list[int], limit: int
) -> list[tuple[uuid.UUID, bytes]]:
    """Committed enrollments not yet on the enrollments stream (the outbox), oldest first."""
    rows = await conn.fetch(
        "SELECT e.id, e.account_id, e.workflow_id, e.trigger_id, e.contact_id, e.event_id,"
        " e.status, e.run_at, e.enrolled_at, e.event_data FROM enrollment_outbox o"
        " JOIN workflow_enrollments e ON e.id = o.enrollment_id"
        " WHERE o.shard = ANY($1::int[]) ORDER BY o.created_at LIMIT $2",
        shards,
        limit,
    )
    return [(r["id"], encode_enrollment(r)) for r in rows]


async def load_business_hours(
    conn: Executor, account_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, BusinessHours]:
    rows = await conn.fetch(
        "SELECT id, timezone, business_hours FROM accounts WHERE id = ANY($1::uuid[])",
        list(account_ids),
    )
    return {r["id"]: BusinessHours(ZoneInfo(r["timezone"]), r["business_hours"]) for r in rows}


async def known_accounts(conn: Executor, among: Iterable[uuid.UUID] | None) -> set[uuid.UUID]:
    """The account ids that exist (all of them, or those `among` the given ones)."""
    if among is None:
        rows = await conn.fetch("SELECT id FROM accounts")
    else:
        rows = await conn.fetch("SELECT id FROM accounts WHERE id = ANY($1::uuid[])", list(among))
    return {r["id"] for r in rows}
