"""Trigger preview benchmark (REQ-O-001): count and sample an account of 1,000,000 contacts for
indexed conditions (tags contains, status equals, source in) and unindexed ones.

    python -m loadtest.bench_preview [--contacts 1000000] [--runs 5] [--quick]

Contacts are bulk-loaded straight into the projection with COPY (the preview indexes of
migration 0004 are maintained as they load), with realistic state: status, source, tags,
numbers, dates. Each preview runs once to warm up, then --runs times; the median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import orjson

from loadtest.scratch import scratch
from pipelines.catalog import BY_NAME
from pipelines.filters import parse_filters
from store import accounts, db
from store.migrate import migrate
from store.preview import preview

REDIS_DB = 13  # unused: the scratch helper empties it anyway
TARGET_S = 1.0
STATUSES = [("lead", 50), ("customer", 20), ("prospect", 20), ("churned", 10)]
SOURCES = [("web", 40), ("import", 25), ("api", 15), ("referral", 10), ("ads", 10)]
TAGS = [
    "vip",
    "newsletter",
    "webinar",
    "trial",
    "enterprise",
    "smb",
    "partner",
    "event-2026",
    "churn-risk",
    "upsell",
    *[f"segment-{i}" for i in range(20)],
]
TAG_WEIGHTS = [5, 40, 15, 20, 8, 30, 4, 10, 6, 7, *[2] * 20]

# (name, indexed, filter) as a user configures them on a contact_updated trigger
CONDITIONS: list[tuple[str, bool, dict[str, Any]]] = [
    ("tags contains vip", True, {"field": "tags", "operator": "contains", "value": "vip"}),
    (
        "status equals customer",
        True,
        {"field": "status", "operator": "equals", "value": "customer"},
    ),
    (
        "source in [referral, ads]",
        True,
        {"field": "source", "operator": "in", "value": ["referral", "ads"]},
    ),
    (
        "status equals churned AND tags contains upsell",
        True,
        {
            "logic": "AND",
            "conditions": [
                {"field": "status", "operator": "equals", "value": "churned"},
                {"field": "tags", "operator": "contains", "value": "upsell"},
            ],
        },
    ),
    (
        "score greater_than 90000 (unindexed)",
        False,
        {"field": "score", "operator": "greater_than", "value": 90000},
    ),
    (
        "signup_date greater_than 2025-06-01 (unindexed)",
        False,
        {"field": "signup_date", "operator": "greater_than", "value": "2025-06-01"},
    ),
]


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def contact_state(rng: random.Random, contact: uuid.UUID) -> dict[str, Any]:
    tags = sorted(set(rng.choices(TAGS, weights=TAG_WEIGHTS, k=rng.randint(0, 4))))
    signup = date(2018, 1, 1) + timedelta(days=rng.randrange(365 * 8))
    birthday = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
    state: dict[str, Any] = {
        "email": f"{contact.hex[:10]}@example.com",
        "first_name": rng.choice(["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farid", "Grace"]),
        "status": _weighted(rng, STATUSES),
        "source": _weighted(rng, SOURCES),
        "tags": tags,
        "score": rng.randrange(100_000),
        "lifetime_value": round(rng.random() * 5000, 2),
        "signup_date": signup.isoformat(),
        "birthday": birthday.isoformat(),
        "custom_fields": {"plan": rng.choice(["free", "pro", "team"]), "seats": rng.randint(1, 50)},
    }
    return state


async def load(url: str, n: int) -> uuid.UUID:
    conn = await db.connect(url)
    try:
        await migrate(conn)
        account_id = await accounts.create_account(conn, "a million contacts")
    finally:
        await conn.close()
    rng = random.Random(n)
    raw = await asyncpg.connect(url)  # plain codecs: COPY takes jsonb as text
    try:
        batch = 100_000
        for start in range(0, n, batch):
            records = []
            for _ in range(min(batch, n - start)):
                contact = uuid.UUID(int=rng.getrandbits(128), version=4)
                state = contact_state(rng, contact)
                records.append(
                    (account_id, contact, orjson.dumps(state).decode(), state["tags"], False)
                )
            await raw.copy_records_to_table(
                "contacts",
                records=records,
                columns=["account_id", "contact_id", "state", "tags", "deleted"],
            )
        await raw.execute("VACUUM ANALYZE contacts")
    finally:
        await raw.close()
    return account_id


async def measure(url: str, account_id: uuid.UUID, runs: int) -> list[str]:
    event = BY_NAME["contact_updated"]
    conn = await db.connect(url)
    lines = []
    try:
        for name, indexed, raw in CONDITIONS:
            filters = raw if "logic" in raw else {"logic": "AND", "conditions": [raw]}
            group = parse_filters(filters, event)
            count, samples, _ = await preview(conn, account_id, group, event)  # warm-up
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                count, samples, _ = await preview(conn, account_id, group, event)
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            target = f"[< {TARGET_S:.0f} s: {'PASS' if median < TARGET_S else 'FAIL'}]"
            lines.append(
                f"{name:<48} {count:>9,} contacts  median {median * 1000:7.0f} ms"
                f" (min {min(times) * 1000:.0f})  {target if indexed else ''}".rstrip()
            )
            assert len(samples) == min(10, count)
    finally:
        await conn.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100,000 contacts, 3 runs")
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.runs = 100_000, 3
    with scratch(REDIS_DB) as settings:
        url = settings.database_url
        assert url is not None
        started = time.monotonic()
        account_id = asyncio.run(load(url, args.contacts))
        loaded = time.monotonic() - started
        lines = asyncio.run(measure(url, account_id, args.runs))
    head = (
        f"machine     {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; {args.contacts:,} contacts in one account"
    )
    load_line = f"load        {args.contacts:,} contacts in {loaded:.1f} s (COPY, indexes on)"
    print("\n".join(["", "bench_preview", head, load_line, *lines]))


if __name__ == "__main__":
    main()
