"""Processing isolation: how much one account's burst, or its poison, delays another account on
the same partition (SPEC §15, docs/operations.md §13).

    python -m loadtest.bench_isolation [--burst 100000] [--rate 200] [--seconds 10]

Two accounts (`multiple` tag, form and source triggers, as bench_e2e's heavy workload) whose
home shards are two different shards of partition 0. Account B sends events at `--rate` per
second, paced, for `--seconds`, three times over:

1. alone: B's baseline latency;
2. while A's burst (`--burst` events written to A's shard just before) drains;
3. while A sends poison, 10 a second: four kinds refused at decode (timestamps outside
   1970-2199, nesting past 32 levels, an integer beyond 64 bits) and one a second that only
   Postgres refuses (a row trigger raising for that contact: the batch is bisected).

Latency is XADD (the stream entry id) -> B's enrollment committed, read back from Postgres.
Runs in a fresh database and Redis db 14, on the real engine (2 partitions); asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
import uuid
from typing import Any

from hairtrigger import runtime
from loadtest import workloads
from loadtest.bench_e2e import machine, send_paced, wait_drained, xadd
from loadtest.scratch import scratch
from pipelines.messages import encode_event
from pipelines.sharding import shard_for
from store import db
from store.migrate import migrate
from streams import names
from streams.clients import SyncRedis, sync_client
from streams.events import Router
from streams.meta import publish_shards

REDIS_DB = 14
PARTITIONS = 2
WORKLOAD = workloads.Workload("isolation", 2, 500, False)
REFUSED = uuid.UUID(int=7, version=4)  # the contact whose row Postgres refuses


def two_accounts(shards: int) -> tuple[uuid.UUID, uuid.UUID]:
    """A and B: seeded ids on two different shards of partition 0."""
    found: dict[int, uuid.UUID] = {}
    for account in workloads.account_ids(200, seed=21):
        shard = shard_for(account, shards)
        if shard % PARTITIONS == 0:
            found.setdefault(shard, account)
        if len(found) == 2:
            a, b = found.values()
            return a, b
    raise SystemExit("no two accounts on partition 0's shards")


async def prepare(url: str, ids: list[uuid.UUID]) -> None:
    conn = await db.connect(url)
    try:
        await migrate(conn)
        await conn.execute(
            "CREATE FUNCTION bench_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'refused by the benchmark'; END$$;"
            " CREATE TRIGGER bench_refuse BEFORE INSERT OR UPDATE ON contacts FOR EACH ROW"
            f" WHEN (NEW.contact_id = '{REFUSED}') EXECUTE FUNCTION bench_refuse()"
        )
    finally:
        await conn.close()
    await workloads.seed(url, WORKLOAD, ids)


def items(
    client: SyncRedis, router: Router, events: list[dict[str, Any]]
) -> list[tuple[str, bytes]]:
    keys = [(uuid.UUID(e["account_id"]), e["data"]["contact_id"]) for e in events]
    streams = router.streams_sync(client, keys)
    return [(s, encode_event(e)) for s, e in zip(streams, events, strict=True)]


def poisons(account: uuid.UUID, n: int) -> list[dict[str, Any] | bytes]:
    """n poison events, in turn of the five kinds (one in ten is the Postgres-refused one)."""
    out: list[dict[str, Any] | bytes] = []
    base = workloads.events(WORKLOAD, account, n, seed=99)
    for i, e in enumerate(base):
        kind = i % 10
        if kind in (0, 5):
            e["timestamp"] = "0001-01-01T00:00:00+14:00" if kind == 0 else "9999-12-31T23:59:59Z"
        elif kind in (1, 6):
            e["data"]["nested"] = json.loads("[" * 40 + "]" * 40)
        elif kind in (2, 7):
            out.append(json.dumps({**e, "data": {**e["data"], "score": 2**80}}).encode())
            continue
        elif kind == 3:  # a contact event: its contact's row is written, and refused
            e["event_type"] = "contact.tag_added"
            e["data"] = {"contact_id": str(REFUSED), "tag": "tag-0"}
        out.append(e)
    return out


async def latency(url: str, account: uuid.UUID, since: float) -> dict[str, float]:
    conn = await db.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY ms)"
            " AS p, max(ms) AS max FROM (SELECT extract(epoch FROM enrolled_at - ingested_at)"
            " * 1000 AS ms FROM workflow_enrollments WHERE account_id = $1"
            " AND ingested_at >= to_timestamp($2)) AS t",
            account,
            since,
        )
    finally:
        await conn.close()
    assert row is not None
    p = row["p"] or [0.0, 0.0]
    return {"n": row["n"], "p50": p[0], "p99": p[1], "max": row["max"] or 0.0}


def show(name: str, f: dict[str, float], extra: str = "") -> str:
    return (
        f"{name:<11} B: {f['n']:,} enrollments, p50 {f['p50']:.0f} ms, p99 {f['p99']:.0f} ms,"
        f" max {f['max']:.0f} ms{extra}"
    )


def run(args: argparse.Namespace) -> list[str]:
    with scratch(REDIS_DB) as settings:
        assert settings.database_url is not None
        assert settings.redis_url is not None
        url = settings.database_url
        client = sync_client(settings.redis_url)
        shards = publish_shards(settings.redis_url, settings.shards)
        a, b = two_accounts(shards)
        asyncio.run(prepare(url, [a, b]))
        router = Router(shards)
        n = args.rate * args.seconds
        b_events = [
            items(client, router, workloads.events(WORKLOAD, b, n, seed=s)) for s in (1, 2, 3)
        ]
        burst = items(client, router, workloads.events(WORKLOAD, a, args.burst, seed=4))
        lines = [
            f"machine     {machine(client, url)}",
            f"settings    {PARTITIONS} partitions, {shards} shards; A on shard"
            f" {shard_for(a, shards)}, B on shard {shard_for(b, shards)} (both partition 0);"
            f" {WORKLOAD.triggers} triggers each; B at {args.rate}/s for {args.seconds} s",
        ]
        with runtime.engine(settings, PARTITIONS, dashboard=False) as eng:
            since = time.time() - 0.001
            send_paced(client, b_events[0], args.rate)
            wait_drained(client, eng, n, 0)
            alone = asyncio.run(latency(url, b, since))
            lines.append(show("alone", alone))

            for i in range(0, len(burst), 2000):
                xadd(client, burst[i : i + 2000])
            started = time.monotonic()
            since = time.time() - 0.001
            send_paced(client, b_events[1], args.rate)
            wait_drained(client, eng, n + len(burst), 0)
            drained = time.monotonic() - started
            during = asyncio.run(latency(url, b, since))
            lines.append(
                show("A's burst", during, f"; A's {len(burst):,} events drained in {drained:.1f} s")
            )

            bad = poisons(a, 10 * args.seconds)
            stop = threading.Event()

            def send_poison() -> None:
                for p in bad:
                    if stop.is_set():
                        return
                    raw = p if isinstance(p, bytes) else encode_event(p)
                    xadd(client, [(names.events_stream(shard_for(a, shards)), raw)])
                    time.sleep(0.1)

            sender = threading.Thread(target=send_poison)
            since = time.time() - 0.001
            sender.start()
            send_paced(client, b_events[2], args.rate)
            stop.set()
            sender.join()
            wait_drained(client, eng, n, 0)
            poisoned = asyncio.run(latency(url, b, since))
            dead = client.xlen(names.DLQ_STREAM)
            lines.append(show("A's poison", poisoned, f"; {dead} dead letters"))
            stats = eng.partitions.stats()
        lines.append(
            "actors      "
            + "; ".join(
                f"p{s['partition']}: {s['events']:,} events, {s['errors']} failed parts"
                for s in stats
            )
        )
        client.close()
        return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    lines = run(args)
    print("\n".join(["", "bench_isolation " + " ".join(sys.argv[1:]), *lines]))


if __name__ == "__main__":
    main()
