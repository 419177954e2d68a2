"""Connections: jsonb travels as Python objects (orjson) on every connection."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

# A connection, checked out of a pool or not; and anything that runs a query (pools too).
Conn = asyncpg.Connection | PoolConnectionProxy
API_ROLE = "hairtrigger_api"  # subject to row-level security (migration 0009)


class TenantPool:
    """The API's view of the database: every connection it hands out works as API_ROLE for
    one account (`account_id()` at checkout), so row-level security shows and accepts only
    that account's rows, and none when there is no account yet."""

    def __init__(self, pool: asyncpg.Pool, account_id: Callable[[], uuid.UUID | None]) -> None:
        self._pool, self._account_id = pool, account_id

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[PoolConnectionProxy]:
        account = self._account_id()
        async with self._pool.acquire() as conn:  # released with RESET ALL: the account goes
            await conn.execute(
                "SELECT set_config('hairtrigger.account_id', $1, false)",
                "" if account is None else str(account),
            )
            yield conn

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.acquire() as conn:
            return await conn.execute(query, *args)

    async def executemany(self, query: str, args: Iterable[Sequence[Any]]) -> None:
        async with self.acquire() as conn:
            await conn.executemany(query, args)


Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool | TenantPool


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


# Plan every execution with its real parameters: a plan cached while a table was small (say,
# enrollments at start-up) would otherwise keep scanning it after it has grown.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


async def _as_api_role(conn: asyncpg.Connection) -> None:
    await init_connection(conn)
    await conn.execute(f"SET ROLE {API_ROLE}")  # RESET ALL on release keeps it


async def create_pool(
    dsn: str, min_size: int = 1, max_size: int = 10, *, api_role: bool = False
) -> asyncpg.Pool:
    """A pool; with `api_role`, for TenantPool: its connections are subject to row-level
    security."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_as_api_role if api_role else init_connection,
        server_settings=SERVER_SETTINGS,
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, server_settings=SERVER_SETTINGS)
    await init_connection(conn)
    return conn
