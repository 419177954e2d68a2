"""Backtest benchmark: a million retained events of one account, replayed through a trigger.

    python -m loadtest.bench_backtest [--events 1000000] [--contacts 10000] [--quick]

The account's shard stream gets `--events` synthetic events (pipelines.demo, every event type)
by XADD; its contacts are in the projection (COPY) and some are enrolled in the workflow
already. Then `store.backtest.run` (what POST .../trigger/backtest runs) replays the whole
stream: XRANGE pages, decoding, matching, projection and history reads. Timed from the first
XRANGE to the result, for the saved trigger alone and for a draft diffed against it.

Runs in a fresh database (created on the DATABASE_URL server, dropped at the end) and Redis
logical db 14 (flushed); embedded servers when the variables are unset. Prints figures and
PASS/FAIL against the target (100,000 events/s); asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import time
import uuid

import asyncpg
import orjson

from loadtest.scratch import scratch
from pipelines.backtest import Backtest, Result
from pipelines.config import Settings
from pipelines.demo import DATA, envelope
from pipelines.index import TriggerSpec, spec_from_config
from pipelines.messages import encode_event
from pipelines.sharding import shard_for
from pipelines.triggers import validate_trigger
from store import accounts, db
from store import backtest as reads
from store import workflows as store
from store.migrate import migrate
from streams import names, ranges
from streams.clients import async_client, sync_client
from streams.events import add_events_sync

REDIS_DB = 14
CHUNK = 10_000
TARGET = 100_000
SAVED = (
    "contact",
    "tag_added",
    {"logic": "AND", "conditions": [{"field": "tag", "operator": "equals", "value": "vip"}]},
    None,
)
DRAFT = (
    "contact",
    "tag_added",
    {
        "logic": "AND",
        "conditions": [
            {"field": "tag", "operator": "in", "value": ["vip", "hot-lead"]},
            {"field": "contact.status", "operator": "equals", "value": "customer"},
        ],
    },
    {"enrollment_limit": "multiple", "reenroll_cooldown_seconds": 86400},
)


def contact_ids(count: int) -> list[uuid.UUID]:
    r = random.Random(3)
    return [uuid.UUID(int=r.getrandbits(128), version=4) for _ in range(count)]


async def seed(url: str, contacts: list[uuid.UUID]) -> tuple[uuid.UUID, TriggerSpec]:
    """The account, its workflow with the saved trigger, the projection, a few enrollments."""
    conn = await db.connect(url)
    try:
        await migrate(conn)
        account = await accounts.create_account(conn, "backtest bench")
        workflow = await store.insert_workflow(conn, account, "vip follow-up", "", [])
        config = validate_trigger(*SAVED)
        row = await store.insert_trigger(conn, account, workflow["id"], config, True)
        r = random.Random(5)
        states = [{"status": r.choice(["lead", "customer"]), "tags": []} for _ in contacts]
        plain = await asyncpg.connect(url)  # plain codecs: COPY takes jsonb as text
        try:
            await plain.copy_records_to_table(
                "contacts",
                records=[
                    (account, c, orjson.dumps(s).decode(), False)
                    for c, s in zip(contacts, states, strict=True)
                ],
                columns=["account_id", "contact_id", "state", "deleted"],
            )
        finally:
            await plain.close()
        enrolled = [
            (uuid.uuid4(), account, workflow["id"], row["id"], c, uuid.uuid4(), True)
            for c in contacts[::10]
        ]
        await conn.executemany(
            "INSERT INTO workflow_enrollments (id, account_id, workflow_id, trigger_id,"
            " contact_id, event_id, status, run_at, single)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'triggered', now(), $7)",
            enrolled,
        )
        await conn.execute("ANALYZE contacts; ANALYZE workflow_enrollments")
    finally:
        await conn.close()
    spec = spec_from_config(
        config, trigger_id=row["id"], workflow_id=workflow["id"], account_id=account
    )
    return account, spec


def fill(redis_url: str, stream: str, account: uuid.UUID, contacts: list[str], count: int) -> None:
    """`count` events of every type (pipelines.demo), XADDed a chunk at a time."""
    r = random.Random(7)
    kinds = sorted(DATA)
    with sync_client(redis_url) as client:
        for start in range(0, count, CHUNK):
            envs = [
                envelope(account, r.choice(contacts), r.choice(kinds), r)
                for _ in range(min(CHUNK, count - start))
            ]
            add_events_sync(client, [(stream, encode_event(env)) for env in envs])


async def backtest(settings: Settings, bt: Backtest, stream: str) -> tuple[Result, float, float]:
    """The result, the wall seconds and this process's CPU seconds (not Redis's nor
    Postgres's)."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    pool = await db.create_pool(settings.database_url, 1, 2)
    redis = async_client(settings.redis_url)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        pages = ranges.read_window(redis, stream, 0, int(time.time() * 1000) + 1)
        result = await reads.run(bt, pool, stream, pages)
        return result, time.perf_counter() - started, time.process_time() - cpu
    finally:
        await redis.aclose()
        await pool.close()


def line(name: str, result: Result, seconds: float, cpu: float) -> str:
    out, rate = result.outcome, result.events_scanned / seconds
    verdict = "PASS" if rate >= TARGET else "FAIL"
    diff = ""
    if result.diff is not None:
        diff = (
            f"; diff +{result.diff.newly_matching.count:,}"
            f" -{result.diff.no_longer_matching.count:,}"
        )
    matched = f"matched {out.matched_events:,} ({out.matched_contacts:,} contacts)"
    return (
        f"{name:<11} {result.events_scanned:,} events in {seconds:.2f} s = {rate:,.0f} events/s"
        f" [>= {TARGET:,}: {verdict}] ({cpu:.2f} s CPU); {matched},"
        f" would enroll {out.would_enroll:,}{diff}"
    )


def run(settings: Settings, args: argparse.Namespace) -> list[str]:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    contacts = contact_ids(args.contacts)
    account, saved = asyncio.run(seed(settings.database_url, contacts))
    stream = names.events_stream(shard_for(account, settings.shards))
    started = time.monotonic()
    fill(settings.redis_url, stream, account, [str(c) for c in contacts], args.events)
    with sync_client(settings.redis_url) as client:
        memory = client.memory_usage(stream) or 0
    lines = [
        f"load        {args.events:,} events XADDed in {time.monotonic() - started:.1f} s;"
        f" the stream holds {memory / 2**20:,.0f} MiB ({memory / args.events:.0f} B/event)"
    ]
    bt = Backtest(account, saved)
    lines.append(line("saved", *asyncio.run(backtest(settings, bt, stream))))
    config = validate_trigger(*DRAFT)
    draft = spec_from_config(
        config, trigger_id=saved.trigger_id, workflow_id=saved.workflow_id, account_id=account
    )
    lines.append(
        line(
            "draft+diff", *asyncio.run(backtest(settings, Backtest(account, draft, saved), stream))
        )
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="100,000 events")
    args = parser.parse_args()
    if args.quick:
        args.events = 100_000
    with scratch(REDIS_DB) as settings:
        lines = run(settings, args)
    head = (
        f"machine     {os.cpu_count()} cores, {platform.machine()}, Python"
        f" {platform.python_version()}; {args.contacts:,} contacts in the projection;"
        f" load average {os.getloadavg()[0]:.1f} at the end"
    )
    print("\n".join(["", "bench_backtest", head, *lines]))


if __name__ == "__main__":
    main()
