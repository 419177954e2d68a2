"""Session fixtures: real Postgres and Redis (from DATABASE_URL / REDIS_URL, else embedded),
a fresh database per session, the API served over real HTTP, and tenant factories."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis
import uvicorn

from api.app import create_app
from hairtrigger import embedded
from pipelines import scopes
from pipelines.config import Settings
from pipelines.ratelimit import Budget
from store import accounts, db
from store.migrate import migrate

# Parallel test sessions on one machine each set their own (0-15).
TEST_REDIS_DB = int(os.environ.get("HT_TEST_REDIS_DB", "9"))
# Redis db of the lone `up` processes of test_tls and test_up_metrics (one at a time; see
# own_servers). Others: 10 up_restart, 12 scale_out, 13 locust; benchmarks 11 and 14.
UP_REDIS_DB = 15


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class Db:
    """Synchronous access to the test database for setting up and checking state."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, work: Callable[[Any], Any]) -> Any:
        async def go() -> Any:
            conn = await db.connect(self.url)
            try:
                return await work(conn)
            finally:
                await conn.close()

        return asyncio.run(go())

    def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.run(lambda c: _fetch(c, sql, args))

    def value(self, sql: str, *args: Any) -> Any:
        return self.run(lambda c: c.fetchval(sql, *args))


async def _fetch(conn: Any, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded.Services]:
    found = embedded.services(
        os.environ.get("DATABASE_URL") or None,
        os.environ.get("REDIS_URL") or None,
        tmp_path_factory.mktemp("embedded"),
    )
    with found as urls:
        yield urls


@pytest.fixture(scope="session")
def database_url(services: embedded.Services) -> Iterator[str]:
    """A database made for this session and dropped after it: migrations run from scratch."""
    name = f"ht_test_{uuid.uuid4().hex[:12]}"
    admin = Db(services.database_url)
    admin.run(lambda c: c.execute(f'CREATE DATABASE "{name}"'))
    url = with_database(services.database_url, name)
    Db(url).run(migrate)
    yield url
    admin.run(lambda c: c.execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


def redis_db(url: str, number: int) -> str:
    """The same Redis server, database `number`."""
    if url.startswith("unix://"):
        return f"{url.split('?')[0]}?db={number}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


@pytest.fixture(scope="session")
def redis_url(services: embedded.Services) -> str:
    """A Redis database of the tests' own, emptied at the start of the session."""
    url = services.redis_url
    if url.startswith("redis://"):
        url = redis_db(url, TEST_REDIS_DB)
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


@contextlib.contextmanager
def own_servers(
    services: embedded.Services, prefix: str, redis_number: int, shards: int
) -> Iterator[dict[str, str]]:
    """For a `hairtrigger up` subprocess: a fresh database and an emptied Redis database of its
    own (its consumers are named like the session's partition actors), as its environment."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = Db(services.database_url)
    admin.run(lambda c: c.execute(f'CREATE DATABASE "{name}"'))
    env = {
        **os.environ,
        "DATABASE_URL": with_database(services.database_url, name),
        "REDIS_URL": redis_db(services.redis_url, redis_number),
        "HAIRTRIGGER_SHARDS": str(shards),
        "PYTHONUNBUFFERED": "1",
    }
    with redis.Redis.from_url(env["REDIS_URL"]) as client:
        client.flushdb()
    try:
        yield env
    finally:
        with redis.Redis.from_url(env["REDIS_URL"]) as client:
            client.flushdb()
        admin.run(lambda c: c.execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=Path(".hairtrigger"),
        shards=4,
        max_body_bytes=256 * 1024,
        # Tests make many calls quickly with one key: budgets far above the defaults, so the
        # limiter runs on every call but only tests/api/test_ratelimit.py ever meets a limit.
        rate_writes=Budget(100_000, 60),
        rate_reads=Budget(100_000, 60),
        rate_events=Budget(1_000_000, 1),
    )


@pytest.fixture(scope="session")
def db_sync(database_url: str) -> Db:
    return Db(database_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """`app` behind a real uvicorn on a free port, in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the API server failed to start"
        assert time.monotonic() < deadline, "the API server did not start in 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def api_url(settings: Settings) -> Iterator[str]:
    """The config API alone (no partition actors behind it)."""
    with serve(create_app(settings)) as url:
        yield url


@dataclass
class Tenant:
    account_id: uuid.UUID
    key: str
    key_id: uuid.UUID
    client: httpx.Client


@pytest.fixture
def tenant(db_sync: Db, api_url: str) -> Iterator[Callable[..., Tenant]]:
    """Factory: a new account with an API key (all scopes unless told) and an HTTP client."""
    yield from tenant_factory(db_sync, api_url)


def tenant_factory(db_sync: Db, api_url: str) -> Iterator[Callable[..., Tenant]]:
    made: list[Tenant] = []

    def make(scopes: tuple[str, ...] = scopes.SCOPES, timezone: str = "UTC") -> Tenant:
        async def work(conn: Any) -> tuple[uuid.UUID, str, uuid.UUID]:
            account_id = await accounts.create_account(conn, "test account", timezone)
            key, key_id = await accounts.create_key(conn, account_id, list(scopes))
            return account_id, key, key_id

        account_id, key, key_id = db_sync.run(work)
        client = httpx.Client(
            base_url=f"{api_url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        made.append(Tenant(account_id, key, key_id, client))
        return made[-1]

    yield make
    for t in made:
        t.client.close()
    db_sync.run(lambda c: c.execute("DELETE FROM accounts WHERE id = ANY($1)",
                                     [t.account_id for t in made]))  # fmt: skip


def keyed(t: Tenant, key: str) -> httpx.Client:
    """A client for the same server presenting another key."""
    return httpx.Client(
        base_url=str(t.client.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
