"""The servers the tests use: Postgres and Redis from DATABASE_URL / REDIS_URL (else embedded),
a database made for the session and dropped after it, databases and Redis databases of their
own for `hairtrigger up` subprocesses, the session's Settings, and the API over real HTTP."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import uvicorn

from hairtrigger import embedded
from pipelines.config import Settings
from pipelines.ratelimit import Budget
from store.migrate import migrate
from tests.support.db import Db

# Redis databases (0-15). Parallel test sessions on one machine each set their own.
TEST_REDIS_DB = int(os.environ.get("HT_TEST_REDIS_DB", "9"))
# `hairtrigger up` consumes with the same group and consumer names as the session's partition
# actors (partition-0, ...): on the session's Redis db they would take each other's entries.
# Each test module that runs it has a Redis db of its own (see own_servers), emptied first.
UP_RESTART_REDIS_DB = 10  # benchmarks use 11 and 14
SCALE_OUT_REDIS_DB = 12
LOCUST_REDIS_DB = int(os.environ.get("HT_LOCUST_REDIS_DB", "13"))
# The lone `up` processes of the TLS, metrics and quarantine tests, one at a time.
UP_REDIS_DB = int(os.environ.get("HT_UP_REDIS_DB", "15"))


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def redis_db(url: str, number: int) -> str:
    """The same Redis server, database `number`."""
    if url.startswith("unix://"):
        return f"{url.split('?')[0]}?db={number}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


@contextlib.contextmanager
def found_services(data_dir: Path) -> Iterator[embedded.Services]:
    """The servers DATABASE_URL and REDIS_URL name; embedded ones in `data_dir` for the rest."""
    found = embedded.services(
        os.environ.get("DATABASE_URL") or None, os.environ.get("REDIS_URL") or None, data_dir
    )
    with found as urls:
        yield urls


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str, *, migrated: bool = True) -> Iterator[str]:
    """A database of the caller's own on the server of `admin_url` (named `prefix` and a random
    suffix), migrated from scratch unless told; dropped after, even with connections open."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = Db(admin_url)
    admin.run(lambda c: c.execute(f'CREATE DATABASE "{name}"'))
    try:
        url = with_database(admin_url, name)
        if migrated:
            Db(url).run(migrate)
        yield url
    finally:
        admin.run(lambda c: c.execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


def session_database(services: embedded.Services) -> contextlib.AbstractContextManager[str]:
    """A database made for this session and dropped after it: migrations run from scratch."""
    return fresh_database(services.database_url, "ht_test")


def session_redis(services: embedded.Services) -> str:
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
    own (its consumers are named like the session's partition actors), as its environment.
    The database is not migrated: `up` migrates it."""
    with fresh_database(services.database_url, prefix, migrated=False) as database_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
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


def session_settings(database_url: str, redis_url: str) -> Settings:
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
