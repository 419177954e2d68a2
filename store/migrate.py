"""Plain-SQL migrations, under an advisory lock, of two kinds.

Numbered migrations (store/migrations/NNNN_name.sql) are applied once each, in order, one
transaction each, and recorded in schema_migrations by version only: a file that was applied is
never read again, so editing one changes fresh databases only.

Repeatable migrations (store/repeatable/*.sql: the SQL value rules and their generated character
tables) are applied again, one transaction each, whenever their text's sha256 differs from the
one recorded in repeatable_migrations; every statement in them must be safe to run again (CREATE
OR REPLACE FUNCTION). They are applied in file-name order before the numbered migrations, so that
a numbered migration may use what they define (0004's expression indexes over ht_key and
ht_keys) and they may use nothing a numbered migration creates. When applying one changes any
function's definition, the indexes over functions are rebuilt in the same transaction: an index
over an IMMUTABLE function holds what the old definition computed, and Postgres does not know
which functions call which, so every such index is rebuilt, not only those naming the function.

A database migrated before the repeatables existed (0004 created the functions itself) has no
repeatable_migrations: its first migrate() applies the repeatables, which replace the functions
by the same definitions (nothing is rebuilt then) and records their checksums; the numbered
migrations it already applied, 0004 included, are skipped as always.

Then the data SQL cannot compute is filled in: the loop keys of triggers saved before 0013
(store.workflows.fill_loop_keys) and the sizes of those saved before 0014 (store.quotas.
fill_sizes); each a no-op once done.
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources

import asyncpg

from store.quotas import fill_sizes
from store.workflows import fill_loop_keys

log = logging.getLogger(__name__)

# The migrations that add the columns fill_loop_keys and fill_sizes fill.
_LOOP_KEYS = "0013_loop_keys"
_SIZES = "0014_quotas"
# Any fixed 64-bit number: two processes migrating at once queue on it instead of racing.
_LOCK_ID = 0x4861697254726967

# The functions of the database's own schemas (not Postgres's), with their definitions.
_FUNCTIONS = (
    "SELECT p.oid, pg_get_functiondef(p.oid) AS definition FROM pg_proc p"
    " JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE p.prokind = 'f' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
)
# The indexes whose expressions or predicates use any of those functions.
_INDEXES_OVER_FUNCTIONS = (
    "SELECT DISTINCT d.objid::regclass::text AS name FROM pg_depend d"
    " JOIN pg_class c ON c.oid = d.objid"
    " JOIN pg_proc p ON p.oid = d.refobjid"
    " JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_proc'::regclass"
    " AND c.relkind = 'i' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
    " ORDER BY 1"
)


def _sql_files(folder_name: str) -> list[tuple[str, str]]:
    folder = resources.files("store") / folder_name
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [
        (name.removesuffix(".sql"), (folder / name).read_text(encoding="utf-8")) for name in names
    ]


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) pairs from store/migrations, sorted by file name."""
    return _sql_files("migrations")


def repeatable_files() -> list[tuple[str, str]]:
    """(name, sql) pairs from store/repeatable, sorted by file name."""
    return _sql_files("repeatable")


def checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


async def _functions(conn: asyncpg.Connection) -> dict[int, str]:
    return {r["oid"]: r["definition"] for r in await conn.fetch(_FUNCTIONS)}


async def _apply_repeatable(conn: asyncpg.Connection, name: str, sql: str) -> list[str]:
    """Apply one repeatable file and record its checksum; return the indexes rebuilt."""
    rebuilt: list[str] = []
    async with conn.transaction():
        before = await _functions(conn)
        await conn.execute(sql)
        if await _functions(conn) != before:
            rebuilt = [r["name"] for r in await conn.fetch(_INDEXES_OVER_FUNCTIONS)]
            for index in rebuilt:
                await conn.execute(f"REINDEX INDEX {index}")
        await conn.execute(
            "INSERT INTO repeatable_migrations (name, checksum) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
            name,
            checksum(sql),
        )
    return rebuilt


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the repeatables that changed, then the numbered migrations that are missing;
    return the numbered versions applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS repeatable_migrations ("
            " name text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        recorded = {
            r["name"]: r["checksum"]
            for r in await conn.fetch("SELECT name, checksum FROM repeatable_migrations")
        }
        for name, sql in repeatable_files():
            if recorded.get(name) == checksum(sql):
                continue
            rebuilt = await _apply_repeatable(conn, name, sql)
            log.info("applied repeatable migration %s; rebuilt indexes: %s", name, rebuilt)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            log.info("applied migration %s", version)
            applied_now.append(version)
        if _LOOP_KEYS in done | set(applied_now) and (filled := await fill_loop_keys(conn)):
            log.info("filed %d triggers under their loop keys", filled)
        if _SIZES in done | set(applied_now) and (filled := await fill_sizes(conn)):
            log.info("sized %d triggers for their accounts' quotas", filled)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied_now
