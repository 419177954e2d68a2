"""The scheduler's hourly pruning: settled agenda rows and runs past any catch-up, stats hours
past any window; pending and recent rows stay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from actors.scheduler import SchedulerConfig, SchedulerWorker
from pipelines.trigger_stats import BUCKETS
from tests.support.db import Db
from tests.support.factories import Tenant

MakeTenant = Callable[..., Tenant]
NOW = datetime(2031, 1, 1, 12, tzinfo=UTC)


async def _seed(conn: Any, account_id: uuid.UUID, trigger_id: uuid.UUID) -> None:
    for occurrence, due, status in (
        ("old-emitted", NOW - timedelta(days=30), "emitted"),
        ("old-stale", NOW - timedelta(days=30), "stale"),
        ("old-pending", NOW - timedelta(days=30), "pending"),
        ("recent-emitted", NOW - timedelta(days=2), "emitted"),
    ):
        await conn.execute(
            "INSERT INTO time_agenda (trigger_id, contact_id, occurrence, account_id, field,"
            " day, due_at, status) VALUES ($1, $2, $3, $4, 'birthday', '2000-01-01', $5, $6)",
            trigger_id,
            uuid.uuid4(),
            occurrence,
            account_id,
            due,
            status,
        )
    for occurrence, due, status in (
        ("old-done", NOW - timedelta(days=30), "done"),
        ("old-pending", NOW - timedelta(days=30), "pending"),
    ):
        await conn.execute(
            "INSERT INTO recurring_runs (trigger_id, occurrence, account_id, due_at, status)"
            " VALUES ($1, $2, $3, $4, $5)",
            trigger_id,
            occurrence,
            account_id,
            due,
            status,
        )
    for hour in (NOW - timedelta(days=500), NOW - timedelta(days=30)):
        await conn.execute(
            "INSERT INTO trigger_stats (account_id, workflow_id, trigger_id, hour,"
            " latency_ms) VALUES ($1, $2, $3, $4, $5)",
            account_id,
            uuid.uuid4(),
            trigger_id,
            hour,
            [0] * BUCKETS,
        )


def test_scheduler_prunes_what_nothing_needs_any_more(
    tenant: MakeTenant, db_sync: Db, settings: Any
) -> None:
    t = tenant()
    trigger_id = uuid.uuid4()
    db_sync.run(lambda c: _seed(c, t.account_id, trigger_id))

    async def prune_twice() -> None:
        worker = SchedulerWorker(SchedulerConfig(4, settings.database_url, settings.redis_url))
        await worker.start()
        try:
            await worker._prune(NOW)
            async with worker._need_pool().acquire() as conn:  # a second lot, within the hour
                await _seed(conn, t.account_id, uuid.uuid4())
            await worker._prune(NOW + timedelta(minutes=30))  # hourly: not yet again
        finally:
            await worker.close()

    asyncio.run(prune_twice())
    agenda = db_sync.fetch(
        "SELECT occurrence FROM time_agenda WHERE trigger_id = $1 ORDER BY 1", trigger_id
    )
    assert [r["occurrence"] for r in agenda] == ["old-pending", "recent-emitted"]
    runs = db_sync.fetch("SELECT occurrence FROM recurring_runs WHERE trigger_id = $1", trigger_id)
    assert [r["occurrence"] for r in runs] == ["old-pending"]
    stats = db_sync.fetch("SELECT hour FROM trigger_stats WHERE trigger_id = $1", trigger_id)
    assert [r["hour"] for r in stats] == [NOW - timedelta(days=30)]
    # the second lot came within the hour: untouched until the next prune
    assert (
        db_sync.value("SELECT count(*) FROM time_agenda WHERE account_id = $1", t.account_id)
        == 2 + 4
    )
    db_sync.run(lambda c: c.execute("DELETE FROM time_agenda WHERE account_id = $1", t.account_id))
    db_sync.run(
        lambda c: c.execute("DELETE FROM recurring_runs WHERE account_id = $1", t.account_id)
    )
