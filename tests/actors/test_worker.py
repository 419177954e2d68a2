"""The partition worker's own logic against real Postgres, without Ray."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from actors.worker import PartitionWorker, WorkerConfig, _is_outage
from pipelines.projection import Contact
from store import db
from store.partition import PartitionStore


def test_clearing_a_full_contact_cache_keeps_the_batch_contacts(
    database_url: str, settings: Any
) -> None:
    """A cleared cache must reload every contact of the batch, not only the ones it missed."""

    async def go() -> None:
        worker = PartitionWorker(
            WorkerConfig(0, 1, 1, database_url, settings.redis_url, contact_cache=3)
        )
        pool = await db.create_pool(database_url, 1, 2)
        worker._store = PartitionStore(pool)
        account = uuid.uuid4()
        gone, others = uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
        try:
            await pool.execute("INSERT INTO accounts (id, name) VALUES ($1, 'c')", account)
            await pool.execute(
                "INSERT INTO contacts (account_id, contact_id, state, deleted)"
                " VALUES ($1, $2, $3, true)",
                account,
                gone,
                {"email": "a@b.co"},
            )
            await worker._load_contacts({(account, gone)})
            await worker._load_contacts({(account, gone)} | {(account, o) for o in others})
            assert worker._contacts[(account, gone)].deleted
            assert worker._contacts[(account, gone)].state == {"email": "a@b.co"}
            assert all(worker._contacts[(account, o)] == Contact() for o in others)
        finally:
            await pool.execute("DELETE FROM accounts WHERE id = $1", account)
            await worker.disconnect()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (asyncpg.TooManyConnectionsError("too many"), True),
        (asyncpg.SerializationError("retry"), True),
        (asyncpg.DeadlockDetectedError("deadlock"), True),
        (asyncpg.ReadOnlySQLTransactionError("read only"), True),
        (asyncpg.AdminShutdownError("shutdown"), True),
        (asyncpg.CannotConnectNowError("starting"), True),
        (asyncpg.ObjectNotInPrerequisiteStateError("not accepting connections"), True),
        (ConnectionRefusedError(), True),
        (asyncpg.ForeignKeyViolationError("fk"), False),
        (asyncpg.DataError("bad value"), False),
        (TypeError("Integer exceeds 64-bit range"), False),
    ],
)
def test_outages_are_told_from_bad_batches(exc: BaseException, outage: bool) -> None:
    assert _is_outage(exc) is outage
