"""The migration runner: numbered migrations ordered, once each; repeatable ones applied again
when their text changes; safe when two processes start together; a database migrated before the
repeatables existed migrates to them cleanly."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hairtrigger import embedded
from store import accounts, db
from store.migrate import checksum, migrate, migration_files, repeatable_files
from tests.support.db import Db
from tests.support.servers import fresh_database

TABLES = {
    "accounts",
    "api_keys",
    "workflows",
    "workflow_triggers",
    "trigger_audit_log",
    "contacts",
    "workflow_enrollments",
    "trigger_execution_logs",
}


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
    assert _recorded(check) == {name: checksum(sql) for name, sql in repeatable_files()}
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


# What the tests below look at: the value rules' functions, the indexes over them, the checksums.


def _recorded(database: Db) -> dict[str, str]:
    rows = database.fetch("SELECT name, checksum FROM repeatable_migrations")
    return {r["name"]: r["checksum"] for r in rows}


def _applied_at(database: Db) -> dict[str, datetime]:
    rows = database.fetch("SELECT name, applied_at FROM repeatable_migrations")
    return {r["name"]: r["applied_at"] for r in rows}


def _definitions(database: Db) -> dict[str, str]:
    rows = database.fetch(
        "SELECT p.oid::regprocedure::text AS f, pg_get_functiondef(p.oid) AS d FROM pg_proc p"
        " WHERE p.proname LIKE 'ht\\_%'"
    )
    return {r["f"]: r["d"] for r in rows}


def _indexes(database: Db) -> dict[str, str]:
    rows = database.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    return {r["indexname"]: r["indexdef"] for r in rows}


def _preview_index_files(database: Db) -> dict[str, int]:
    """The storage of the indexes over the value rules: REINDEX gives an index a new one."""
    rows = database.fetch(
        "SELECT relname, relfilenode FROM pg_class"
        " WHERE relkind = 'i' AND relname LIKE 'contacts\\_preview\\_%'"
    )
    assert len(rows) == 3
    return {r["relname"]: r["relfilenode"] for r in rows}


def _add_contacts(database: Db, states: list[dict[str, Any]]) -> uuid.UUID:
    async def work(conn: asyncpg.Connection) -> uuid.UUID:
        account = await accounts.create_account(conn, "migrated")
        for state in states:
            await conn.execute(
                "INSERT INTO contacts (account_id, contact_id, state) VALUES ($1, $2, $3)",
                account,
                uuid.uuid4(),
                state,
            )
        return account

    result: uuid.UUID = database.run(work)
    return result


def _status_index_count(database: Db, account: uuid.UUID, key: str) -> int:
    """Contacts whose status has `key`, found through the index on ht_key(state -> 'status')."""
    query = "SELECT count(*) FROM contacts WHERE account_id = $1 AND ht_key(state -> 'status') = $2"

    async def work(conn: asyncpg.Connection) -> Any:
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + query, account, key))
            assert "contacts_preview_status" in plan, plan
            return await conn.fetchval(query, account, key)

    count: int = database.run(work)
    return count


def test_a_repeatable_is_applied_again_when_its_text_changes_and_only_then(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = Db(empty_database)
    asyncio.run(_migrate_concurrently(empty_database, 1))
    files = repeatable_files()
    assert [name for name, _ in files] == ["01_unicode_tables", "02_value_rules"]
    account = _add_contacts(check, [{"status": "Lead"}, {"status": "customer"}])
    assert _status_index_count(check, account, "s:lead") == 1
    stamps, index_files = _applied_at(check), _preview_index_files(check)

    # unchanged: not applied
    assert asyncio.run(_migrate_concurrently(empty_database, 1)) == [[]]
    assert _applied_at(check) == stamps

    # another text, the same definitions (a comment): applied, recorded, no index rebuilt
    rules = dict(files)["02_value_rules"]
    commented = [(n, sql + "-- a comment\n" if n == "02_value_rules" else sql) for n, sql in files]
    monkeypatch.setattr("store.migrate.repeatable_files", lambda: commented)
    assert asyncio.run(_migrate_concurrently(empty_database, 1)) == [[]]
    assert _recorded(check) == {name: checksum(sql) for name, sql in commented}
    assert _applied_at(check)["02_value_rules"] > stamps["02_value_rules"]
    assert _applied_at(check)["01_unicode_tables"] == stamps["01_unicode_tables"]
    assert _preview_index_files(check) == index_files

    # a rule changes, two calls below the function the index names (ht_key -> ht_text_key ->
    # ht_ascii_key): every index over the functions is rebuilt, and finds what the rule says now
    text_key = "    SELECT CASE WHEN f = 'true' OR f = 'false' THEN 'b:' ELSE 's:' END || f\n"
    assert rules.count(text_key) == 1
    changed = [
        (
            n,
            sql.replace(text_key, text_key.replace("'s:'", "'t:'"))
            if n == "02_value_rules"
            else sql,
        )
        for n, sql in files
    ]
    monkeypatch.setattr("store.migrate.repeatable_files", lambda: changed)
    assert asyncio.run(_migrate_concurrently(empty_database, 1)) == [[]]
    assert _recorded(check) == {name: checksum(sql) for name, sql in changed}
    rebuilt = _preview_index_files(check)
    assert all(rebuilt[name] != index_files[name] for name in index_files), (rebuilt, index_files)
    assert _status_index_count(check, account, "t:lead") == 1
    assert _status_index_count(check, account, "s:lead") == 0


# 0004_preview as it was when it created the value rules' functions itself (byte for byte: the
# checksum below is the committed file's), and the last numbered migration of that time.
OLD_0004 = Path(__file__).parent / "fixtures" / "0004_preview_before_repeatables.sql"
OLD_0004_SHA256 = "f339d000941de32258b0d0739c96d8db54f91955db8446a34dae654dd9c1be4a"
LAST_BEFORE_REPEATABLES = "0011_account_audit"


async def _migrate_the_old_way(conn: asyncpg.Connection) -> None:
    """migrate() as it was then: numbered migrations only, 0004 with the functions."""
    old_0004 = OLD_0004.read_text(encoding="utf-8")
    await conn.execute(
        "CREATE TABLE schema_migrations ("
        " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for version, sql in migration_files():
        if version > LAST_BEFORE_REPEATABLES:
            break
        async with conn.transaction():
            await conn.execute(old_0004 if version == "0004_preview" else sql)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)


def test_a_database_migrated_before_the_repeatables_existed_migrates_to_them_cleanly(
    empty_database: str, db_sync: Db
) -> None:
    """It ends with the functions and indexes of a database migrated from scratch now (db_sync),
    its indexes rebuilt only if a definition changed, and nothing applied twice."""
    assert hashlib.sha256(OLD_0004.read_bytes()).hexdigest() == OLD_0004_SHA256
    old = Db(empty_database)
    old.run(_migrate_the_old_way)
    account = _add_contacts(
        old, [{"status": "Lead", "tags": ["VIP"]}, {"status": " LEAD "}, {"status": "ß"}]
    )
    definitions, index_files = _definitions(old), _preview_index_files(old)

    versions = [v for v, _ in migration_files()]
    newer = [v for v in versions if v > LAST_BEFORE_REPEATABLES]
    assert asyncio.run(_migrate_concurrently(empty_database, 1)) == [newer]
    applied = old.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in applied] == versions
    assert _recorded(old) == {name: checksum(sql) for name, sql in repeatable_files()}
    assert _definitions(old) == _definitions(db_sync)
    assert _indexes(old) == _indexes(db_sync)
    changed = _definitions(old) != definitions
    assert (_preview_index_files(old) != index_files) is changed
    assert _status_index_count(old, account, "s:lead") == 2
    assert _status_index_count(old, account, "s:ss") == 1
    assert asyncio.run(_migrate_concurrently(empty_database, 1)) == [[]]
