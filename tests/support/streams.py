"""Helpers for end-to-end tests through the streams."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import redis

from hairtrigger import names
from pipelines.sharding import shard_for
from tests.conftest import Db

WAIT_SECONDS = 60.0


def event(
    account_id: uuid.UUID,
    event_type: str,
    contact_id: uuid.UUID | None = None,
    *,
    depth: int = 0,
    event_id: uuid.UUID | None = None,
    **data: Any,
) -> dict[str, Any]:
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "account_id": str(account_id),
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"contact_id": str(contact_id or uuid.uuid4()), **data},
        "metadata": {"source": "test", "depth": depth},
    }


class Streams:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.shards = int(self.client.hget(names.META_KEY, names.META_SHARDS_FIELD))  # type: ignore[arg-type]

    def close(self) -> None:
        self.client.close()

    def stream_of(self, account_id: uuid.UUID | str) -> str:
        return names.events_stream(shard_for(account_id, self.shards))

    def send(self, events: Iterable[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for e in events:
            pipe.xadd(self.stream_of(e["account_id"]), {names.EVENT_FIELD: orjson.dumps(e)})
        pipe.execute()

    def send_raw(self, account_id: uuid.UUID, fields: dict[str, Any]) -> str:
        entry_id = self.client.xadd(self.stream_of(account_id), fields)
        return entry_id.decode()  # type: ignore[union-attr]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [
            {k.decode(): v for k, v in fields.items()}
            for _, fields in self.client.xrange(names.DLQ_STREAM)
        ]

    def enrollments(self, account_id: uuid.UUID) -> list[dict[str, Any]]:
        found = []
        for _, fields in self.client.xrange(names.ENROLLMENTS_STREAM):
            body = orjson.loads(fields[names.ENROLLMENT_FIELD.encode()])
            if body["account_id"] == str(account_id):
                found.append(body)
        return found

    def drained(self) -> bool:
        """Every entry of every shard delivered and acknowledged."""
        for shard in range(self.shards):
            stream = names.events_stream(shard)
            if not self.client.exists(stream):
                continue
            last = self.client.xinfo_stream(stream)["last-generated-id"]
            for group in self.client.xinfo_groups(stream):
                if group["pending"] or group["last-delivered-id"] != last:
                    return False
        return True

    def wait_drained(self) -> None:
        wait_until(self.drained, "the shards to drain")


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def enrollments(db: Db, account_id: uuid.UUID) -> list[dict[str, Any]]:
    return db.fetch(
        "SELECT * FROM workflow_enrollments WHERE account_id = $1 ORDER BY enrolled_at",
        account_id,
    )


def logs(db: Db, account_id: uuid.UUID) -> list[dict[str, Any]]:
    return db.fetch(
        "SELECT * FROM trigger_execution_logs WHERE account_id = $1 ORDER BY id", account_id
    )


def active_workflow(
    client: httpx.Client,
    trigger_type: str,
    trigger_event: str,
    filters: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    status: str = "active",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A workflow with this trigger, moved to `status` (active unless told)."""
    workflow = client.post("/workflows", json={"name": f"on {trigger_event}"}).json()
    trigger = client.post(
        f"/workflows/{workflow['id']}/trigger",
        json={"trigger_type": trigger_type, "trigger_event": trigger_event,
              "filters": filters, "settings": settings or {}},
    )  # fmt: skip
    assert trigger.status_code == 201, trigger.text
    if status != "draft":
        moved = client.patch(f"/workflows/{workflow['id']}", json={"status": "active"})
        assert moved.status_code == 200, moved.text
    if status == "paused":
        moved = client.patch(f"/workflows/{workflow['id']}", json={"status": "paused"})
        assert moved.status_code == 200, moved.text
    return workflow, trigger.json()


def tenants_on_shards(
    make: Callable[..., Any], streams: Streams, want: Callable[[int, int], bool], tries: int = 40
) -> tuple[Any, Any]:
    """Two new tenants whose shards (a, b) satisfy `want(a, b)`."""
    first = make()
    shard = streams.shards
    a = shard_for(first.account_id, shard)
    for _ in range(tries):
        second = make()
        if want(a, shard_for(second.account_id, shard)):
            return first, second
    raise AssertionError("no pair of accounts on the wanted shards")
