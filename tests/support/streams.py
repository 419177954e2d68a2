"""Redis Streams as a test sees them: send events to their shard, read the dead letters and the
published enrollments, wait for the shards to drain."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson
import redis

from pipelines.sharding import shard_for
from streams import names
from streams.events import Router
from tests.support.wait import wait_until


class Streams:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.shards = int(self.client.hget(names.META_KEY, names.META_SHARDS_FIELD))  # type: ignore[arg-type]
        self.router = Router(self.shards, ttl_s=0)  # tests change spread factors at will

    def close(self) -> None:
        self.client.close()

    def stream_of(self, account_id: uuid.UUID | str) -> str:
        return names.events_stream(shard_for(account_id, self.shards))

    def send(self, events: Iterable[dict[str, Any]]) -> None:
        """XADD as every producer does: by the account's spread as it is now."""
        events = list(events)
        keys = [(e["account_id"], e["data"]["contact_id"]) for e in events]
        streams = self.router.streams_sync(self.client, keys)
        pipe = self.client.pipeline(transaction=False)
        for e, stream in zip(events, streams, strict=True):
            pipe.xadd(stream, {names.EVENT_FIELD: orjson.dumps(e)})
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

    def wait_drained(self, timeout: float | None = None) -> None:
        if timeout is None:
            wait_until(self.drained, "the shards to drain")
        else:
            wait_until(self.drained, "the shards to drain", timeout=timeout)


def stream_events(client: redis.Redis, account_id: uuid.UUID) -> list[dict[str, Any]]:
    """The account's entries on its shard stream, decoded, in order."""
    shards = int(client.hget(names.META_KEY, names.META_SHARDS_FIELD))  # type: ignore[arg-type]
    stream = names.events_stream(shard_for(account_id, shards))
    entries = client.xrange(stream)
    decoded = [orjson.loads(fields[names.EVENT_FIELD.encode()]) for _, fields in entries]
    return [e for e in decoded if e["account_id"] == str(account_id)]
