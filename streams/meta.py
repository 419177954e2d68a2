"""The deployment's shard count, published once in Redis (`hairtrigger:meta`, field `shards`)."""

from __future__ import annotations

from redis.asyncio import Redis as AsyncRedis

from streams import names
from streams.clients import sync_client


def publish_shards(redis_url: str, shards: int) -> int:
    """The published count: the one already there wins over `shards`."""
    with sync_client(redis_url) as client:
        client.hsetnx(names.META_KEY, names.META_SHARDS_FIELD, shards)
        published = client.hget(names.META_KEY, names.META_SHARDS_FIELD)
    return int(published) if published is not None else shards


async def publish_shards_async(client: AsyncRedis, shards: int) -> int:
    await client.hsetnx(names.META_KEY, names.META_SHARDS_FIELD, shards)
    published = await client.hget(names.META_KEY, names.META_SHARDS_FIELD)
    return int(published) if published is not None else shards
