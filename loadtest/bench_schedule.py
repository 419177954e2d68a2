"""Scheduler benchmark (docs/operations.md §13): a day's birthdays among 1,000,000 contacts, and a
recurring schedule over 100,000 contacts, each emitted and enrolled end to end.

    python -m loadtest.bench_schedule [--contacts 1000000] [--recurring 100000] [--quick]

Contacts are bulk-loaded straight into the projection (contacts, contact_dates) with COPY; the
scheduler's clock is driven by explicit ticks so that the measured day is always the same.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import ray

from hairtrigger import runtime
from loadtest.scratch import scratch, value
from pipelines.config import Settings
from pipelines.triggers import validate_trigger
from store import accounts, config_sync, db
from store import workflows as store
from store.migrate import migrate

REDIS_DB = 12
DAY = date(2027, 6, 15)  # the measured day; 09:00 in New York is 13:00 UTC (EDT)
TZ = "America/New_York"
TIMEOUT_S = 600.0


async def seed_contacts(url: str, account_id: uuid.UUID, n: int, dated: bool) -> None:
    """n contacts; with `dated`, each has a random birthday and signup date."""
    rng = random.Random(n)
    conn = await asyncpg.connect(url)  # plain codecs: COPY takes jsonb as text
    try:
        contacts: list[tuple[Any, ...]] = []
        dates: list[tuple[Any, ...]] = []
        for _ in range(n):
            contact = uuid.UUID(int=rng.getrandbits(128), version=4)
            state: dict[str, Any] = {"email": f"{contact.hex[:8]}@example.com"}
            if dated:
                birthday = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
                signup = date(2015, 1, 1) + timedelta(days=rng.randrange(365 * 10))
                state |= {"birthday": birthday.isoformat(), "signup_date": signup.isoformat()}
                for field, day in (("birthday", birthday), ("signup_date", signup)):
                    dates.append((account_id, contact, field, day, day.month * 100 + day.day))
            contacts.append((account_id, contact, orjson.dumps(state).decode(), [], False))
        await conn.copy_records_to_table(
            "contacts",
            records=contacts,
            columns=["account_id", "contact_id", "state", "tags", "deleted"],
        )
        if dates:
            await conn.copy_records_to_table(
                "contact_dates",
                records=dates,
                columns=["account_id", "contact_id", "field", "day", "md"],
            )
        await conn.execute("ANALYZE contacts; ANALYZE contact_dates")
    finally:
        await conn.close()


async def seed(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await db.connect(url)
    try:
        await migrate(conn)
        big = await accounts.create_account(conn, "a million contacts", TZ)
        small = await accounts.create_account(conn, "weekly digest", TZ)
    finally:
        await conn.close()
    await seed_contacts(url, big, args.contacts, dated=True)
    await seed_contacts(url, small, args.recurring, dated=False)
    return {"big": big, "small": small}


async def add_trigger(
    url: str, account_id: uuid.UUID, event: str, settings: dict[str, Any]
) -> None:
    conn = await db.connect(url)
    try:
        async with conn.transaction():
            wf = await store.insert_workflow(conn, account_id, event, "", [])
            await store.update_workflow(conn, wf["id"], {"status": "active"})
            config = validate_trigger("time", event, None, settings)
            await store.insert_trigger(conn, account_id, wf["id"], config, True)
            await config_sync.bump(conn, wf["id"])
    finally:
        await conn.close()


def count(url: str, account_id: uuid.UUID) -> int:
    n: int = asyncio.run(
        value(url, "SELECT count(*) FROM workflow_enrollments WHERE account_id = $1", account_id)
    )
    return n


def wait_for(url: str, account_id: uuid.UUID, expected: int) -> float:
    start = time.monotonic()
    while count(url, account_id) < expected and time.monotonic() - start < TIMEOUT_S:
        time.sleep(0.05)
    return time.monotonic() - start


def tick(eng: runtime.Engine, now: datetime) -> float:
    start = time.monotonic()
    ray.get(eng.scheduler.tick.remote(now.isoformat()), timeout=TIMEOUT_S)
    return time.monotonic() - start


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def run(settings: Settings, args: argparse.Namespace) -> list[str]:
    url = settings.database_url
    assert url is not None
    started = time.monotonic()
    ids = asyncio.run(seed(url, args))
    loaded = time.monotonic() - started
    expected = asyncio.run(
        value(
            url,
            "SELECT count(*) FROM contact_dates WHERE account_id = $1 AND field = 'birthday'"
            " AND md = $2",
            ids["big"],
            DAY.month * 100 + DAY.day,
        )
    )
    asyncio.run(add_trigger(url, ids["big"], "birthday", {}))
    asyncio.run(
        add_trigger(url, ids["small"], "recurring_schedule", {"every": 1, "time_of_day": "10:00"})
    )
    lines = [
        f"load        {args.contacts:,} + {args.recurring:,} contacts in {loaded:.1f} s (COPY)"
    ]
    with runtime.engine(settings, args.partitions, dashboard=False, scheduler_clock=False) as eng:
        plan = tick(eng, datetime(DAY.year, DAY.month, DAY.day, 4, tzinfo=UTC))
        emit = tick(eng, datetime(DAY.year, DAY.month, DAY.day, 13, 0, 30, tzinfo=UTC))
        total = emit + wait_for(url, ids["big"], expected)
        ok = count(url, ids["big"]) == expected and total < 5
        lines.append(
            f"birthdays   plan {plan:.2f} s; {expected:,} due at 09:00 emitted in {emit:.2f} s, "
            f"all enrolled {total:.2f} s after the tick   [< 5 s: {verdict(ok)}]"
        )
        emit = tick(eng, datetime(DAY.year, DAY.month, DAY.day, 14, 0, 30, tzinfo=UTC))
        total = emit + wait_for(url, ids["small"], args.recurring)
        ok = count(url, ids["small"]) == args.recurring and total < 30
        lines.append(
            f"recurring   {args.recurring:,} contacts emitted in {emit:.2f} s, all enrolled "
            f"{total:.2f} s after the tick   [< 30 s: {verdict(ok)}]"
        )
        for p in eng.partitions.stats():
            lines.append(
                f"partition   {p['partition']}: {p['events']:,} events in {p['batches']:,}"
                f" batches, {p['enrolled']:,} enrolled, {p['errors']} errors"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--recurring", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="50,000 contacts, 10,000 recurring")
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.recurring = 50_000, 10_000
    with scratch(REDIS_DB) as settings:
        lines = run(settings, args)
    head = (
        f"machine     {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; {args.partitions} partitions; day {DAY} in {TZ}"
    )
    print("\n".join(["", "bench_schedule", head, *lines]))


if __name__ == "__main__":
    main()
