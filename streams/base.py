"""The stream side of a partition, as the batch step sees it (docs/architecture.md): Redis
implements it (`streams.shards.RedisShards`), and so does memory (`streams.memory`), so a whole
batch can be tested without Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from pipelines.messages import Rejected
from streams.lag import ShardLag

Entry = tuple[str, str, dict[bytes, bytes] | None]  # (stream, entry id, fields; None: trimmed)


class Shards(Protocol):
    """A consumer's view of its shard streams through the consumer group."""

    streams: list[str]
    dead_lettered: int
    on_dead_letter: Callable[[list[Rejected]], None] | None

    async def ensure_groups(self) -> None:
        """Consumer groups start at the beginning: events written before the first start."""

    async def read_new(self, count: int, block_ms: int) -> list[Entry]:
        """Entries never delivered to the group, up to `count` per stream."""

    async def read_pending(
        self, count: int, streams: list[str] | None = None
    ) -> tuple[list[Entry], bool]:
        """Own entries delivered before and never acknowledged, minus those delivered too
        often or trimmed meanwhile (dead-lettered instead); the flag: was anything pending."""

    async def ack(self, ids: Iterable[tuple[str, str]]) -> None: ...

    async def dead_letter(self, rejected: list[Rejected]) -> None:
        """To the dead-letter stream with code and reason, then acknowledged."""

    async def publish(self, payloads: list[bytes]) -> None:
        """Encoded enrollment entries to the enrollments stream."""

    async def claim_abandoned(self, idle_ms: int) -> bool:
        """Take over entries idle on consumers that are gone; True if any were claimed."""

    async def trim(self, now_ms: int) -> list[Rejected]:
        """Retention; returns the entries lost before delivery, to be dead-lettered."""

    async def lag(self) -> list[ShardLag]: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
