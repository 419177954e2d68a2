"""The Redis side of a partition (`streams.base.Shards`): reading its shards through the consumer
group, dead letters, acknowledgements, claiming abandoned entries, publishing enrollments,
retention and lag."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pipelines.messages import Rejected, encode_dead_letter
from pipelines.spread import SpreadView
from streams import names, spread
from streams.base import Entry, sift_pending, trimmed
from streams.events import publish_enrollments
from streams.lag import ShardLag, shard_lag
from streams.retention import StreamRetention

log = logging.getLogger(__name__)

GROUP = names.CONSUMER_GROUP


class RedisShards:
    def __init__(
        self,
        redis: Redis,
        consumer: str,
        shards: list[int],
        max_deliveries: int,
        retention_s: float = 0.0,
        max_len: int = 0,
    ) -> None:
        self.redis, self.consumer, self.shards = redis, consumer, shards
        self.streams = [names.events_stream(s) for s in shards]
        self.max_deliveries = max_deliveries
        self.dead_lettered = 0
        self.on_dead_letter: Callable[[list[Rejected]], None] | None = None  # metrics
        self._retention = StreamRetention(redis, self.streams, retention_s, max_len)

    async def ensure_groups(self) -> None:
        """Consumer groups start at the beginning: events written before the first start count."""
        for name in self.streams:
            try:
                await self.redis.xgroup_create(name, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read_new(
        self, count: int, block_ms: int, streams: list[str] | None = None
    ) -> list[Entry]:
        starts = dict.fromkeys(self.streams if streams is None else streams, ">")
        return await self._read_from(starts, count, block_ms)

    async def _read_from(
        self, starts: dict[str, str], count: int, block: int | None = None
    ) -> list[Entry]:
        """New entries (start ">") or this consumer's pending ones after an id ("0": all)."""
        streams: Any = starts
        reply: Any = await self.redis.xreadgroup(
            GROUP, self.consumer, streams, count=count, block=block
        )
        entries: list[Entry] = []
        for name, items in reply or []:
            stream_name = name.decode() if isinstance(name, bytes) else name
            for entry_id, fields in items:
                entries.append((stream_name, entry_id.decode(), fields or None))
        return entries

    async def read_pending(
        self, count: int, streams: list[str] | None = None, after: Mapping[str, str] | None = None
    ) -> tuple[list[Entry], dict[str, str]]:
        """Own entries delivered before and never acknowledged (after `after`'s id of each
        stream), minus those delivered too often (dead-lettered instead); and the last id
        read of each stream, empty when nothing was pending."""
        starts = {s: (after or {}).get(s, "0") for s in streams or self.streams}
        entries = await self._read_from(starts, count)
        if not entries:
            return [], {}
        last = {s: i for s, i, _ in entries}
        over = await self._over_delivered({(s, i) for s, i, _ in entries})
        entries, rejected = sift_pending(entries, over, self.max_deliveries)
        await self.dead_letter(rejected)
        return entries, last

    async def _over_delivered(self, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        over: set[tuple[str, str]] = set()
        for name in {s for s, _ in wanted}:
            pending: Any = await self.redis.xpending_range(
                name, GROUP, min="-", max="+", count=len(wanted), consumername=self.consumer
            )
            for item in pending:
                entry_id = item["message_id"]
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                delivered = int(item["times_delivered"])
                if (name, entry_id) in wanted and delivered > self.max_deliveries:
                    over.add((name, entry_id))
        return over

    async def dead_letter(self, rejected: list[Rejected]) -> None:
        """To the DLQ with the reason, then acknowledged at once (a later failure of the batch
        must not write them twice)."""
        if not rejected:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for r in rejected:
                fields: Any = encode_dead_letter(r)
                pipe.xadd(names.DLQ_STREAM, fields)
            await pipe.execute()
        await self.ack((r.stream, r.entry_id) for r in rejected)
        self.dead_lettered += len(rejected)
        if self.on_dead_letter is not None:
            self.on_dead_letter(rejected)
        # One line per call, not per entry: a tenant's flood of poison must not flood the log.
        first = rejected[0]
        codes = Counter(r.code.value for r in rejected)
        log.warning(
            "%s: dead-lettered %d entries (%s); first %s %s: %s",
            self.consumer,
            len(rejected),
            ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())),
            first.stream,
            first.entry_id,
            first.reason,
        )

    async def ack(self, ids: Iterable[tuple[str, str]]) -> None:
        by_stream = _by_stream(ids)
        if not by_stream:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, entry_ids in by_stream.items():
                pipe.xack(name, GROUP, *entry_ids)
            await pipe.execute()

    async def touch(self, ids: Iterable[tuple[str, str]]) -> None:
        by_stream = _by_stream(ids)
        if not by_stream:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, entry_ids in by_stream.items():  # JUSTID: the delivery count stays
                pipe.xclaim(name, GROUP, self.consumer, 0, entry_ids, justid=True)
            await pipe.execute()

    async def publish(self, payloads: list[bytes]) -> None:
        await publish_enrollments(self.redis, payloads)

    async def reroute(self, moves: list[tuple[Entry, str]]) -> None:
        if not moves:
            return
        mark = names.REROUTED_FIELD.encode()
        async with self.redis.pipeline(transaction=True) as pipe:  # MULTI: XADD and XACK as one
            for (stream, entry_id, fields), target in moves:
                body: Any = {**(fields or {}), mark: stream.encode()}
                pipe.xadd(target, body)
                pipe.xack(stream, GROUP, entry_id)
            await pipe.execute()

    async def claim_abandoned(self, idle_ms: int) -> bool:
        """Take over entries idle too long on consumers that are gone. Entries whose data was
        trimmed away before anyone processed them are dead-lettered. True if any were claimed."""
        claimed = False
        for name in self.streams:
            reply: Any = await self.redis.xautoclaim(
                name, GROUP, self.consumer, idle_ms, "0-0", count=100
            )
            claimed = claimed or bool(reply[1])
            gone = reply[2] if len(reply) > 2 else []
            await self.dead_letter(
                [trimmed(name, g.decode() if isinstance(g, bytes) else g) for g in gone]
            )
        return claimed

    async def trim(self, now_ms: int) -> list[Rejected]:
        return await self._retention.run(now_ms)

    async def lag(self) -> list[ShardLag]:
        return await shard_lag(self.redis, self.shards)

    async def spread_view(self, shards: int) -> SpreadView:
        return await spread.read_view(self.redis, shards)

    async def drained_through(self, shard: int, cutoff_ms: int) -> bool:
        return await spread.drained_through(self.redis, shard, cutoff_ms)

    async def set_spread(self, account_id: uuid.UUID, factor: int, shards: int) -> bool:
        try:
            change = await spread.set_spread(self.redis, account_id, factor, shards, "auto")
        except spread.SpreadSettling:
            return False
        return change.changed

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()


def _by_stream(ids: Iterable[tuple[str, str]]) -> dict[str, list[Any]]:
    """Entry ids grouped by their stream, for one command per stream."""
    grouped: dict[str, list[Any]] = {}
    for name, entry_id in ids:
        grouped.setdefault(name, []).append(entry_id)
    return grouped
