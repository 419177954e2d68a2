"""The one-process floor of bench_e2e: the least any consumer of these shards has to do per
batch (XREADGROUP, a dict lookup per event, COPY of the enrollment rows, XACK), measured on the
same servers and the same entries in the same run, with a consumer group and a table of its own.
The engine's figure is read against it: what Hairtrigger adds on top of the servers' own cost."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from store import db
from streams import names
from streams.clients import async_client

GROUP = "floor"
Key = tuple[str, str, str]  # (account id, what, value)
KeyOf = Callable[[dict[str, Any]], Key]


@dataclass(frozen=True, slots=True)
class Floor:
    events: int
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def lookup_of(configs: dict[str, list[tuple[str, str, str]]]) -> dict[Key, list[str]]:
    """{(account, what, value): trigger ids} from each account's (what, value, trigger id)."""
    table: dict[Key, list[str]] = defaultdict(list)
    for account, triggers in configs.items():
        for what, value, trigger_id in triggers:
            table[(account, what, value)].append(trigger_id)
    return dict(table)


def by_value(body: dict[str, Any]) -> Key:
    """The heavy workloads' key: the tag, the form or the new contact's source."""
    data, account = body["data"], body["account_id"]
    kind = body["event_type"]
    if kind == "contact.tag_added":
        return account, "tag", data.get("tag", "")
    if kind == "form.submitted":
        return account, "form", data.get("form_id", "")
    return account, "source", (data.get("current_state") or {}).get("source", "")


def by_type(body: dict[str, Any]) -> Key:
    """The standard workload's key: one trigger per event type (more rows than the engine
    writes, whose filters refuse most events: a floor that errs on the costly side)."""
    return body["account_id"], "type", body["event_type"]


async def run(
    redis_url: str,
    database_url: str,
    shards: int,
    total: int,
    table: dict[Key, list[str]],
    key: KeyOf,
) -> Floor:
    client = async_client(redis_url)
    conn = await db.connect(database_url)
    streams = [names.events_stream(s) for s in range(shards)]
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_enrollments"
            " (account_id uuid, trigger_id text, contact_id uuid, event_id uuid)"
        )
        for name in streams:
            await client.xgroup_create(name, GROUP, id="0", mkstream=True)
        done = rows = 0
        field = names.EVENT_FIELD.encode()
        started = time.perf_counter()
        while done < total:
            reply: Any = await client.xreadgroup(
                GROUP, "floor", dict.fromkeys(streams, ">"), count=1000, block=100
            )
            records: list[tuple[uuid.UUID, str, uuid.UUID, uuid.UUID]] = []
            acks: dict[Any, list[Any]] = defaultdict(list)
            for name, entries in reply or []:
                for entry_id, fields in entries:
                    body = orjson.loads(fields[field])
                    for trigger_id in table.get(key(body), ()):
                        records.append(
                            (
                                uuid.UUID(body["account_id"]),
                                trigger_id,
                                uuid.UUID(body["data"]["contact_id"]),
                                uuid.UUID(body["event_id"]),
                            )
                        )
                    acks[name].append(entry_id)
                    done += 1
            if records:
                await conn.copy_records_to_table("floor_enrollments", records=records)
                rows += len(records)
            async with client.pipeline(transaction=False) as pipe:
                for name, ids in acks.items():
                    pipe.xack(name, GROUP, *ids)
                await pipe.execute()
        return Floor(done, rows, time.perf_counter() - started)
    finally:
        for name in streams:
            await client.xgroup_destroy(name, GROUP)
        await client.aclose()
        await conn.close()
