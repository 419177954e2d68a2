"""The stream side of a partition, as the batch step sees it (docs/architecture.md): Redis
implements it (`streams.shards.RedisShards`), and so does memory (`streams.memory`), so a whole
batch can be tested without Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol
from uuid import UUID

from pipelines.messages import Rejected
from pipelines.reasons import DeadLetter
from pipelines.spread import SpreadView
from streams import names
from streams.lag import ShardLag

Entry = tuple[str, str, dict[bytes, bytes] | None]  # (stream, entry id, fields; None: trimmed)
TRIMMED_REASON = "entry trimmed from the stream before it was processed"


def trimmed(stream: str, entry_id: str) -> Rejected:
    """An entry pending or claimed whose data the stream no longer has."""
    return Rejected(stream, entry_id, b"", DeadLetter.TRIMMED, TRIMMED_REASON)


def sift_pending(
    entries: list[Entry], over: set[tuple[str, str]], max_deliveries: int
) -> tuple[list[Entry], list[Rejected]]:
    """Pending entries to retry, and those to dead-letter instead: delivered more than
    `max_deliveries` times (`over`), or trimmed away meanwhile (no fields)."""
    reason = f"delivered more than {max_deliveries} times without success"
    field = names.EVENT_FIELD.encode()
    rejected = [
        Rejected(s, i, (f or {}).get(field, b""), DeadLetter.TOO_MANY_DELIVERIES, reason)
        for s, i, f in entries
        if (s, i) in over
    ]
    kept = [e for e in entries if (e[0], e[1]) not in over]
    rejected += [trimmed(s, i) for s, i, f in kept if f is None]
    return [e for e in kept if e[2] is not None], rejected


class Shards(Protocol):
    """A consumer's view of its shard streams through the consumer group."""

    streams: list[str]
    dead_lettered: int
    on_dead_letter: Callable[[list[Rejected]], None] | None

    async def ensure_groups(self) -> None:
        """Consumer groups start at the beginning: events written before the first start."""

    async def read_new(
        self, count: int, block_ms: int, streams: list[str] | None = None
    ) -> list[Entry]:
        """Entries never delivered to the group, up to `count` per stream (of `streams` only,
        when given)."""

    async def read_pending(
        self, count: int, streams: list[str] | None = None, after: Mapping[str, str] | None = None
    ) -> tuple[list[Entry], dict[str, str]]:
        """Own entries delivered before and never acknowledged (those after `after`'s id of
        their stream), minus those delivered too often or trimmed meanwhile (dead-lettered
        instead); and the last id read of each stream (empty: nothing was pending)."""

    async def ack(self, ids: Iterable[tuple[str, str]]) -> None: ...

    async def dead_letter(self, rejected: list[Rejected]) -> None:
        """To the dead-letter stream with code and reason, then acknowledged."""

    async def publish(self, payloads: list[bytes]) -> None:
        """Encoded enrollment entries to the enrollments stream."""

    async def reroute(self, moves: list[tuple[Entry, str]]) -> None:
        """Each entry to the stream named beside it (marked as rerouted), acknowledged here in
        the same step, so that it is neither lost nor doubled."""

    async def touch(self, ids: Iterable[tuple[str, str]]) -> None:
        """Mark own pending entries as just delivered, without counting a delivery: entries
        held back on purpose are then never taken for abandoned."""

    async def claim_abandoned(self, idle_ms: int) -> bool:
        """Take over entries idle on consumers that are gone; True if any were claimed."""

    async def trim(self, now_ms: int) -> list[Rejected]:
        """Retention; returns the entries lost before delivery, to be dead-lettered."""

    async def spread_view(self, shards: int) -> SpreadView:
        """Every account's spread factor, last move and pin (docs/contract.md §3)."""

    async def drained_through(self, shard: int, cutoff_ms: int) -> bool:
        """Has the group acknowledged every entry of `shard` added up to `cutoff_ms`, and is
        that time past?"""

    async def set_spread(self, account_id: UUID, spread: int, shards: int) -> bool:
        """Auto-spread's change of an account's factor; False if refused (pinned, settling)."""

    async def lag(self) -> list[ShardLag]: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
