"""How far the consumer group is behind on each shard stream: length, pending, undelivered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from streams import names


@dataclass(frozen=True, slots=True)
class ShardLag:
    shard: int
    length: int  # entries in the stream (retained, processed or not)
    pending: int  # delivered to a consumer, not yet acknowledged
    lag: int | None  # not yet delivered; None when Redis cannot tell (entries deleted midway)


async def shard_lag(redis: Redis, shards: list[int]) -> list[ShardLag]:
    """XLEN and XINFO GROUPS of every shard, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in shards:
            pipe.xlen(names.events_stream(shard))
            pipe.xinfo_groups(names.events_stream(shard))
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    out = []
    for i, shard in enumerate(shards):
        length, groups = replies[2 * i], replies[2 * i + 1]
        if isinstance(length, Exception):
            raise length
        group = _group(groups)
        if group is None:  # no stream or no group yet: nothing delivered
            out.append(ShardLag(shard, int(length), 0, int(length)))
            continue
        lag = group.get("lag")
        out.append(
            ShardLag(shard, int(length), int(group["pending"]), None if lag is None else int(lag))
        )
    return out


async def dead_letter_count(redis: Redis) -> int:
    return int(await redis.xlen(names.DLQ_STREAM))


def _group(groups: Any) -> dict[Any, Any] | None:
    if isinstance(groups, Exception):
        if "no such key" in str(groups).lower():
            return None
        raise groups
    for g in groups:
        name = g["name"]
        if (name.decode() if isinstance(name, bytes) else name) == names.CONSUMER_GROUP:
            return dict(g)
    return None
