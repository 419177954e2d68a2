"""Which shard an event goes to (docs/contract.md §3)."""

from __future__ import annotations

import zlib
from uuid import UUID


def _h(value: UUID | str) -> int:
    return zlib.crc32(str(value).lower().encode())


def shard_for(
    account_id: UUID | str, shards: int, contact_id: UUID | str | None = None, spread: int = 1
) -> int:
    """The account's home shard; an account spread over `spread` shards sends each contact's
    events to one of the `spread` consecutive shards from home (so they stay in order)."""
    if spread <= 1 or contact_id is None:
        return _h(account_id) % shards
    return (_h(account_id) + _h(contact_id) % spread) % shards


def account_shards(account_id: UUID | str, shards: int, spread: int = 1) -> list[int]:
    """Every shard an account spread over `spread` shards can route to, home first."""
    home = _h(account_id) % shards
    return [(home + k) % shards for k in range(max(1, min(spread, shards)))]


def partition_for(shard: int, partitions: int) -> int:
    """Partition p owns the shards s with s % partitions == p."""
    return shard % partitions


def shards_of(partition: int, shards: int, partitions: int) -> list[int]:
    return [s for s in range(shards) if s % partitions == partition]
