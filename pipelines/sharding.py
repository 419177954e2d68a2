"""Which shard an account's events go to (SPEC §3)."""

from __future__ import annotations

import zlib
from uuid import UUID


def shard_for(account_id: UUID | str, shards: int) -> int:
    return zlib.crc32(str(account_id).lower().encode()) % shards


def partition_for(shard: int, partitions: int) -> int:
    """Partition p owns the shards s with s % partitions == p."""
    return shard % partitions


def shards_of(partition: int, shards: int, partitions: int) -> list[int]:
    return [s for s in range(shards) if s % partitions == partition]
