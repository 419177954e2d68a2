"""Rate limits (docs/operations.md §8): config calls per API key, event ingest per account, held in
Redis so they bind every gateway process; 429 with Retry-After over budget; without Redis, each
gateway's own buckets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.app import create_app
from api.ratelimit import RateLimiter
from pipelines import errors, scopes
from pipelines.config import Settings
from pipelines.ratelimit import Budget, Decision
from store import accounts
from streams import names
from tests.support.db import Db
from tests.support.factories import Tenant, envelope, keyed, tenant_factory, tenants
from tests.support.problems import problem
from tests.support.servers import free_port, serve
from tests.support.streams import stream_events
from tests.support.wait import wait_until

MakeTenant = Callable[..., Tenant]
ROOT = Path(__file__).resolve().parents[2]
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")

# Windows of an hour: nothing refills between two requests of a test, however busy the box.
WRITES, READS, EVENTS = Budget(3, 3600), Budget(5, 3600), Budget(20, 3600)


@pytest.fixture(scope="module")
def limited_url(settings: Settings) -> Iterator[str]:
    small = dataclasses.replace(
        settings,
        rate_writes=WRITES,
        rate_reads=READS,
        rate_events=EVENTS,
        max_events_per_request=EVENTS.limit,
    )
    with serve(create_app(small)) as url:
        yield url


@pytest.fixture
def limited(db_sync: Db, limited_url: str) -> Iterator[MakeTenant]:
    """Tenants of a gateway with small budgets: 3 writes and 5 reads per key, 20 events per
    account, each per hour."""
    yield from tenant_factory(db_sync, limited_url)


def second_key(db_sync: Db, t: Tenant) -> httpx.Client:
    async def work(conn: Any) -> str:
        key, _ = await accounts.create_key(conn, t.account_id, list(scopes.SCOPES))
        return key

    return keyed(t, db_sync.run(work))


def new(client: httpx.Client, name: str = "w") -> httpx.Response:
    return client.post("/workflows", json={"name": name})


def spend(redis_url: str, steps: Callable[[RateLimiter], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        limiter = RateLimiter(redis_url)
        try:
            return await steps(limiter)
        finally:
            await limiter.aclose()

    return asyncio.run(run())


def test_gcra_spends_units_refuses_without_spending_and_refills(redis_url: str) -> None:
    bucket = f"test:{uuid.uuid4()}"
    hour = Budget(10, 3600)

    async def steps(limiter: RateLimiter) -> list[Decision | None]:
        return [await limiter.charge(bucket, hour, cost) for cost in (7, 4, 3, 1)]

    found = spend(redis_url, steps)
    assert [(d.allowed, d.remaining) if d else None for d in found] == [
        (True, 3),
        (False, 3),
        (True, 0),
        (False, 0),
    ]
    four, last = found[1], found[3]
    assert four is not None
    assert last is not None
    assert 0 < four.retry_after_ms <= 360_000  # one unit comes back every 6 minutes
    assert 3_590_000 < last.reset_ms <= 3_600_000
    with redis.Redis.from_url(redis_url) as client:
        assert 0 < client.pttl(bucket) <= 3_600_000  # a full bucket leaves no key behind

    quick, fast = f"test:{uuid.uuid4()}", Budget(2, 1)

    async def refill(limiter: RateLimiter) -> bool:
        spent = [await limiter.charge(quick, fast, 1) for _ in range(3)]
        assert [d.allowed for d in spent if d] == [True, True, False]
        for _ in range(200):  # refills one unit every 0.5 s
            again = await limiter.charge(quick, fast, 1)
            if again is not None and again.allowed:
                return True
            await asyncio.sleep(0.05)
        return False

    assert spend(redis_url, refill)


def test_the_write_over_budget_gets_429_with_retry_after(limited: MakeTenant) -> None:
    t = limited()
    seen = [new(t.client) for _ in range(WRITES.limit)]
    assert [r.status_code for r in seen] == [201] * WRITES.limit
    assert [r.headers["ratelimit-remaining"] for r in seen] == ["2", "1", "0"]
    assert {r.headers["ratelimit-limit"] for r in seen} == {"3"}
    refused = new(t.client, "one too many")
    body = problem(refused, 429, errors.RATE_LIMITED)
    retry_after = int(refused.headers["retry-after"])
    assert 0 < retry_after <= 3600 // WRITES.limit
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) >= retry_after
    assert "retry in" in body["detail"]
    # Refused means not done; reads have their own budget.
    items = t.client.get("/workflows").json()["items"]
    assert [w["name"] for w in items] == ["w", "w", "w"]
    problem(t.client.delete(f"/workflows/{seen[0].json()['id']}"), 429, errors.RATE_LIMITED)


def test_reads_have_their_own_budget_and_every_answer_carries_the_headers(
    limited: MakeTenant,
) -> None:
    t = limited()
    workflow = new(t.client).json()
    gets = [t.client.get(f"/workflows/{workflow['id']}") for _ in range(READS.limit)]
    assert [r.status_code for r in gets] == [200] * READS.limit
    assert gets[-1].headers["ratelimit-remaining"] == "0"
    problem(t.client.get("/workflows"), 429, errors.RATE_LIMITED)
    # A 204 and a problem document are counted and carry the headers too.
    deleted = t.client.delete(f"/workflows/{workflow['id']}")
    assert deleted.status_code == 204
    assert deleted.headers["ratelimit-remaining"] == "1"
    missing = t.client.patch(f"/workflows/{uuid.uuid4()}", json={"name": "x"})
    problem(missing, 404, errors.NOT_FOUND)
    assert missing.headers["ratelimit-remaining"] == "0"


def test_budgets_are_per_key_and_per_account(limited: MakeTenant, db_sync: Db) -> None:
    t, other = limited(), limited()
    for _ in range(WRITES.limit):
        new(t.client)
    problem(new(t.client), 429, errors.RATE_LIMITED)
    with second_key(db_sync, t) as same_account:
        response = new(same_account)
        assert response.status_code == 201, response.text
        assert response.headers["ratelimit-remaining"] == "2"
    assert new(other.client).status_code == 201


def test_event_ingest_is_counted_in_events_per_account_and_refused_whole(
    limited: MakeTenant, db_sync: Db, redis_url: str
) -> None:
    t, other = limited(), limited()
    first = [envelope(t.account_id) for _ in range(15)]
    accepted = t.client.post("/events", json=first)
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["ratelimit-remaining"] == "5"
    too_many = [envelope(t.account_id) for _ in range(6)]
    refused = t.client.post("/events", json=too_many)
    problem(refused, 429, errors.RATE_LIMITED)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "5"
    # Another key of the account draws on the same budget; the refused batch cost nothing.
    with second_key(db_sync, t) as same_account:
        rest = [envelope(t.account_id) for _ in range(5)]
        assert same_account.post("/events", json=rest).status_code == 202
        problem(same_account.post("/events", json=envelope(t.account_id)), 429, errors.RATE_LIMITED)
    # Config calls of the account are not held back by its events, nor other accounts.
    assert new(t.client).status_code == 201
    assert other.client.post("/events", json=[envelope(other.account_id)]).status_code == 202
    with redis.Redis.from_url(redis_url) as client:
        found = {e["event_id"] for e in stream_events(client, t.account_id)}
    assert found == {e["event_id"] for e in first + rest}


def test_catalog_needs_no_key_and_has_no_budget(limited_url: str) -> None:
    with httpx.Client(base_url=f"{limited_url}/api/v1") as client:
        for _ in range(READS.limit + 1):
            response = client.get("/catalog")
            assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers


def test_an_unknown_key_is_401_not_429(limited: MakeTenant) -> None:
    t = limited()
    with keyed(t, "ht_nope_nope") as stranger:
        problem(new(stranger), 401, errors.UNAUTHORIZED)


def test_every_operation_that_takes_a_key_spends_a_budget(limited_url: str) -> None:
    """A router added without a budget fails here (its operations lack the 429)."""
    schema = httpx.get(f"{limited_url}/openapi.json").json()
    keyed = [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    ]
    assert len(keyed) > 15
    for method, path, operation in keyed:
        assert "429" in operation["responses"], f"{method} {path} has no rate budget"


def test_429_is_documented_in_openapi(limited_url: str) -> None:
    schema = httpx.get(f"{limited_url}/openapi.json").json()
    create = schema["paths"]["/api/v1/workflows"]["post"]["responses"]
    assert "429" in create
    assert "Retry-After" in create["429"]["headers"]
    assert "429" in schema["paths"]["/api/v1/events"]["post"]["responses"]
    assert "429" not in schema["paths"]["/api/v1/catalog"]["get"]["responses"]


# --- two gateway processes ---------------------------------------------------------------

_GATEWAY = (
    "import sys, uvicorn\n"
    "from api.app import create_app\n"
    "from pipelines.config import Settings\n"
    "uvicorn.run(create_app(Settings.from_env()), host='127.0.0.1', port=int(sys.argv[1]),"
    " log_level='warning')\n"
)


@contextlib.contextmanager
def gateway_process(settings: Settings, env: dict[str, str], log: Path) -> Iterator[str]:
    """A second gateway: `create_app` under uvicorn in a process of its own."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    port = free_port()
    full = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "HAIRTRIGGER_SHARDS": str(settings.shards),
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _GATEWAY, str(port)],
            cwd=ROOT,
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url, proc, log), "the second gateway to start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    assert proc.poll() is None, f"the second gateway exited: {log.read_text()}"
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_limits_hold_across_two_gateway_processes(
    settings: Settings, db_sync: Db, tmp_path: Path
) -> None:
    both = dataclasses.replace(
        settings, rate_writes=Budget(3, 3600), rate_events=Budget(1000, 3600)
    )
    env = {"HAIRTRIGGER_RATE_WRITES": "3/h", "HAIRTRIGGER_RATE_EVENTS": "1000/h"}
    with (
        serve(create_app(both)) as a_url,
        gateway_process(both, env, tmp_path / "b.log") as b_url,
        tenants(db_sync, a_url) as make,
    ):
        t = make()
        a = t.client
        auth = {"Authorization": f"Bearer {t.key}"}
        with httpx.Client(base_url=f"{b_url}/api/v1", headers=auth, timeout=30) as b:
            assert [new(c).status_code for c in (a, b, a)] == [201, 201, 201]
            refused = new(b)
            problem(refused, 429, errors.RATE_LIMITED)
            assert int(refused.headers["retry-after"]) >= 1
            problem(new(a), 429, errors.RATE_LIMITED)
            # Events: the account's 1,000 per hour, whichever gateway takes them.
            batch = [envelope(t.account_id) for _ in range(600)]
            assert a.post("/events", json=batch).status_code == 202
            problem(b.post("/events", json=batch), 429, errors.RATE_LIMITED)
            rest = [envelope(t.account_id) for _ in range(400)]
            assert b.post("/events", json=rest).status_code == 202
            problem(a.post("/events", json=[envelope(t.account_id)]), 429, errors.RATE_LIMITED)


