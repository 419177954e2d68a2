"""What an account uses (docs/contract.md §15), in Postgres: migration 0014's triggers keep it
equal to what the rows count, through soft and hard deletes; a database migrated before 0014
gets its counts and its triggers' sizes; the API may read its own account's use only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from hairtrigger import embedded
from pipelines import sizes
from pipelines.examples import all_of, cond
from pipelines.quotas import Usage
from pipelines.triggers import TriggerConfig, validate_trigger
from store import accounts, db, quotas
from store import workflows as store
from store.db import TenantPool
from store.migrate import migrate, migration_files
from tests.support.db import Db
from tests.support.servers import fresh_database


def _tags(*tags: str) -> TriggerConfig:
    return validate_trigger("contact", "tag_added", all_of(cond("tag", "in", list(tags))), {})


async def _both(conn: Any, account_id: uuid.UUID) -> tuple[Usage, Usage]:
    return await quotas.usage(conn, account_id), await quotas.counted(conn, account_id)


def test_usage_follows_every_write_and_equals_the_rows(db_sync: Db) -> None:
    async def work(conn: Any) -> None:
        account_id = await accounts.create_account(conn, "usage")
        try:
            assert await quotas.usage(conn, account_id) == Usage()
            first = await store.insert_workflow(conn, account_id, "a", "", [])
            second = await store.insert_workflow(conn, account_id, "b", "", [])
            small, large = _tags("vip"), _tags(*(f"t{n}" for n in range(40)))
            one = await store.insert_trigger(conn, account_id, first["id"], small, True)
            await store.insert_trigger(conn, account_id, second["id"], large, True)
            expected = Usage(
                workflows=2,
                triggers=2,
                largest_filter_bytes=sizes.filter_bytes(large.filters),
                index_bytes=sizes.index_bytes(small.filters) + sizes.index_bytes(large.filters),
            )
            assert await _both(conn, account_id) == (expected, expected)
            await store.replace_trigger(conn, account_id, one["id"], large, True)
            await store.update_workflow(conn, first["id"], {"status": "active"})
            used, rows = await _both(conn, account_id)
            assert used == rows
            assert used.index_bytes == 2 * sizes.index_bytes(large.filters)
            await store.delete_trigger(conn, one["id"])
            await store.delete_workflow(conn, first["id"])
            used, rows = await _both(conn, account_id)
            assert used == rows
            assert (used.workflows, used.triggers) == (1, 1)
            await conn.execute("DELETE FROM workflows WHERE id = $1", second["id"])  # cascades
            assert await _both(conn, account_id) == (Usage(), Usage())
        finally:
            await conn.execute("DELETE FROM accounts WHERE id = $1", account_id)
        assert not await conn.fetchval(
            "SELECT count(*) FROM account_usage WHERE account_id = $1", account_id
        )

    db_sync.run(work)


def test_an_account_with_workflows_and_triggers_deletes_cleanly(db_sync: Db) -> None:
    async def work(conn: Any) -> None:
        account_id = await accounts.create_account(conn, "gone")
        for n in range(3):
            workflow = await store.insert_workflow(conn, account_id, f"w{n}", "", [])
            await store.insert_trigger(conn, account_id, workflow["id"], _tags(f"t{n}"), True)
        await conn.execute("DELETE FROM accounts WHERE id = $1", account_id)
        assert await quotas.usage(conn, account_id) == Usage()

    db_sync.run(work)


def test_the_api_reads_its_own_accounts_use_and_writes_none(db_sync: Db) -> None:
    async def work(conn: Any) -> None:
        mine = await accounts.create_account(conn, "mine")
        theirs = await accounts.create_account(conn, "theirs")
        pool = await db.create_pool(db_sync.url, api_role=True)
        try:
            await store.insert_workflow(conn, theirs, "w", "", [])
            as_me = TenantPool(pool, lambda: mine)
            await store.insert_workflow(as_me, mine, "w", "", [])  # the API role's own write
            assert (await quotas.usage(as_me, mine)).workflows == 1
            assert (await quotas.usage(as_me, theirs)).workflows == 0  # hidden, not counted
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await as_me.execute(
                    "UPDATE account_usage SET workflows = 0 WHERE account_id = $1", mine
                )
        finally:
            await pool.close()
            await conn.execute("DELETE FROM accounts WHERE id = ANY($1)", [mine, theirs])

    db_sync.run(work)


@pytest.fixture
def empty_database(services: embedded.Services) -> Iterator[str]:
    with fresh_database(services.database_url, "ht_quotas", migrated=False) as url:
        yield url


def test_a_database_migrated_before_quotas_gets_its_counts_and_sizes(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [m for m in migration_files() if m[0] < "0014"]
    filters = all_of(cond("tag", "in", ["a", "b"]))
    parsed = validate_trigger("contact", "tag_added", filters, {}).filters

    async def old_rows(conn: Any) -> uuid.UUID:
        monkeypatch.setattr("store.migrate.migration_files", lambda: before)
        await migrate(conn)
        account_id = await accounts.create_account(conn, "old")
        for n, deleted in enumerate((False, False, True)):
            workflow = uuid.uuid4()
            await conn.execute(
                "INSERT INTO workflows (id, account_id, name) VALUES ($1, $2, $3)",
                workflow,
                account_id,
                f"w{n}",
            )
            await conn.execute(
                "INSERT INTO workflow_triggers (id, account_id, workflow_id, trigger_type,"
                " trigger_event, filters, settings, deleted_at) VALUES ($1, $2, $3, 'contact',"
                " 'tag_added', $4, '{}', CASE WHEN $5 THEN now() END)",
                uuid.uuid4(),
                account_id,
                workflow,
                orjson.loads(orjson.dumps(filters)),
                deleted,
            )
        monkeypatch.undo()
        assert await migrate(conn) == ["0014_quotas"]
        return account_id

    check = Db(empty_database)
    account_id = check.run(old_rows)
    used, rows = check.run(lambda c: _both(c, account_id))
    assert used == rows == Usage(3, 2, sizes.filter_bytes(parsed), 2 * sizes.index_bytes(parsed))
