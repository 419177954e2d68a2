"""Matching benchmark (docs/operations.md §13): decode + match on one core, no I/O.

    python -m loadtest.bench_match [--accounts 100] [--triggers 10000] [--events 200000]
    python -m loadtest.bench_match --quick

Builds a TriggerIndex of ACCOUNTS x TRIGGERS live triggers spread over the 26 catalog events:
90% pinned to one of VALUES identifying values by an `equals` on the event's identifying field
(events without one: `contact.tags contains list-N`) plus 1-2 realistic extra conditions, 10%
contact conditions only (`contact.tags contains seg-N` plus one more). Realistic docs/contract.md §3
envelopes are encoded to JSON bytes, then timed: batch decode (pipelines.messages) -> contact
from the event or a projection dict -> candidates -> predicates. The same events run against a
second index with --small-triggers per account to show the cost is flat in the trigger count.
`--unkeyed-share` turns that share of triggers into contact conditions the index cannot key, to
show what unindexable filters cost.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import resource
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from pipelines.catalog import TRIGGER_EVENTS, TriggerEvent
from pipelines.compiler import EventView
from pipelines.examples import REALISTIC, all_of, any_of, cond
from pipelines.index import TriggerIndex, spec_from_config
from pipelines.messages import decode_batch
from pipelines.triggers import validate_trigger

TARGET_EVENTS_PER_S = 100_000
TARGET_RATIO = 2.0
BATCH = 500
CONTACTS_PER_ACCOUNT = 1_000
STATUSES = ("lead", "trial", "customer", "churned", "partner")

# Realistic extra conditions per event: the non-identifying leaves of the catalog examples, plus
# contact conditions any trigger may add.
_CONTACT_EXTRAS = (
    cond("contact.email", "is_not_empty"),
    cond("contact.status", "in", ["lead", "trial", "customer"]),
    cond("contact.custom_fields.score", "greater_than_or_equal", 20),
    any_of(cond("contact.status", "equals", "customer"), cond("contact.tags", "contains", "vip")),
)


def _extras(event: TriggerEvent) -> list[dict[str, Any]]:
    own = [
        c
        for c in REALISTIC[event.name][1]["conditions"]
        if c.get("field") not in event.identifying
        and c.get("field") is not None
        and c.get("operator") != "changed_to"
    ]
    return own + list(_CONTACT_EXTRAS)


def _pin(event: TriggerEvent, k: int) -> dict[str, Any]:
    if event.identifying:
        field = event.identifying[-1]
        return cond(field, "equals", f"{field}-{k}")
    return cond("contact.tags", "contains", f"list-{k}")


def trigger_filters(rng: random.Random, event: TriggerEvent, values: int, unkeyed: float) -> Any:
    roll = rng.random()
    if roll < unkeyed:
        return all_of(cond("contact.custom_fields.score", "greater_than", rng.randint(0, 10_000)))
    extras = rng.sample(_extras(event), rng.randint(1, 2))
    if roll < 0.9:
        return all_of(_pin(event, rng.randrange(values)), *extras)
    return all_of(cond("contact.tags", "contains", f"seg-{rng.randrange(values)}"), extras[-1])


def build_index(
    accounts: list[uuid.UUID], per_account: int, values: int, unkeyed: float, seed: int
) -> tuple[TriggerIndex, dict[str, float]]:
    """Validate every configuration (as a rebuild from Postgres would), then apply them all."""
    rng = random.Random(seed)
    gc.disable()  # a rebuild only adds long-lived objects; see TriggerIndex.apply_many
    t0 = time.perf_counter()
    specs = []
    for account_id in accounts:
        for j in range(per_account):
            event = TRIGGER_EVENTS[j % len(TRIGGER_EVENTS)]
            filters = trigger_filters(rng, event, values, unkeyed)
            config = validate_trigger(event.category, event.name, filters, REALISTIC[event.name][2])
            specs.append(
                spec_from_config(
                    config, trigger_id=uuid.uuid4(), workflow_id=uuid.uuid4(), account_id=account_id
                )
            )
    t1 = time.perf_counter()
    index = TriggerIndex()
    index.apply_many(specs)
    t2 = time.perf_counter()
    gc.enable()
    return index, {"parse_s": t1 - t0, "compile_index_s": t2 - t1}


def _contact(rng: random.Random, values: int) -> dict[str, Any]:
    tags = [f"list-{rng.randrange(values)}", f"seg-{rng.randrange(values)}"]
    tags += rng.sample(["vip", "newsletter", "hot-lead", "webinar"], rng.randint(0, 2))
    return {
        "email": f"c{rng.randrange(10**6)}@example.com" if rng.random() < 0.9 else "",
        "status": rng.choice(STATUSES),
        "tags": tags,
        "source": rng.choice(["website", "import", "api"]),
        "custom_fields": {"score": rng.randint(0, 100), "region": rng.choice(["eu", "us"])},
    }


def _event_data(rng: random.Random, event: TriggerEvent, values: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in event.fields:
        if field in ("previous_state", "current_state", "changed_fields"):
            continue
        if field in event.identifying:
            data[field] = f"{field}-{rng.randrange(values)}"
        elif field in ("form_data", "survey_data"):
            data[field] = {"budget": str(rng.randint(0, 30_000)), "score": rng.randint(0, 10)}
        elif field in ("deal_value", "amount", "duration_seconds", "previous_value"):
            data[field] = rng.choice([rng.randint(0, 20_000), f"{rng.uniform(0, 500):.2f}"])
        else:
            data[field] = rng.choice(["demo", "usd", "year", "answered", "https://x.io/pricing"])
    return data


def make_events(
    accounts: list[uuid.UUID], count: int, values: int, seed: int
) -> tuple[list[bytes], dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]]]:
    """JSON envelopes (docs/contract.md §3) and the contacts projection the non-contact events
    read."""
    rng = random.Random(seed)
    contacts = {a: [uuid.uuid4() for _ in range(CONTACTS_PER_ACCOUNT)] for a in accounts}
    projection = {(a, c): _contact(rng, values) for a in accounts for c in contacts[a]}
    now = datetime.now(UTC).isoformat()
    encoder = msgspec.json.Encoder()
    out: list[bytes] = []
    for _ in range(count):
        account_id = rng.choice(accounts)
        contact_id = rng.choice(contacts[account_id])
        event = rng.choice(TRIGGER_EVENTS)
        data = {"contact_id": str(contact_id), **_event_data(rng, event, values)}
        if event.category == "contact":
            current = projection[(account_id, contact_id)]
            data["current_state"] = current
            if event.name == "contact_updated":
                data["previous_state"] = {**current, "status": rng.choice(STATUSES)}
                data["changed_fields"] = ["status"]
        envelope = {
            "event_id": str(uuid.uuid4()),
            "event_type": event.event_type,
            "account_id": str(account_id),
            "timestamp": now,
            "data": data,
            "metadata": {"source": "api", "depth": 0},
        }
        out.append(encoder.encode(envelope))
    return out, projection


def _batches(raw: list[bytes]) -> Iterator[list[tuple[str, str, bytes | None]]]:
    """Stream entries as XREADGROUP returns them: (stream, entry id, the `event` field)."""
    for start in range(0, len(raw), BATCH):
        chunk = raw[start : start + BATCH]
        yield [("hairtrigger:events:0", f"{start + i}-0", r) for i, r in enumerate(chunk)]


def run(
    index: TriggerIndex,
    raw: list[bytes],
    projection: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]],
) -> dict[str, float]:
    """Decode + match every event; seconds spent in each, and the work done."""
    decode_s = match_s = 0.0
    candidates = matches = 0
    empty: dict[str, Any] = {}
    for batch in _batches(raw):
        t0 = time.perf_counter()
        events, rejected = decode_batch(batch)
        t1 = time.perf_counter()
        assert not rejected, rejected[0].reason
        for event in events:
            env = event.envelope
            data = env.data
            current = data.get("current_state")
            if not isinstance(current, dict):
                current = projection.get((env.account_id, event.contact_id), empty)
            previous = data.get("previous_state")
            view = EventView(data, current, previous if isinstance(previous, dict) else empty)
            found = index.candidates(env.account_id, env.event_type, data, current)
            candidates += len(found)
            for compiled in found:
                if compiled.check(view):
                    matches += 1
        t2 = time.perf_counter()
        decode_s += t1 - t0
        match_s += t2 - t1
    n = len(raw)
    return {
        "events": n,
        "decode_s": decode_s,
        "match_s": match_s,
        "events_per_s": n / (decode_s + match_s),
        "us_per_event": (decode_s + match_s) / n * 1e6,
        "match_us_per_event": match_s / n * 1e6,
        "candidates_per_event": candidates / n,
        "matches_per_event": matches / n,
    }


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _report(label: str, result: dict[str, float]) -> None:
    decode_us = result["decode_s"] / result["events"] * 1e6
    print(
        f"  {label}: {result['events_per_s']:>9,.0f} events/s | {result['us_per_event']:5.2f} "
        f"us/event (decode {decode_us:.2f}, match {result['match_us_per_event']:.2f}) | "
        f"candidates/event {result['candidates_per_event']:.2f}, "
        f"matches/event {result['matches_per_event']:.2f}"
    )


def _build(
    label: str, accounts: list[uuid.UUID], per: int, args: argparse.Namespace
) -> TriggerIndex:
    gc.collect()
    start = time.perf_counter()
    index, times = build_index(accounts, per, args.values, args.unkeyed_share, args.seed)
    gc.freeze()  # a long-lived index: keep it out of later collections, as an actor would
    total = time.perf_counter() - start
    count = index.trigger_count()
    print(
        f"build {label}: {count:,} triggers in {total:.1f} s (validate {times['parse_s']:.1f} s, "
        f"compile+index {times['compile_index_s']:.1f} s = "
        f"{count / times['compile_index_s']:,.0f} triggers/s) | max RSS {_rss_mb():,.0f} MB"
    )
    return index


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--triggers", type=int, default=10_000, help="live triggers per account")
    parser.add_argument("--small-triggers", type=int, default=100, help="baseline per account")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--values", type=int, default=1_000, help="values per identifying field")
    parser.add_argument("--unkeyed-share", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=3, help="best of N timed passes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="10 accounts x 2,000, 30,000 events")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.triggers, args.events = 10, 2_000, 30_000
    return args


def main() -> None:
    args = _arguments()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, msgspec {msgspec.__version__}; one process, one core"
    )
    print(
        f"setup: {args.accounts} accounts x {args.triggers:,} triggers (baseline "
        f"{args.small_triggers}), {args.values:,} values per identifying field, unkeyed share "
        f"{args.unkeyed_share:.0%}, {args.events:,} events in batches of {BATCH}"
    )
    seeds = random.Random(args.seed)
    accounts = [uuid.UUID(int=seeds.getrandbits(128)) for _ in range(args.accounts)]
    raw, projection = make_events(accounts, args.events, args.values, args.seed)
    print(f"events: {len(raw):,}, {sum(map(len, raw)) / len(raw):.0f} bytes of JSON on average")
    indexes = {
        "baseline": _build("baseline", accounts, args.small_triggers, args),
        "full": _build("full", accounts, args.triggers, args),
    }
    results: dict[str, dict[str, float]] = {}
    for label, index in indexes.items():
        runs = [run(index, raw, projection) for _ in range(args.rounds)]
        results[label] = min(runs, key=lambda r: r["us_per_event"])
        per_account = index.trigger_count() // args.accounts
        _report(f"{label:>8} ({per_account:,}/account)", results[label])
    full, base = results["full"], results["baseline"]
    ratio = full["us_per_event"] / base["us_per_event"]
    match_ratio = full["match_us_per_event"] / base["match_us_per_event"]
    rate_ok = full["events_per_s"] >= TARGET_EVENTS_PER_S
    print(
        f"throughput at {args.triggers:,} triggers/account: {full['events_per_s']:,.0f} events/s "
        f"(target >= {TARGET_EVENTS_PER_S:,}): {_verdict(rate_ok)}"
    )
    print(
        f"per-event cost, {args.triggers:,} vs {args.small_triggers} triggers/account: "
        f"{ratio:.2f}x (match alone {match_ratio:.2f}x; target <= {TARGET_RATIO}x): "
        f"{_verdict(ratio <= TARGET_RATIO)}"
    )


if __name__ == "__main__":
    main()
