"""A benchmark's own servers: a fresh database on the DATABASE_URL server (dropped afterwards)
and an emptied Redis database, or embedded servers when the variables are unset."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hairtrigger import embedded
from pipelines.config import Settings
from store import db
from streams.clients import sync_client


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def with_redis_db(url: str, number: int) -> str:
    if url.startswith("unix:"):  # the embedded server: unix:///path/redis.socket
        return f"{url}{'&' if '?' in url else '?'}db={number}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


async def value(url: str, sql: str, *args: Any) -> Any:
    conn = await db.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch(redis_db: int, prefix: str = "ht_bench") -> Iterator[Settings]:
    env = Settings.from_env()
    name = f"{prefix}_{secrets.token_hex(4)}"
    with embedded.services(env.database_url, env.redis_url, Path(".hairtrigger/bench")) as found:
        asyncio.run(value(found.database_url, f'CREATE DATABASE "{name}"'))
        settings = Settings(
            database_url=with_database(found.database_url, name),
            redis_url=with_redis_db(found.redis_url, redis_db),
            shards=env.shards,
        )
        assert settings.redis_url is not None
        with sync_client(settings.redis_url) as client:
            client.flushdb()
        try:
            yield settings
        finally:
            with sync_client(settings.redis_url) as client:
                client.flushdb()
            asyncio.run(value(found.database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))
