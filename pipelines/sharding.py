"""Which shard an account's events go to (SPEC §3)."""

from __future__ import annotations

import zlib
from uuid import UUID


def shard_for(account_id: UUID | str, shards: int) -> int:
    return zlib.crc32(str(account_id).lower().encode()) % shards
