"""Loop keys in Postgres (REQ-N-003): written with every trigger, filled in by migrate() for
triggers saved before them, and looked up for the connection's own account only."""

from __future__ import annotations

import uuid
from typing import Any

from pipelines.loop_search import listen_keys
from pipelines.triggers import validate_trigger
from store import accounts, db
from store import workflows as store
from store.db import TenantPool
from store.migrate import migrate
from tests.support.db import Db


def _tag_trigger(tag: str) -> Any:
    filters = {"logic": "AND", "conditions": [{"field": "tag", "operator": "equals", "value": tag}]}
    return validate_trigger("contact", "tag_added", filters, {})


async def _account_with_trigger(conn: Any, tag: str) -> tuple[uuid.UUID, uuid.UUID]:
    account_id = await accounts.create_account(conn, "loop keys", "UTC")
    workflow = await store.insert_workflow(conn, account_id, "wf", "", [])
    await store.insert_trigger(conn, account_id, workflow["id"], _tag_trigger(tag), True)
    await store.update_workflow(conn, workflow["id"], {"status": "active"})
    return account_id, workflow["id"]


def test_migrate_files_triggers_saved_without_keys(db_sync: Db) -> None:
    async def work(conn: Any) -> None:
        account_id, workflow_id = await _account_with_trigger(conn, "vip")
        config = _tag_trigger("vip")
        expected = listen_keys(account_id, config.event, config.filters)
        assert expected
        where = "WHERE workflow_id = $1"
        assert (
            await conn.fetchval(f"SELECT loop_keys FROM workflow_triggers {where}", workflow_id)
            == expected
        )
        await conn.execute(f"UPDATE workflow_triggers SET loop_keys = NULL {where}", workflow_id)
        assert await migrate(conn) == []
        assert (
            await conn.fetchval(f"SELECT loop_keys FROM workflow_triggers {where}", workflow_id)
            == expected
        )

    db_sync.run(work)


def test_the_lookup_answers_for_the_connections_account_only(db_sync: Db) -> None:
    async def work(conn: Any) -> None:
        mine, workflow_id = await _account_with_trigger(conn, "vip")
        theirs, _ = await _account_with_trigger(conn, "vip")
        config = _tag_trigger("vip")
        keys = listen_keys(mine, config.event, config.filters)
        pool = await db.create_pool(db_sync.url, api_role=True)
        try:
            found = await store.loop_listeners(TenantPool(pool, lambda: mine), mine, keys, [], [])
            assert [r["workflow_id"] for r in found] == [workflow_id]
            as_them = TenantPool(pool, lambda: theirs)
            assert await store.loop_listeners(as_them, mine, keys, [], []) == []
            assert (
                await store.loop_listeners(as_them, theirs, keys, [], []) == []
            )  # not filed there
            known = await store.loop_listeners(
                TenantPool(pool, lambda: mine), mine, keys, [], [workflow_id]
            )
            assert known == []
        finally:
            await pool.close()

    db_sync.run(work)
