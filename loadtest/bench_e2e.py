"""End-to-end benchmark: the real system (Ray partition actors, Redis, Postgres) on this machine.

    python -m loadtest.bench_e2e [--preload 200000] [--rate 5000] [--seconds 60]
                                 [--partitions 2] [--accounts 20] [--quick]

1. Preload: events are written into the shards before the actors start, then timed from engine
   ready until every shard is drained (all acknowledged, so their enrollments are committed).
2. Open loop: events sent at a fixed rate while the engine runs; latency from XADD (the stream
   entry id) to the enrollment, read back from Postgres.

Runs in a fresh database (created on the DATABASE_URL server, dropped at the end) and Redis
logical db 11 (flushed) so old data never counts; embedded servers when the variables are unset.
Prints figures and PASS/FAIL against the targets in docs/operations.md §13; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from actors.worker import WorkerConfig
from hairtrigger import demo, runtime
from loadtest import floor, workloads
from loadtest.scratch import scratch, value
from pipelines.config import Settings
from pipelines.demo import make_events
from pipelines.messages import KNOWN_EVENT_TYPES, encode_event
from pipelines.sharding import shard_for
from store import db
from store.migrate import migrate
from streams import names
from streams.clients import SyncRedis, sync_client
from streams.events import Router, add_events_sync
from streams.meta import publish_shards
from streams.shards import GROUP

REDIS_DB = 11
CHUNK = 2000
TICK = 0.01
DRAIN_TIMEOUT = 900.0
TARGET = 20_000  # events/s until all acknowledged (docs/operations.md §13)
Item = tuple[str, bytes]  # (stream, encoded envelope)
Route = Callable[[Sequence[tuple[uuid.UUID, str]]], list[str]]


async def prepare(url: str, accounts: int) -> list[uuid.UUID]:
    conn = await db.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return [(await demo.seed(url))[0] for _ in range(accounts)]


def make_items(accounts: list[uuid.UUID], route: Route, counts: list[int]) -> list[list[Item]]:
    """Realistic events spread evenly over the accounts, interleaved; one list per count.
    `route` gives each (account, contact) its stream, as every producer does."""
    total, k = sum(counts), len(accounts)
    streams: list[list[Item]] = []
    for i, account_id in enumerate(accounts):
        n = total // k + (i < total % k)
        events = make_events(account_id, n, seed=i)
        names_ = route([(account_id, e["data"]["contact_id"]) for e in events])
        streams.append([(st, encode_event(e)) for st, e in zip(names_, events, strict=True)])
    mixed = [x for group in itertools.zip_longest(*streams) for x in group if x is not None]
    bounds = list(itertools.accumulate(counts, initial=0))
    return [mixed[a:b] for a, b in itertools.pairwise(bounds)]


def xadd(client: SyncRedis, items: list[Item]) -> None:
    add_events_sync(client, items)


def drained(client: SyncRedis, streams: list[str]) -> bool:
    for stream in streams:
        last = client.xinfo_stream(stream)["last-generated-id"]
        group = next(g for g in client.xinfo_groups(stream) if g["name"] == GROUP.encode())
        if group["pending"] or group["last-delivered-id"] != last:
            return False
    return True


def wait_drained(client: SyncRedis, eng: runtime.Engine, total: int, base: int) -> float:
    """Seconds until every shard is drained (DRAIN_TIMEOUT if never), progress on stderr."""
    streams = [names.events_stream(s) for s in range(eng.shards)]
    start = time.monotonic()
    shown = 0.0
    while not drained(client, streams) and time.monotonic() - start < DRAIN_TIMEOUT:
        if time.monotonic() - shown > 2:
            done, shown = processed(eng) - base, time.monotonic()
            sys.stderr.write(f"\r  {done:,}/{total:,} events processed ")
            sys.stderr.flush()
        time.sleep(0.05)
    sys.stderr.write("\n")
    return time.monotonic() - start


def processed(eng: runtime.Engine) -> int:
    return sum(s["events"] + s["dead_lettered"] for s in eng.partitions.stats())


def send_paced(client: SyncRedis, items: list[Item], rate: int) -> float:
    """XADD `items` at `rate` per second in TICK-sized pipelines; returns the seconds taken."""
    start = next_tick = time.perf_counter()
    sent = 0
    while sent < len(items):
        due = min(len(items), int((time.perf_counter() - start) * rate) + 1)
        if due > sent:
            xadd(client, items[sent:due])
            sent = due
        next_tick += TICK
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    return time.perf_counter() - start


async def latency(url: str, since: float, column: str) -> dict[str, Any]:
    """Percentiles in ms of `column` - ingested_at over enrollments ingested after `since`."""
    conn = await db.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
            " (ORDER BY ms) AS p, max(ms) AS max FROM (SELECT extract(epoch FROM"
            f" {column} - ingested_at) * 1000 AS ms FROM workflow_enrollments"
            " WHERE ingested_at >= to_timestamp($1)) AS t",
            since,
        )
    finally:
        await conn.close()
    assert row is not None
    return {"n": row["n"], "p": [float(x) for x in row["p"] or [0, 0, 0]], "max": row["max"] or 0}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def machine(client: SyncRedis, url: str) -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    pg = asyncio.run(value(url, "SHOW server_version"))
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, Redis {client.info()['redis_version']}, "
        f"PostgreSQL {pg}"
    )


def ms(figures: dict[str, Any]) -> str:
    p50, p95, p99 = figures["p"]
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, max {figures['max']:.0f} ms"


def actor(s: dict[str, Any]) -> str:
    return (
        f"p{s['partition']}: {s['events']:,} events in {s['batches']:,} batches,"
        f" {s['dead_lettered']} dead-lettered, {s['errors']} errors"
    )


def _preload(
    settings: Settings, args: argparse.Namespace, client: SyncRedis, shards: int
) -> tuple[list[Item], list[Item], dict[floor.Key, list[str]], floor.KeyOf, str, int]:
    """Seed the workload's accounts and write its preload into the shards: (preload, paced,
    floor table, floor key, description, enrollments expected or -1 when not known)."""
    assert settings.database_url is not None
    url = settings.database_url
    router = Router(shards)
    route: Route = lambda keys: router.streams_sync(client, keys)  # noqa: E731
    if args.workload == "standard":
        accounts = asyncio.run(prepare(url, args.accounts))
        preload, paced = make_items(accounts, route, [args.preload, args.rate * args.seconds])
        table = {(str(a), "type", t): [f"{a}:{t}"] for a in accounts for t in KNOWN_EVENT_TYPES}
        about = f"{args.accounts} accounts x 26 active workflows"
        return preload, paced, table, floor.by_type, about, -1
    w = workloads.WORKLOADS[args.workload]
    ids = workloads.account_ids(w.accounts)
    asyncio.run(prepare(url, 0))  # the schema
    asyncio.run(workloads.seed(url, w, ids))
    if w.spread:
        client.hset(names.SPREAD_KEY, mapping={str(a): shards for a in ids})
    per = [workloads.events(w, a, args.preload // len(ids), seed=i) for i, a in enumerate(ids)]
    mixed = [e for group in itertools.zip_longest(*per) for e in group if e is not None]
    streams = route([(e["account_id"], e["data"]["contact_id"]) for e in mixed])
    preload = [(st, encode_event(e)) for st, e in zip(streams, mixed, strict=True)]
    table = floor.lookup_of({str(a): workloads.floor_triggers(w) for a in ids})
    homes = sorted({shard_for(a, shards) for a in ids})
    about = (
        f"{w.accounts} accounts x {w.triggers:,} active `multiple` triggers (workload {w.name},"
        f" home shards {homes}{', spread over every shard' if w.spread else ''})"
    )
    return preload, [], table, floor.by_value, about, workloads.expected_enrollments(mixed)


def run(settings: Settings, args: argparse.Namespace, client: SyncRedis) -> list[str]:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    url = settings.database_url
    shards = publish_shards(settings.redis_url, settings.shards)
    preload, paced, table, key, about, expected = _preload(settings, args, client, shards)
    for i in range(0, len(preload), CHUNK):
        xadd(client, preload[i : i + CHUNK])
    batch = WorkerConfig(0, args.partitions, shards, url, settings.redis_url).batch_size
    lines = [
        f"machine     {machine(client, url)}",
        f"settings    {args.partitions} partitions, {shards} shards, batch {batch} per shard,"
        f" {about}",
    ]
    low = asyncio.run(floor.run(settings.redis_url, url, shards, len(preload), table, key))
    lines.append(
        f"floor       one process, XREADGROUP -> dict lookup -> COPY -> XACK: {low.events:,}"
        f" events in {low.seconds:.2f} s = {low.rate:,.0f} events/s ({low.rows:,} rows)"
    )
    with runtime.engine(settings, args.partitions, dashboard=False) as eng:
        early = processed(eng)  # consumed while the other actors were still starting
        seconds = wait_drained(client, eng, len(preload), 0)
        rate = (len(preload) - early) / seconds
        enrolled = asyncio.run(value(url, "SELECT count(*) FROM workflow_enrollments"))
        exact = expected < 0 or enrolled == expected
        ok = seconds < DRAIN_TIMEOUT and rate >= TARGET and exact
        per_event = enrolled / max(len(preload), 1)
        lines.append(
            f"preload     {len(preload) - early:,} events (+{early:,} before the timer)"
            f" in {seconds:.2f} s = {rate:,.0f} events/s ({rate / low.rate:.2f}x the floor)"
            f" -> {enrolled:,} enrollments committed ({per_event:.2f} per event"
            + ("" if expected < 0 else f", {expected:,} expected")
            + f")   [>= {TARGET:,}/s, all acknowledged and exact: {verdict(ok)}]"
        )
        since = time.time() - 0.001  # stream entry ids have whole milliseconds
        base = processed(eng)
        took = send_paced(client, paced, args.rate) if paced else 0.0
        tail = wait_drained(client, eng, len(paced), base) if paced else 0.0
        stats = eng.partitions.stats()
    lines.append("actors      " + "; ".join(map(actor, stats)))
    if not paced:
        return lines
    committed = asyncio.run(latency(url, since, "enrolled_at"))
    p99 = committed["p"][2]
    ok = tail < DRAIN_TIMEOUT
    sent_rate = len(paced) / took if took else 0.0
    return [
        *lines,
        f"open loop   {len(paced):,} events at {args.rate:,}/s for {args.seconds} s: sent at"
        f" {sent_rate:,.0f}/s over {took:.1f} s, drained {tail:.2f} s after the last",
        f"latency     XADD -> enrollment committed ({committed['n']:,} enrollments):"
        f" {ms(committed)}   [p99 <= 100: {verdict(ok and p99 <= 100)}]",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument(
        "--workload", choices=["standard", *workloads.WORKLOADS], default="standard"
    )
    parser.add_argument("--quick", action="store_true", help="5,000 preload, 500/s for 5 s")
    args = parser.parse_args()
    if args.quick:
        args.preload, args.rate, args.seconds, args.accounts = 5000, 500, 5, 2
    with scratch(REDIS_DB) as settings:
        assert settings.redis_url is not None
        client = sync_client(settings.redis_url)
        try:
            lines = run(settings, args, client)
        finally:
            client.close()
    print("\n".join(["", "bench_e2e " + " ".join(sys.argv[1:]), *lines]))


if __name__ == "__main__":
    main()
