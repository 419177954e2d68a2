"""Row-level security (docs/operations.md §10): as the API's role, a connection sees and writes only
the rows of the account it names, and nothing at all when it names none."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from store import accounts, db
from store import workflows as store
from store.db import API_ROLE, TenantPool
from tests.support.db import Db

TENANT_TABLES = (
    "accounts",
    "api_keys",
    "workflows",
    "workflow_triggers",
    "trigger_audit_log",
    "contacts",
    "workflow_enrollments",
    "trigger_execution_logs",
    "workflow_enrollment_history",
    "contact_dates",
    "time_agenda",
    "recurring_runs",
    "trigger_stats",
    "ingest_outbox",
    "idempotency_keys",
    "account_usage",  # read only: migration 0014's triggers write it, past the policies
)
OWNER_ONLY = ("schema_migrations", "repeatable_migrations", "enrollment_outbox", "time_watermarks")


async def _two_accounts(conn: Any) -> tuple[uuid.UUID, uuid.UUID]:
    made = []
    for name in ("A", "B"):
        account_id = await accounts.create_account(conn, name, "UTC")
        await accounts.create_key(conn, account_id, ["workflow:read"])
        workflow = await store.insert_workflow(conn, account_id, f"wf {name}", "", [])
        await conn.execute(
            "INSERT INTO contacts (account_id, contact_id, state) VALUES ($1, $2, '{}')",
            account_id,
            uuid.uuid4(),
        )
        await conn.execute(
            "INSERT INTO trigger_execution_logs (account_id, workflow_id, trigger_id, event_type,"
            " matched) VALUES ($1, $2, $3, 'contact.tag_added', true)",
            account_id,
            workflow["id"],
            uuid.uuid4(),
        )
        made.append(account_id)
    return made[0], made[1]


def test_a_connection_sees_only_the_account_it_names(db_sync: Db) -> None:
    a, b = db_sync.run(_two_accounts)

    async def check(conn: Any) -> None:
        await conn.execute(f"SET ROLE {API_ROLE}")
        # no account named: nothing, in every tenant table, even with a hand-written SELECT *
        for table in TENANT_TABLES:
            assert await conn.fetch(f"SELECT * FROM {table}") == [], table
        for table in OWNER_ONLY:  # not granted at all
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {table}")
        await conn.execute("SELECT set_config('hairtrigger.account_id', $1, false)", str(a))
        for table in ("workflows", "contacts", "trigger_execution_logs", "api_keys"):
            rows = await conn.fetch(f"SELECT * FROM {table}")
            assert {r["account_id"] for r in rows} == {a}, table
        assert [r["id"] for r in await conn.fetch("SELECT * FROM accounts")] == [a]
        assert await conn.fetch("SELECT * FROM workflows WHERE account_id = $1", b) == []
        assert await conn.execute("UPDATE workflows SET name = 'x' WHERE account_id = $1", b) == (
            "UPDATE 0"
        )
        assert await conn.execute("DELETE FROM contacts WHERE account_id = $1", b) == "DELETE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute(
                "INSERT INTO workflows (id, account_id, name) VALUES ($1, $2, 'sneaky')",
                uuid.uuid4(),
                b,
            )

    db_sync.run(check)
    # the owner (actors, CLI) still sees both
    assert (
        db_sync.value(
            "SELECT count(DISTINCT account_id) FROM workflows WHERE account_id = ANY($1)", [a, b]
        )
        == 2
    )


def test_the_apis_pool_is_limited_to_the_callers_account(db_sync: Db) -> None:
    """What the routes use: a store call without any account filter finds only the caller's."""
    a, b = db_sync.run(_two_accounts)

    async def check(conn: Any) -> None:
        pool = await db.create_pool(db_sync.url, api_role=True)
        try:
            theirs = await conn.fetchval("SELECT id FROM workflows WHERE account_id = $1", b)
            as_a = TenantPool(pool, lambda: a)
            assert await store.get_workflow(as_a, theirs) is None
            assert await store.workflow_elsewhere(as_a, theirs) is True  # -> 403, not 404
            assert await as_a.fetchval("SELECT count(*) FROM contacts") == 1
            nobody = TenantPool(pool, lambda: None)
            assert await nobody.fetchval("SELECT count(*) FROM workflows") == 0
            # a connection goes back to the pool without its account
            async with pool.acquire() as raw:
                assert await raw.fetchval("SELECT count(*) FROM workflows") == 0
                assert await raw.fetchval("SELECT current_user") == API_ROLE
        finally:
            await pool.close()

    db_sync.run(check)


def test_every_tenant_table_has_a_policy_and_nothing_else_is_granted(db_sync: Db) -> None:
    """A table added later with an account_id but without RLS fails here. Partitions are
    reached only through their parent (whose policy covers them) and granted to no one."""
    partitions = {
        r["relname"] for r in db_sync.fetch("SELECT relname FROM pg_class WHERE relispartition")
    }
    with_account = {
        r["table_name"]
        for r in db_sync.fetch(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_name = 'account_id'"
        )
    } - partitions | {"accounts"}
    protected = {
        r["relname"]
        for r in db_sync.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relrowsecurity"
            " AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)"
        )
    }
    assert with_account <= protected, with_account - protected
    granted = {
        r["table_name"]
        for r in db_sync.fetch(
            "SELECT DISTINCT table_name FROM information_schema.role_table_grants"
            " WHERE grantee = $1",
            API_ROLE,
        )
    }
    assert granted == set(TENANT_TABLES)
    assert granted <= protected
