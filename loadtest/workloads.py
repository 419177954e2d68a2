"""The heavy workloads of bench_e2e (docs/operations.md §13): a few large accounts whose events
enroll often. Account ids come from a seeded generator, so every run splits the accounts over
the shards (and partitions) the same way.

- heavy: 4 accounts x 1,000 `multiple` triggers (tag, form and contact-source triggers); about
  1.5 enrollments per event.
- spread: 1 account x 3,000 such triggers, spread over every shard.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.examples import all_of, cond
from pipelines.triggers import validate_trigger
from store import accounts, db
from store import workflows as store

MULTIPLE = {"enrollment_limit": "multiple"}


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    accounts: int
    triggers: int  # per account
    spread: bool

    @property
    def values(self) -> int:
        """Distinct tags, forms and sources: two triggers per tag and form, one per source."""
        return self.triggers // 5


WORKLOADS = {
    "heavy": Workload("heavy", 4, 1000, False),
    "spread": Workload("spread", 1, 3000, True),
}


def account_ids(count: int, seed: int = 19) -> list[uuid.UUID]:
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]


def _configs(w: Workload) -> list[tuple[str, str, dict[str, Any]]]:
    """(trigger type, event, filters) of every trigger of one account."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(w.values):
        for _ in range(2):
            out.append(("contact", "tag_added", all_of(cond("tag", "equals", f"tag-{i}"))))
            out.append(("form", "form_submitted", all_of(cond("form_id", "equals", f"form-{i}"))))
        source = all_of(cond("contact.source", "equals", f"src-{i}"))
        out.append(("contact", "contact_created", source))
    return out


async def seed(url: str, w: Workload, ids: list[uuid.UUID]) -> None:
    """The accounts and their active workflows, one transaction per account."""
    conn = await db.connect(url)
    try:
        for account_id in ids:
            async with conn.transaction():
                await accounts.create_account(conn, f"Bench {w.name}", "UTC", account_id)
                for n, (kind, event, filters) in enumerate(_configs(w)):
                    wf = await store.insert_workflow(conn, account_id, f"{event} {n}", "", [])
                    await store.update_workflow(conn, wf["id"], {"status": "active"})
                    config = validate_trigger(kind, event, filters, MULTIPLE)
                    await store.insert_trigger(conn, account_id, wf["id"], config, True)
    finally:
        await conn.close()


def floor_triggers(w: Workload) -> list[tuple[str, str, str]]:
    """The same triggers as the floor's lookup sees them: (what, value, trigger id)."""
    out = []
    for i in range(w.values):
        for copy in range(2):
            out.append(("tag", f"tag-{i}", f"tag-{i}/{copy}"))
            out.append(("form", f"form-{i}", f"form-{i}/{copy}"))
        out.append(("source", f"src-{i}", f"src-{i}"))
    return out


def events(w: Workload, account_id: uuid.UUID, n: int, seed: int) -> list[dict[str, Any]]:
    """30% tag events (2 enrollments each), 30% form events (2), 40% new contacts of which 4
    in 5 come from a known source (1): 1.52 enrollments per event."""
    rng = random.Random(seed)
    pool = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(20_000)]
    now = datetime.now(UTC).isoformat()
    out = []
    for _ in range(n):
        roll, value = rng.random(), rng.randrange(w.values)
        data: dict[str, Any]
        if roll < 0.3:
            kind = "contact.tag_added"
            data = {"contact_id": rng.choice(pool), "tag": f"tag-{value}"}
        elif roll < 0.6:
            kind = "form.submitted"
            data = {"contact_id": rng.choice(pool), "form_id": f"form-{value}", "form_data": {}}
        else:
            source = f"src-{value}" if rng.random() < 0.8 else "elsewhere"
            contact = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            data = {"contact_id": contact, "current_state": {"source": source}}
            kind = "contact.created"
        out.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "event_type": kind,
                "account_id": str(account_id),
                "timestamp": now,
                "data": data,
            }
        )
    return out


def expected_enrollments(batch: list[dict[str, Any]]) -> int:
    """What the engine must commit for `batch`: the floor's answer too."""
    total = 0
    for e in batch:
        if e["event_type"] == "contact.created":
            total += e["data"]["current_state"]["source"] != "elsewhere"
        else:
            total += 2
    return total
