"""Spread factors and their changes (docs/contract.md §3, docs/operations.md §12).

A change of an account's spread moves some of its contacts to another shard. Producers learn of
the change within their cache time, so for a while a moved contact's events can arrive on
either shard. To keep each contact's events in order, the new shard's consumer holds a moved
contact's events until the old shard has processed everything written up to the change's
*cutoff* (the change plus SETTLE_MS, longer than any producer keeps an old factor)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from pipelines.sharding import shard_for

SETTLE_MS = 15_000  # > the routers' cache time (streams.events.SPREAD_TTL_S) with a margin


@dataclass(frozen=True, slots=True)
class Move:
    """The last spread change of an account: from `old` to `new` at `at_ms` (Redis time);
    `widest` is the largest factor the account has had, so readers of its past events know
    which shards may hold them."""

    old: int
    new: int
    at_ms: int
    widest: int

    @property
    def cutoff_ms(self) -> int:
        return self.at_ms + SETTLE_MS

    def encode(self) -> str:
        return f"{self.old}:{self.new}:{self.at_ms}:{self.widest}"

    @classmethod
    def decode(cls, value: str) -> Move | None:
        """None for anything unreadable (such a record holds no event back)."""
        try:
            old, new, at_ms, widest = (int(part) for part in value.split(":"))
        except ValueError:
            return None
        return cls(old, new, at_ms, widest)

    def old_shard(self, account_id: UUID, contact_id: UUID, shards: int) -> int:
        return shard_for(account_id, shards, contact_id, self.old)


@dataclass(frozen=True, slots=True)
class SpreadView:
    """Every account's published factor (absent: 1), its last move and whether an operator
    pinned it (auto-spread leaves pinned accounts alone)."""

    factors: dict[UUID, int]
    moves: dict[UUID, Move]
    pinned: frozenset[UUID]

    def factor(self, account_id: UUID) -> int:
        return self.factors.get(account_id, 1)

    def widest(self, account_id: UUID) -> int:
        move = self.moves.get(account_id)
        return max(self.factor(account_id), move.widest if move else 1)


EMPTY = SpreadView({}, {}, frozenset())


def bounded(value: int, shards: int) -> int:
    return max(1, min(value, shards))


def factor_of(value: bytes | str | None, shards: int) -> int:
    """A published factor, bounded to [1, shards]; absent or unreadable counts as 1."""
    try:
        return bounded(int(value), shards) if value is not None else 1
    except ValueError:
        return 1


def auto_factor(current: int, rate: float, threshold: float, shards: int) -> int | None:
    """The factor an account should grow to when the events it sends one partition per second
    (`rate`) pass `threshold`: double, up to the shard count; None to leave it."""
    if threshold <= 0 or rate <= threshold or current >= shards:
        return None
    return bounded(current * 2, shards)


def auto_threshold(
    alone: float, busy: float, backlog_then: int, backlog_now: int, batch: int
) -> float:
    """The events per second of one account above which a partition spreads it: `alone`, or
    `busy` while the partition falls behind (its backlog of undelivered entries grew over the
    window and holds more than a batch): an account need not be huge to be worth sharing out
    when its partition cannot keep up and another may be idle."""
    behind = backlog_now > backlog_then and backlog_now >= batch
    return min(alone, busy) if behind and busy > 0 else alone
