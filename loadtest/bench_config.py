"""Configuration-path benchmark: trigger validation on one core, and the REST API end to end.

    python -m loadtest.bench_config [--requests 500]

Uses DATABASE_URL / REDIS_URL when set, else embedded servers under ./.hairtrigger/bench.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn

from api.app import create_app
from hairtrigger import embedded
from pipelines import scopes
from pipelines.config import Settings
from pipelines.examples import REALISTIC, trigger_body
from pipelines.ratelimit import Budget
from pipelines.triggers import validate_trigger
from store import accounts, db


def bench_validation(seconds: float = 2.0) -> float:
    configs = list(REALISTIC.items())
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for event, (trigger_type, filters, settings) in configs:
            validate_trigger(trigger_type, event, filters, settings)
        done += len(configs)
    return done / (time.perf_counter() - start)


async def _make_tenant(database_url: str) -> tuple[uuid.UUID, str]:
    conn = await db.connect(database_url)
    try:
        account_id = await accounts.create_account(conn, "bench")
        key, _ = await accounts.create_key(conn, account_id, list(scopes.SCOPES))
        return account_id, key
    finally:
        await conn.close()


def _percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def bench_http(settings: Settings, requests: int, idempotent: bool = False) -> dict[str, float]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    assert settings.database_url is not None
    _, key = asyncio.run(_make_tenant(settings.database_url))
    events = sorted(REALISTIC)
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{port}/api/v1"
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        start = time.perf_counter()
        for i in range(requests):
            workflow = client.post("/workflows", json={"name": f"bench {i}"}).json()
            t0 = time.perf_counter()
            extra = {"Idempotency-Key": str(uuid.uuid4())} if idempotent else {}
            response = client.post(
                f"/workflows/{workflow['id']}/trigger",
                json=trigger_body(events[i % len(events)]),
                headers=extra,
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 201, response.text
        elapsed = time.perf_counter() - start
    server.should_exit = True
    thread.join(timeout=10)
    return {
        "trigger_creates": requests,
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "p99_ms": _percentile(latencies, 99),
        "workflow+trigger pairs/s": requests / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"validate_trigger: {bench_validation():,.0f} configurations/s (one core)")
    env = Settings.from_env()
    with embedded.services(env.database_url, env.redis_url, Path(".hairtrigger/bench")) as found:
        # The rate limiter runs on every call but never binds: its cost is measured, not its 429s.
        settings = Settings(
            database_url=found.database_url,
            redis_url=found.redis_url,
            rate_writes=Budget(10**9, 60),
        )
        results = {
            "": bench_http(settings, args.requests),
            " with Idempotency-Key": bench_http(settings, args.requests, idempotent=True),
        }
    for label, result in results.items():
        for name, value in result.items():
            print(f"POST /trigger{label} {name}: {value:,.1f}")


if __name__ == "__main__":
    main()
