"""Config writes at scale: `POST /workflows/{id}/trigger` and activation in an account of 100
triggers and in one of 10,000, over real HTTP against the real app.

    python -m loadtest.bench_config_scale [--sizes 100,10000] [--samples 200] [--quick]

Each account's workflows are loaded through the store's own writes (not 10,000 HTTP calls):
active, every one with a realistic trigger (one per catalog event in turn, their identifying
values drawn from a vocabulary that grows with the account, about two workflows per value) and
actions, one in five of which emits an event two other workflows listen to: the loop check has
edges to follow, and a change reaches about as many workflows in either account. The pushes go
to an in-process trigger index holding every trigger of both accounts (what a partition actor
applies, without Ray's hop, which costs the same at any size).

One sample per size, the sizes taking turns: a draft workflow gets a trigger and is activated
(measured: the activation), another is activated and then gets its trigger (measured: the
POST), both are deleted again so the account keeps its size; an authenticated GET of one
workflow is the floor. Uses a fresh database on the DATABASE_URL server (dropped afterwards)
and Redis database 7, or embedded servers when the variables are unset.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from loadtest.scratch import scratch
from pipelines import scopes
from pipelines.catalog import BY_NAME
from pipelines.config import Settings
from pipelines.examples import REALISTIC, all_of, cond
from pipelines.index import Spec, TriggerIndex
from pipelines.ratelimit import Budget
from pipelines.triggers import validate_trigger
from store import accounts, config_sync, db
from store import workflows as store
from store.migrate import migrate

REDIS_DB = 7
TARGET_P95_MS = 20.0
TARGET_RATIO = 1.5
PER_VALUE = 2  # workflows sharing one identifying value (one tag, one form, ...)
EVENTS = sorted(REALISTIC)


def _vocabulary(size: int) -> int:
    return max(1, round(size / (len(EVENTS) * PER_VALUE)))


def _vary(node: dict[str, Any], identifying: frozenset[str], suffix: str) -> dict[str, Any]:
    """The filter with each identifying equals / in value suffixed: `hot-lead` -> `hot-lead-7`."""
    if "conditions" in node:
        return {**node, "conditions": [_vary(c, identifying, suffix) for c in node["conditions"]]}
    name = node["field"].removeprefix("event.")
    if name not in identifying or node["operator"] not in ("equals", "in"):
        return node
    value = node["value"]
    varied = [f"{v}-{suffix}" for v in value] if isinstance(value, list) else f"{value}-{suffix}"
    return {**node, "value": varied}


def bulk_workflow(i: int, size: int) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """Workflow number `i` of an account of `size`: its name, actions and trigger body."""
    event = EVENTS[i % len(EVENTS)]
    vocabulary = _vocabulary(size)
    trigger_type, filters, settings = REALISTIC[event]
    identifying = frozenset(BY_NAME[event].identifying)
    varied = _vary(filters, identifying, str((i // len(EVENTS)) % vocabulary))
    other = str((i * 7) % vocabulary)
    choices: list[list[dict[str, Any]]] = [
        [{"type": "send_email"}],
        [{"type": "wait"}, {"type": "send_sms"}],
        [{"type": "send_email"}, {"type": "add_tag", "tag": f"hot-lead-{other}"}],
        [{"type": "webhook", "url": "https://example.com/hook"}, {"type": "notify_user"}],
        [{"type": "send_email"}, {"type": "wait"}, {"type": "send_email"}],
        [{"type": "update_field", "field": f"lead_score-{other}", "value": 90}],
        [{"type": "send_sms"}],
        [{"type": "add_tag", "tag": f"contacted-{other}"}],  # nobody listens
        [{"type": "wait"}, {"type": "webhook", "url": "https://example.com/hook"}],
        [{"type": "notify_user"}],
    ]
    actions = choices[i % len(choices)]
    trigger = {
        "trigger_type": trigger_type,
        "trigger_event": event,
        "filters": varied,
        "settings": settings,
    }
    return f"bulk {i}", actions, trigger


def measured_workflow(k: int, size: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A new workflow of the sample loop: its own tag starts it (nothing leads back to it), and
    its actions reach into the bulk, so the loop check follows real edges."""
    other = str(k % _vocabulary(size))
    actions: list[dict[str, Any]] = [
        {"type": "send_email"},
        {"type": "add_tag", "tag": f"hot-lead-{other}"},
        {"type": "update_field", "field": f"lead_score-{other}", "value": 90},
    ]
    trigger: dict[str, Any] = {
        "trigger_type": "contact",
        "trigger_event": "tag_added",
        "filters": all_of(cond("tag", "equals", f"bench-{k}")),
    }
    return actions, trigger


