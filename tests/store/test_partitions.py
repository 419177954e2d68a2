"""Partitions that age out, against a real Postgres of the module's own: made ahead, dropped past
retention, skipped (never queued in front of the writers) while a transaction holds the table;
ended enrollments moved to the history; a populated database migrated into partitions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hairtrigger import embedded
from pipelines.partitions import LOGS
from store import ageout, db, logs, partitions
from store.migrate import migrate
from tests.support.db import Db
from tests.support.servers import fresh_database

NOW = datetime.now(UTC)
AGING_OUT = "0012_aging_out"  # the migration that partitions the logs
OLD_DAY = (NOW - timedelta(days=40)).date()
RETENTION = ageout.Retention(log_days=30, enrollment_days=60, live_hours=8 * 24)


@pytest.fixture(scope="module")
def own_db(services: embedded.Services) -> Iterator[Db]:
    with fresh_database(services.database_url, "ht_partitions") as url:
        yield Db(url)


@pytest.fixture
def account(own_db: Db) -> uuid.UUID:
    account_id = uuid.uuid4()
    own_db.run(lambda c: c.execute("INSERT INTO accounts (id, name) VALUES ($1, 'a')", account_id))
    return account_id


async def _log(conn: Any, account_id: uuid.UUID, at: datetime, event_id: uuid.UUID) -> int:
    """One decision's log row as the batch path writes it; how many rows it inserted."""
    done = await conn.execute(
        "INSERT INTO trigger_execution_logs (account_id, workflow_id, trigger_id, contact_id,"
        " event_id, event_type, matched, occurred_at) VALUES ($1, $1, $1, $1, $2,"
        " 'contact.tag_added', true, $3) ON CONFLICT DO NOTHING",
        account_id,
        event_id,
        at,
    )
    return int(done.rsplit(" ", 1)[-1])


def _partition_of(database: Db, event_id: uuid.UUID) -> list[str]:
    rows = database.fetch(
        "SELECT tableoid::regclass::text AS p FROM trigger_execution_logs WHERE event_id = $1",
        event_id,
    )
    return [r["p"] for r in rows]


def test_a_fresh_database_has_a_week_of_log_partitions_ahead(own_db: Db) -> None:
    async def work(conn: Any) -> Any:
        return await partitions.existing(conn, LOGS)

    found = own_db.run(work)
    for days in range(8):
        assert (NOW + timedelta(days=days)).date() in found


def test_a_replayed_event_lands_in_its_own_partition_and_inserts_nothing(
    own_db: Db, account: uuid.UUID
) -> None:
    event_id = uuid.uuid4()

    async def work(conn: Any) -> list[int]:
        return [await _log(conn, account, NOW, event_id) for _ in range(2)]

    assert own_db.run(work) == [1, 0]
    assert _partition_of(own_db, event_id) == [LOGS.name(NOW.date())]


def test_old_partitions_are_dropped_and_recent_rows_kept(own_db: Db, account: uuid.UUID) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()

    async def work(conn: Any) -> ageout.Report:
        assert await partitions.create(conn, LOGS, OLD_DAY)
        await _log(conn, account, datetime.combine(OLD_DAY, datetime.min.time(), UTC), old)
        await _log(conn, account, NOW, recent)
        return await ageout.age_out(conn, RETENTION, NOW)

    report = own_db.run(work)
    assert LOGS.name(OLD_DAY) in report.dropped
    assert _partition_of(own_db, old) == []
    assert _partition_of(own_db, recent) == [LOGS.name(NOW.date())]


def test_the_drop_skips_while_a_batch_transaction_holds_the_table_and_writers_go_on(
    own_db: Db, account: uuid.UUID
) -> None:
    """The job must neither wait for the long transaction nor queue a lock that the next
    writer would wait behind: both finish while the transaction is still open."""

    async def work(conn: Any) -> tuple[ageout.Report, int, ageout.Report]:
        assert await partitions.create(conn, LOGS, OLD_DAY)
        holder = await db.connect(own_db.url)
        writer = await db.connect(own_db.url)
        try:
            batch = holder.transaction()
            await batch.start()
            await _log(holder, account, NOW, uuid.uuid4())  # a batch still writing
            report, wrote = await asyncio.gather(
                ageout.age_out(conn, RETENTION, NOW), _log(writer, account, NOW, uuid.uuid4())
            )
            wrote += await _log(writer, account, NOW, uuid.uuid4())  # after the job
            waiting = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")
            assert waiting == 0
            await batch.commit()
        finally:
            await holder.close()
            await writer.close()
        return report, wrote, await ageout.age_out(conn, RETENTION, NOW)

    skipped, wrote, later = own_db.run(work)
    assert LOGS.name(OLD_DAY) in skipped.skipped
    assert not skipped.dropped
    assert wrote == 2
    assert LOGS.name(OLD_DAY) in later.dropped


def test_a_row_for_a_day_not_yet_made_waits_in_the_default_partition_and_moves_in(
    own_db: Db, account: uuid.UUID
) -> None:
    far, ancient = uuid.uuid4(), uuid.uuid4()
    day = (NOW + timedelta(days=20)).date()

    async def work(conn: Any) -> None:
        await _log(conn, account, NOW + timedelta(days=20), far)
        await _log(conn, account, datetime(1999, 1, 1, tzinfo=UTC), ancient)
        await ageout.age_out(conn, RETENTION, NOW)

    own_db.run(work)
    assert _partition_of(own_db, far) == [LOGS.default]
    assert _partition_of(own_db, ancient) == []  # past retention: deleted
    own_db.run(lambda c: ageout.age_out(c, RETENTION, NOW + timedelta(days=14)))
    assert _partition_of(own_db, far) == [LOGS.name(day)]


