"""The locust load test (loadtest/locustfile.py): a run against a real `hairtrigger up` passes its
enrollment check; a run with no engine behind the API, one over its latency threshold, and one
with nothing running fail with exit code 1. The verdict's failure modes, one by one:
tests/loadtest/test_check.py."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from hairtrigger import embedded
from pipelines.config import Settings
from tests.support.db import Db
from tests.support.servers import LOCUST_REDIS_DB, free_port, own_servers, serve
from tests.support.up import Up

ROOT = Path(__file__).resolve().parents[2]
LOCUST = Path(sys.executable).parent / "locust"
SHARDS = 4
SUMMARY = re.compile(r"hairtrigger check: ([\d,]+) events sent -> ([\d,]+) enrolled exactly once")


@pytest.fixture
def own_env(services: embedded.Services) -> Iterator[dict[str, str]]:
    """A fresh database and an emptied Redis database, as the environment of both processes."""
    with own_servers(services, "ht_locust", LOCUST_REDIS_DB, SHARDS) as env:
        yield env


def locust(env: dict[str, str], base: str, *args: str) -> tuple[int, str]:
    """`locust -f loadtest/locustfile.py --headless` at a small rate; (exit code, output)."""
    command = [
        str(LOCUST),
        "-f",
        "loadtest/locustfile.py",
        "--headless",
        "--only-summary",
        "--host",
        base,
        "--ht-xadd-rate",
        "20",
        "--ht-http-rate",
        "2",
        "--ht-http-batch",
        "5",
        "--ht-config-rate",
        "2",
        "--ht-contacts",
        "50",
        *args,
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return done.returncode, done.stdout + done.stderr


def _count(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.slow
def test_locust_against_hairtrigger_up_enrolls_every_event_once(
    own_env: dict[str, str], tmp_path: Path
) -> None:
    up = Up(own_env, tmp_path)
    try:
        up.wait_healthy()
        code, output = locust(
            own_env, up.base, "-u", "4", "-r", "4", "-t", "5s", "--ht-drain-timeout", "60"
        )
        assert code == 0, output
        assert "hairtrigger check: PASS" in output
        found = SUMMARY.search(output)
        assert found, output
        sent, once = _count(found[1]), _count(found[2])
        assert sent == once > 0
        assert "0 missing, 0 duplicated, 0 wrong contact/workflow" in output
        assert "XADD -> enrollment latency over" in output
        for name in ("XADD", "hairtrigger:events:", "/api/v1/events", "/api/v1/workflows"):
            assert name in output, f"no {name} requests in the locust stats"
        db = Db(own_env["DATABASE_URL"])
        enrolled = db.value(
            "SELECT count(*) FROM workflow_enrollments e JOIN accounts a ON a.id = e.account_id"
            " WHERE a.name LIKE 'Load test %'"
        )
        assert enrolled >= sent  # requests cut off at the stop may add a few the check ignores
        accounts = db.value(
            "SELECT count(DISTINCT e.account_id) FROM workflow_enrollments e"
            " JOIN accounts a ON a.id = e.account_id WHERE a.name LIKE 'Load test %'"
        )
        assert accounts == SHARDS, "one account per shard stream, every one loaded"

        # the same system, judged against a latency threshold it cannot meet
        code, output = locust(
            own_env,
            up.base,
            "RedisEventUser",
            "-u",
            "1",
            "-r",
            "1",
            "-t",
            "2s",
            "--ht-max-avg-latency-ms",
            "0.001",
        )
        assert code == 1, output
        assert "hairtrigger check: FAIL: average latency" in output
        assert "0 missing, 0 duplicated" in output
    finally:
        served = up.stop()
    assert "Ray dashboard" in served


@pytest.mark.slow
def test_locust_without_an_engine_reports_the_missing_enrollments(
    own_env: dict[str, str],
) -> None:
    """Only the API runs: events are accepted into the streams but nobody consumes them."""
    settings = Settings(
        database_url=own_env["DATABASE_URL"], redis_url=own_env["REDIS_URL"], shards=SHARDS
    )
    with serve(create_app(settings)) as base:
        code, output = locust(
            own_env, base, "-u", "4", "-r", "4", "-t", "3s", "--ht-drain-timeout", "3"
        )
    assert code == 1, output
    assert re.search(r"hairtrigger check: FAIL: [\d,]+ expected enrollments missing", output)
    found = SUMMARY.search(output)
    assert found, output
    assert _count(found[1]) > 0
    assert _count(found[2]) == 0


@pytest.mark.slow
def test_locust_with_nothing_running_fails_at_setup(own_env: dict[str, str]) -> None:
    code, output = locust(own_env, f"http://127.0.0.1:{free_port()}", "-u", "1", "-t", "2s")
    assert code == 1, output
    assert "hairtrigger setup failed: no shard count in hairtrigger:meta" in output
    assert "is `hairtrigger up` running against this Redis?" in output


@pytest.mark.slow
def test_locust_refuses_a_rate_of_zero(own_env: dict[str, str]) -> None:
    code, output = locust(own_env, "http://127.0.0.1:9", "--ht-xadd-rate", "0", "-t", "1s")
    assert code == 1, output
    assert "hairtrigger setup failed: --ht-xadd-rate must be above 0" in output