# --- Redis away ----------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of this test's own, on `port`, that the test can stop."""
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(port), "the private Redis to start")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


def test_limits_hold_in_each_gateway_while_redis_is_down(
    settings: Settings, db_sync: Db, caplog: pytest.LogCaptureFixture
) -> None:
    """Without Redis the gateway keeps the budgets in its own memory (and says so in the log):
    calls are served, without waiting on Redis, and a budget spent meanwhile is still refused;
    when Redis is back the shared budgets are back."""
    port = free_port()
    alone = dataclasses.replace(
        settings,
        redis_url=f"redis://127.0.0.1:{port}/0",
        rate_writes=Budget(2, 3600),
        # a bucket lives as long as its debt: with the session's 100,000/min it expires within
        # a millisecond, and the check below would race it
        rate_reads=Budget(1000, 3600),
    )
    with (
        private_redis(port) as server,
        serve(create_app(alone)) as url,
        tenants(db_sync, url) as make,
    ):
        t = make()
        assert [new(t.client).status_code for _ in range(2)] == [201, 201]
        problem(new(t.client), 429, errors.RATE_LIMITED)
        server.terminate()
        server.wait(timeout=30)
        with caplog.at_level(logging.WARNING, logger="api.ratelimit"):
            # this process never saw Redis's count: its own buckets start full
            served = [new(t.client) for _ in range(2)]
            assert [r.status_code for r in served] == [201, 201], served[-1].text
            assert [r.headers["ratelimit-remaining"] for r in served] == ["1", "0"]
            refused = problem(new(t.client), 429, errors.RATE_LIMITED)
            assert "budget for changes" in refused["detail"]
            assert t.client.get("/workflows").status_code == 200  # reads: a budget of their own
            assert t.client.post("/events", json=envelope(t.account_id)).status_code == 202
        assert any("kept in this process" in r.getMessage() for r in caplog.records)
        reads = names.rate_limit_bucket("reads", t.key_id)
        with private_redis(port), redis.Redis(port=port) as fresh:

            def shared_again() -> bool:
                assert t.client.get("/workflows").status_code == 200
                return bool(fresh.exists(reads))

            wait_until(shared_again, "the limits to be kept in Redis again")
            assert new(t.client).status_code == 201  # the new Redis holds a full budget
