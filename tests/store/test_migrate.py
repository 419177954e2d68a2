"""The migration runner: ordered, once each, safe when two processes start together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from hairtrigger import embedded
from store import db
from store.migrate import migrate, migration_files
from tests.support.db import Db
from tests.support.servers import fresh_database

TABLES = {
    "accounts", "api_keys", "workflows", "workflow_triggers", "trigger_audit_log", "contacts",
    "workflow_enrollments", "trigger_execution_logs",
}  # fmt: skip


@pytest.fixture
def empty_database(services: embedded.Services) -> Iterator[str]:
    with fresh_database(services.database_url, "ht_migrate", migrated=False) as url:
        yield url


async def _migrate_concurrently(url: str, n: int) -> list[list[str]]:
    conns = [await db.connect(url) for _ in range(n)]
    try:
        return list(await asyncio.gather(*(migrate(c) for c in conns)))
    finally:
        for c in conns:
            await c.close()


def test_concurrent_migrations_apply_each_file_once(empty_database: str) -> None:
    results = asyncio.run(_migrate_concurrently(empty_database, 4))
    versions = [v for v, _ in migration_files()]
    assert sorted(results, key=len, reverse=True)[0] == versions
    assert sum(len(r) for r in results) == len(versions)
    check = Db(empty_database)
    applied = check.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in applied] == versions
    assert asyncio.run(_migrate_concurrently(empty_database, 1)) == [[]]
    tables = check.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    assert {r["table_name"] for r in tables} >= TABLES


def test_every_tenant_table_has_account_id(empty_database: str) -> None:
    asyncio.run(_migrate_concurrently(empty_database, 1))
    rows = Db(empty_database).fetch(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_name = 'account_id'"
    )
    assert {r["table_name"] for r in rows} >= TABLES - {"accounts"}


def test_database_allows_one_live_trigger_per_workflow(db_sync: Db) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        account, workflow = uuid.uuid4(), uuid.uuid4()
        await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, 'x')", account)
        await conn.execute(
            "INSERT INTO workflows (id, account_id, name) VALUES ($1, $2, 'w')", workflow, account
        )
        insert = (
            "INSERT INTO workflow_triggers (id, account_id, workflow_id, trigger_type,"
            " trigger_event, filters, settings, deleted_at) VALUES ($1, $2, $3, 'contact',"
            " 'tag_added', '{}', '{}', $4)"
        )
        try:
            await conn.execute(insert, uuid.uuid4(), account, workflow, None)
            await conn.execute(insert, uuid.uuid4(), account, workflow, datetime.now(UTC))
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(insert, uuid.uuid4(), account, workflow, None)
        finally:
            await conn.execute("DELETE FROM accounts WHERE id = $1", account)

    db_sync.run(work)