def test_a_zero_retention_keeps_every_partition(own_db: Db, account: uuid.UUID) -> None:
    keep = ageout.Retention(log_days=0, enrollment_days=0, live_hours=0)

    async def work(conn: Any) -> ageout.Report:
        await partitions.create(conn, LOGS, OLD_DAY)
        return await ageout.age_out(conn, keep, NOW)

    assert own_db.run(work).dropped == []


async def _enroll(
    conn: Any, account_id: uuid.UUID, workflow_id: uuid.UUID, contact_id: uuid.UUID, **row: Any
) -> uuid.UUID:
    enrollment_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO workflow_enrollments (id, account_id, workflow_id, trigger_id, contact_id,"
        " event_id, status, run_at, enrolled_at, single) VALUES ($1, $2, $3, $3, $4, $5, $6,"
        " $7, $7, $8)",
        enrollment_id,
        account_id,
        workflow_id,
        contact_id,
        uuid.uuid4(),
        row.get("status", "triggered"),
        row["at"],
        row.get("single", False),
    )
    return enrollment_id


def test_ended_enrollments_move_to_the_history_and_the_live_ones_stay(
    own_db: Db, account: uuid.UUID
) -> None:
    w, contact = uuid.uuid4(), uuid.uuid4()
    old, older = NOW - timedelta(days=20), NOW - timedelta(days=21)

    async def work(conn: Any) -> dict[str, uuid.UUID]:
        ids = {
            "superseded": await _enroll(conn, account, w, contact, at=older),
            "latest": await _enroll(conn, account, w, contact, at=old),
            "single": await _enroll(conn, account, uuid.uuid4(), contact, at=old, single=True),
            "queued": await _enroll(conn, account, uuid.uuid4(), contact, at=old, status="queued"),
            "unpublished": await _enroll(conn, account, uuid.uuid4(), contact, at=old),
            "recent": await _enroll(conn, account, uuid.uuid4(), contact, at=NOW),
            "expired": await _enroll(conn, account, uuid.uuid4(), contact, at=NOW - timedelta(90)),
        }
        await conn.execute(
            "INSERT INTO enrollment_outbox (enrollment_id, shard) VALUES ($1, 0)",
            ids["unpublished"],
        )
        # a live trigger with a 30-day cooldown keeps its pair's latest enrollment live
        await conn.execute(
            "INSERT INTO workflows (id, account_id, name) VALUES ($1, $2, 'w')", w, account
        )
        await conn.execute(
            "INSERT INTO workflow_triggers (id, account_id, workflow_id, trigger_type,"
            " trigger_event, filters, settings) VALUES ($1, $2, $1, 'contact', 'tag_added',"
            " '{}', $3)",
            w,
            account,
            {"enrollment_limit": "multiple", "reenroll_cooldown_seconds": 30 * 86400},
        )
        await ageout.age_out(conn, RETENTION, NOW)
        return ids

    ids = own_db.run(work)
    live = {r["id"] for r in own_db.fetch("SELECT id FROM workflow_enrollments")}
    history = {r["id"] for r in own_db.fetch("SELECT id FROM workflow_enrollment_history")}
    assert history == {ids["superseded"]}
    assert live >= {ids[k] for k in ("latest", "single", "queued", "unpublished", "recent")}
    assert ids["expired"] not in live | history

    async def listed(conn: Any) -> list[uuid.UUID]:
        rows = await logs.list_enrollments(
            conn,
            account,
            w,
            contact_id=None,
            status=None,
            since=None,
            until=None,
            limit=1,
            before=(old, ids["latest"]),
        )
        return [r["id"] for r in rows]

    assert own_db.run(listed) == [ids["superseded"]]  # the REST view reads both


def test_a_populated_database_migrates_into_partitions(
    services: embedded.Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store import migrate as migrations

    every = migrations.migration_files()
    later = [version for version, _ in every if version >= AGING_OUT]  # it and those after it
    with fresh_database(services.database_url, "ht_partitions_old", migrated=False) as url:
        old = Db(url)
        monkeypatch.setattr(migrations, "migration_files", lambda: every[: -len(later)])
        old.run(migrate)
        account, event_id = uuid.uuid4(), uuid.uuid4()

        async def seed(conn: Any) -> None:
            await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, 'a')", account)
            for days in (0, 3, 400):
                await conn.execute(
                    "INSERT INTO trigger_execution_logs (account_id, workflow_id, trigger_id,"
                    " contact_id, event_id, event_type, matched, created_at) VALUES ($1, $1,"
                    " $1, $1, $2, 'contact.tag_added', true, $3)",
                    account,
                    event_id if days == 0 else uuid.uuid4(),
                    NOW - timedelta(days=days),
                )

        old.run(seed)
        monkeypatch.setattr(migrations, "migration_files", lambda: every)
        assert old.run(migrate) == later
        rows = old.fetch(
            "SELECT tableoid::regclass::text AS p, id FROM trigger_execution_logs ORDER BY id"
        )
        assert [r["p"] for r in rows] == [
            LOGS.name(NOW.date()),
            LOGS.name((NOW - timedelta(days=3)).date()),
            LOGS.default,
        ]

        async def more(conn: Any) -> tuple[int, int]:
            repeat = await _log(conn, account, NOW, event_id)  # the once-only index holds
            await _log(conn, account, NOW, uuid.uuid4())
            return repeat, int(await conn.fetchval("SELECT max(id) FROM trigger_execution_logs"))

        repeat, top = old.run(more)
        assert repeat == 0
        assert top > rows[-1]["id"]  # the id sequence carries on
