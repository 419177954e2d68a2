"""`hairtrigger demo`: seed an account with a workflow per catalog event, stream synthetic events
through the real pipeline, and summarise what happened."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

from hairtrigger import runtime
from pipelines.config import Settings
from pipelines.demo import make_events
from pipelines.examples import REALISTIC
from pipelines.index import Spec
from pipelines.messages import encode_event
from pipelines.triggers import validate_trigger
from store import accounts, config_sync, db
from store import workflows as store
from streams import names
from streams.clients import sync_client
from streams.events import Router, add_events_sync

BATCH = 1000


async def seed(database_url: str) -> tuple[uuid.UUID, dict[uuid.UUID, str], list[Spec]]:
    """A demo account with one active workflow per catalog event."""
    conn = await db.connect(database_url)
    try:
        account_id = await accounts.create_account(conn, "Demo account", "America/New_York")
        names_by_id: dict[uuid.UUID, str] = {}
        specs: list[Spec] = []
        for event, (trigger_type, filters, settings) in sorted(REALISTIC.items()):
            async with conn.transaction():
                wf = await store.insert_workflow(conn, account_id, f"On {event}", "", [])
                await store.update_workflow(conn, wf["id"], {"status": "active"})
                config = validate_trigger(trigger_type, event, filters, settings)
                await store.insert_trigger(conn, account_id, wf["id"], config, True)
                specs += await config_sync.bump(conn, wf["id"])
            names_by_id[wf["id"]] = f"On {event}"
        return account_id, names_by_id, specs
    finally:
        await conn.close()


async def summary(database_url: str, account_id: uuid.UUID) -> dict[str, Any]:
    conn = await db.connect(database_url)
    try:
        per_workflow = await conn.fetch(
            "SELECT workflow_id, count(*) AS n FROM workflow_enrollments WHERE account_id = $1"
            " GROUP BY workflow_id ORDER BY n DESC",
            account_id,
        )
        latency = await conn.fetchrow(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY"
            " extract(epoch FROM enrolled_at - ingested_at) * 1000) AS ms"
            " FROM workflow_enrollments WHERE account_id = $1",
            account_id,
        )
        blocked = await conn.fetch(
            "SELECT failure_reason, count(*) AS n FROM trigger_execution_logs"
            " WHERE account_id = $1 AND failure_reason IS NOT NULL GROUP BY 1 ORDER BY 2 DESC",
            account_id,
        )
    finally:
        await conn.close()
    return {
        "per_workflow": [(r["workflow_id"], r["n"]) for r in per_workflow],
        "latency_ms": list(latency["ms"] or []) if latency else [],
        "logs": [(r["failure_reason"], r["n"]) for r in blocked],
    }


def _bar(done: int, total: int, started: float) -> None:
    width = 40
    filled = int(width * done / max(total, 1))
    rate = done / max(time.monotonic() - started, 1e-9)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} events  {rate:,.0f}/s "
    )
    sys.stderr.flush()


def run(settings: Settings, events: int, partitions: int) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    with runtime.engine(settings, partitions, dashboard=False) as eng:
        account_id, workflow_names, specs = asyncio.run(seed(settings.database_url))
        asyncio.run(eng.partitions.push(account_id, specs))
        before = _processed(eng)
        print(f"Demo account {account_id}: {len(specs)} active workflows, one per trigger event.")
        print(f"Streaming {events:,} synthetic events into {names.events_stream(0)[:-1]}* ...")
        envelopes = make_events(account_id, events)
        router = Router(eng.shards)
        started = time.monotonic()
        with sync_client(settings.redis_url) as client:
            for i in range(0, len(envelopes), BATCH):
                chunk = envelopes[i : i + BATCH]
                keys = [(account_id, e["data"]["contact_id"]) for e in chunk]
                streams = router.streams_sync(client, keys)
                add_events_sync(client, list(zip(streams, map(encode_event, chunk), strict=True)))
                _bar(_processed(eng) - before, events, started)
        while (done := _processed(eng) - before) < events:
            _bar(done, events, started)
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        _bar(events, events, started)
        sys.stderr.write("\n")
        report = asyncio.run(summary(settings.database_url, account_id))
    _print_summary(events, elapsed, report, workflow_names)


def _processed(eng: runtime.Engine) -> int:
    return sum(s["events"] + s["dead_lettered"] for s in eng.partitions.stats())


def _print_summary(
    events: int, elapsed: float, report: dict[str, Any], workflow_names: dict[uuid.UUID, str]
) -> None:
    total = sum(n for _, n in report["per_workflow"])
    print(
        f"\n{events:,} events in {elapsed:.1f} s = {events / elapsed:,.0f} events/s, "
        f"{total:,} enrollments"
    )
    if report["latency_ms"]:
        p50, p95, p99 = report["latency_ms"]
        print(f"XADD -> enrollment committed: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms")
    print("\nEnrollments per workflow:")
    for workflow_id, n in report["per_workflow"]:
        print(f"  {workflow_names.get(workflow_id, str(workflow_id)):<32} {n:>7,}")
    if report["logs"]:
        print("\nMatches that did not enroll (trigger_execution_logs):")
        for reason, n in report["logs"]:
            print(f"  {reason:<32} {n:>7,}")
    print("\nWhere to look next: `hairtrigger up` serves the API with its docs at /docs;")
    print("the tables workflow_enrollments and trigger_execution_logs hold every decision.")