async def load_account(url: str, size: int) -> tuple[uuid.UUID, str]:
    """An account of `size` active workflows with triggers, written in batches of 500."""
    conn = await db.connect(url)
    try:
        account_id = await accounts.create_account(conn, f"{size} triggers")
        key, _ = await accounts.create_key(conn, account_id, list(scopes.SCOPES))
        for start in range(0, size, 500):
            async with conn.transaction():
                for i in range(start, min(start + 500, size)):
                    name, actions, body = bulk_workflow(i, size)
                    config = validate_trigger(
                        body["trigger_type"],
                        body["trigger_event"],
                        body["filters"],
                        body["settings"],
                    )
                    row = await store.insert_workflow(conn, account_id, name, "", actions)
                    await store.insert_trigger(conn, account_id, row["id"], config, True)
                    await store.update_workflow(conn, row["id"], {"status": "active"})
        await conn.execute("ANALYZE")
        return account_id, key
    finally:
        await conn.close()


async def _all_specs(url: str) -> list[Spec]:
    conn = await db.connect(url)
    try:
        return await config_sync.all_specs(conn)
    finally:
        await conn.close()


class LocalSync:
    """Stands in for the partition actors: applies each push to one index of every trigger."""

    def __init__(self, specs: list[Spec]) -> None:
        self.index = TriggerIndex()
        self.index.apply_many(specs)

    async def push(self, account_id: uuid.UUID, specs: list[Spec]) -> bool:
        for spec in specs:
            self.index.apply(spec)
        return True


@contextmanager
def serving(settings: Settings, sync: LocalSync) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, sync), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Account:
    size: int
    client: httpx.Client
    probe: str  # a workflow id for the floor's GET
    made: int = 0
    ms: dict[str, list[float]] = field(default_factory=dict)

    def timed(self, name: str, call: Callable[[], httpx.Response], status: int) -> Any:
        t0 = time.perf_counter()
        response = call()
        self.ms.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def _new(self, actions: list[dict[str, Any]]) -> str:
        created = self.client.post("/workflows", json={"name": "measured", "actions": actions})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def _ok(self, response: httpx.Response) -> None:
        assert response.status_code < 300, response.text

    def sample(self) -> None:
        c, active = self.client, {"status": "active"}
        self.timed("GET workflow (floor)", lambda: c.get(f"/workflows/{self.probe}"), 200)
        actions, trigger = measured_workflow(self.made, self.size)
        first = self._new(actions)
        self._ok(c.post(f"/workflows/{first}/trigger", json=trigger))
        self.timed("activation", lambda: c.patch(f"/workflows/{first}", json=active), 200)
        actions, trigger = measured_workflow(self.made + 1, self.size)
        second = self._new(actions)
        self._ok(c.patch(f"/workflows/{second}", json=active))
        self.timed(
            "POST trigger", lambda: c.post(f"/workflows/{second}/trigger", json=trigger), 201
        )
        for wf in (first, second):
            self._ok(c.delete(f"/workflows/{wf}"))
        self.made += 2


def _p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def report(found: list[Account]) -> list[str]:
    lines = [f"{'call':<22} {'triggers':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"]
    for name in found[0].ms:
        for a in found:
            ms = a.ms[name]
            lines.append(
                f"{name:<22} {a.size:>9,} {_p(ms, 50):8.1f} {_p(ms, 95):8.1f} {max(ms):8.1f}"
            )
    small, big = found[0], found[-1]
    for name in ("POST trigger", "activation"):
        p95, base = _p(big.ms[name], 95), _p(small.ms[name], 95)
        ratio = p95 / base
        lines.append(
            f"{name} at {big.size:,}: p95 {p95:.1f} ms [<= {TARGET_P95_MS:.0f}:"
            f" {'PASS' if p95 <= TARGET_P95_MS else 'FAIL'}], {ratio:.2f}x of {small.size:,}"
            f" [<= {TARGET_RATIO}x: {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}]"
        )
    return lines


def run(sizes: list[int], samples: int) -> list[str]:
    with scratch(REDIS_DB, prefix="ht_bench_config") as env:
        url = env.database_url
        assert url is not None
        asyncio.run(_migrate(url))
        loaded, started = [], time.monotonic()
        for size in sizes:
            loaded.append((size, *asyncio.run(load_account(url, size))))
        load_s = time.monotonic() - started
        sync = LocalSync(asyncio.run(_all_specs(url)))
        # The rate limiter runs on every call but never binds: its cost is measured, not its 429s.
        settings = Settings(
            database_url=url,
            redis_url=env.redis_url,
            rate_writes=Budget(10**9, 60),
            rate_reads=Budget(10**9, 60),
        )
        with serving(settings, sync) as base:
            found = []
            for size, _, key in loaded:
                client = httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600
                )
                probe = client.get("/workflows", params={"limit": 1}).json()["items"][0]["id"]
                found.append(Account(size, client, probe))
            for a in found:  # warm-up: connections, caches, the first plans
                for _ in range(3):
                    a.sample()
                a.ms.clear()
            for _ in range(samples):
                for a in found:
                    a.sample()
            for a in found:
                a.client.close()
    head = (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}; loaded {sum(sizes):,} workflows in {load_s:.1f} s;"
        f" {samples} samples per call and size"
    )
    return ["", "bench_config_scale", head, *report(found)]


async def _migrate(url: str) -> None:
    conn = await db.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000", help="triggers per account, smallest first")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="100 and 2,000 triggers, 50 samples")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        sizes, args.samples = [100, 2000], 50
    print("\n".join(run(sizes, args.samples)))


if __name__ == "__main__":
    main()
