"""`hairtrigger up` and `hairtrigger demo` as a user runs them, on their own database and Redis
database: stop with events queued, start again, every event processed once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from hairtrigger import embedded
from pipelines.examples import all_of, cond
from streams import names
from streams.events import Router
from tests.support.db import Db
from tests.support.factories import event
from tests.support.servers import UP_RESTART_REDIS_DB, own_servers
from tests.support.up import Up
from tests.support.wait import wait_until

SHARDS = 4


@pytest.fixture
def own_services(services: embedded.Services) -> Iterator[dict[str, str]]:
    with own_servers(services, "ht_up", UP_RESTART_REDIS_DB, SHARDS) as env:
        yield env


def cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "hairtrigger.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def send(url: str, events: list[dict[str, Any]]) -> None:
    """As every producer does: routed by the account's spread (docs/contract.md §3)."""
    router = Router(SHARDS, ttl_s=0)
    with redis.Redis.from_url(url) as client:
        keys = [(e["account_id"], e["data"]["contact_id"]) for e in events]
        streams = router.streams_sync(client, keys)
        pipe = client.pipeline(transaction=False)
        for e, stream in zip(events, streams, strict=True):
            pipe.xadd(stream, {names.EVENT_FIELD: orjson.dumps(e)})
        pipe.execute()


@pytest.mark.slow
@pytest.mark.parametrize("spread", [1, SHARDS], ids=["home shard", "spread over every shard"])
def test_stop_with_events_queued_and_start_again(
    own_services: dict[str, str], tmp_path: Path, spread: int
) -> None:
    env = own_services
    db = Db(env["DATABASE_URL"])
    up = Up(env, tmp_path)
    try:
        up.wait_healthy()
        account = uuid.UUID(cli(env, "accounts", "create", "Restart Co")["account_id"])
        if spread > 1:
            answer = cli(env, "accounts", "spread", str(account), str(spread))
            assert answer == {"account_id": str(account), "spread": spread}
        key = cli(env, "keys", "create", "--account", str(account))["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"{up.base}/api/v1", headers=headers, timeout=30) as client:
            wf = client.post("/workflows", json={"name": "hot"}).json()
            body = {
                "trigger_type": "contact",
                "trigger_event": "tag_added",
                "filters": all_of(cond("tag", "equals", "hot")),
                "settings": {"enrollment_limit": "multiple"},
            }
            assert client.post(f"/workflows/{wf['id']}/trigger", json=body).status_code == 201
            assert client.patch(f"/workflows/{wf['id']}", json={"status": "active"}).is_success
        first = [event(account, "contact.tag_added", tag="hot") for _ in range(20_000)]
        send(env["REDIS_URL"], first)
        count = "SELECT count(*) FROM workflow_enrollments WHERE account_id = $1"
        wait_until(lambda: db.value(count, account) > 0, "the first enrollments")
    finally:
        output = up.stop()  # SIGTERM while the backlog is being processed
    assert "Ray dashboard" in output
    stopped_at = db.value(count, account)
    assert 0 < stopped_at < 20_000, "stop while events are queued"
    queued = [event(account, "contact.tag_added", tag="hot") for _ in range(1000)]
    send(env["REDIS_URL"], queued)
    time.sleep(0.5)
    assert db.value(count, account) == stopped_at
    again = Up(env, tmp_path)
    try:
        again.wait_healthy()
        wait_until(lambda: db.value(count, account) >= 21_000, "the queued events", timeout=180)
        time.sleep(1)
        rows = db.fetch("SELECT event_id FROM workflow_enrollments WHERE account_id = $1", account)
        wait_until(lambda: db.value("SELECT count(*) FROM enrollment_outbox") == 0, "the outbox")
    finally:
        again.stop()
    assert len(rows) == 21_000
    assert sorted(str(r["event_id"]) for r in rows) == sorted(e["event_id"] for e in first + queued)


@pytest.mark.slow
def test_demo_streams_events_and_prints_a_summary(own_services: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hairtrigger.cli", "demo", "--events", "3000"],
        env=own_services,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3,000 events in" in done.stdout
    assert "Enrollments per workflow" in done.stdout
    assert "p95" in done.stdout
    assert "3,000/3,000 events" in done.stderr
    db = Db(own_services["DATABASE_URL"])
    enrolled = db.value("SELECT count(*) FROM workflow_enrollments")
    assert enrolled > 0
    assert f"{enrolled:,} enrollments" in done.stdout
