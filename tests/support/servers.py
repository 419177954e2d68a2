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
from hairtrigger.config import Settings
from pipelines.ratelimit import Budget
from store.migrate import migrate
from tests.support.db import Db

# Parallel test sessions on one machine each set their own (0-15).
TEST_REDIS_DB = int(os.environ.get("HT_TEST_REDIS_DB", "9"))
# Redis db of the lone `up` processes of test_tls and test_up_metrics (one at a time; see
# own_servers). Others: 10 up_restart, 12 scale_out, 13 locust; benchmarks 11 and 14.
UP_REDIS_DB = 15


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
def session_database(services: embedded.Services) -> Iterator[str]:
    """A database made for this session and dropped after it: migrations run from scratch."""
    name = f"ht_test_{uuid.uuid4().hex[:12]}"
    admin = Db(services.database_url)
    admin.run(lambda c: c.execute(f'CREATE DATABASE "{name}"'))
    url = with_database(services.database_url, name)
    Db(url).run(migrate)
    yield url
    admin.run(lambda c: c.execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


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
