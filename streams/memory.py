"""Shard streams in memory: the same `Shards` interface as Redis, for tests that run a whole batch
step without a Redis server (as dramatiq's stub broker does). One `MemoryBroker` holds the
streams, the consumer group's state and the dead-letter and enrollments streams; any number of
`MemoryShards` consumers share it. Semantics follow Redis's: ids are `<ms>-<seq>`, a read of
pending entries counts as a delivery, an entry trimmed while pending comes back without fields.
Retention here trims by length only (`max_len`); time-based trimming is Redis's alone."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from pipelines.messages import Rejected, encode_dead_letter
from pipelines.spread import EMPTY, Move, SpreadView, bounded
from streams import names
from streams.base import Entry, sift_pending
from streams.lag import ShardLag

Fields = dict[bytes, bytes]


@dataclass
class _Pending:
    consumer: str
    deliveries: int
    delivered_at: float


@dataclass
class _Stream:
    entries: dict[str, Fields] = field(default_factory=dict)  # insertion order = id order
    last_delivered: tuple[int, int] = (0, 0)
    pending: dict[str, _Pending] = field(default_factory=dict)


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class MemoryBroker:
    def __init__(self) -> None:
        self.streams: dict[str, _Stream] = {}
        self.spread: SpreadView = EMPTY  # what `hairtrigger:spread` and its companions hold
        self._last = (0, 0)
        self._added = asyncio.Event()

    def add(self, stream: str, fields: dict[str, bytes | str]) -> str:
        """XADD: a new entry with an id after every earlier one."""
        ms = int(time.time() * 1000)
        self._last = (ms, 0) if ms > self._last[0] else (self._last[0], self._last[1] + 1)
        entry_id = f"{self._last[0]}-{self._last[1]}"
        encoded = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}
        self.streams.setdefault(stream, _Stream()).entries[entry_id] = encoded
        self._added.set()
        return entry_id

    def set_spread(self, account_id: uuid.UUID, factor: int, shards: int) -> None:
        """An operator's change of an account's factor, stamped like Redis's."""
        view = self.spread
        old, new = view.factor(account_id), bounded(factor, shards)
        if new == old:
            return
        move = Move(old, new, int(time.time() * 1000), max(view.widest(account_id), new))
        self.spread = replace(
            view,
            factors={**view.factors, account_id: new},
            moves={**view.moves, account_id: move},
        )

    def add_event(self, stream: str, payload: bytes) -> str:
        return self.add(stream, {names.EVENT_FIELD: payload})

    def entries(self, stream: str) -> list[tuple[str, Fields]]:
        return list(self.streams.get(stream, _Stream()).entries.items())

    def delete(self, stream: str, entry_id: str) -> None:
        """XDEL: the entry goes; a consumer that has it pending gets it back without fields."""
        self.streams.get(stream, _Stream()).entries.pop(entry_id, None)

    async def wait_for_entries(self, timeout_s: float) -> None:
        self._added.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._added.wait(), timeout_s)


class MemoryShards:
    """One consumer of the group, over its shards."""

    def __init__(
        self,
        broker: MemoryBroker,
        consumer: str,
        shards: list[int],
        max_deliveries: int,
        max_len: int = 0,
    ) -> None:
        self.broker, self.consumer, self.shards = broker, consumer, shards
        self.streams = [names.events_stream(s) for s in shards]
        self.max_deliveries, self.max_len = max_deliveries, max_len
        self.dead_lettered = 0
        self.on_dead_letter: Callable[[list[Rejected]], None] | None = None

    def _stream(self, name: str) -> _Stream:
        return self.broker.streams.setdefault(name, _Stream())

    async def ensure_groups(self) -> None:
        for name in self.streams:
            self._stream(name)

    async def read_new(
        self, count: int, block_ms: int, streams: list[str] | None = None
    ) -> list[Entry]:
        names_ = self.streams if streams is None else streams
        entries = self._deliver_new(count, names_)
        if not entries and block_ms:
            await self.broker.wait_for_entries(block_ms / 1000)
            entries = self._deliver_new(count, names_)
        return entries

    def _deliver_new(self, count: int, streams: list[str]) -> list[Entry]:
        out: list[Entry] = []
        now = time.monotonic()
        for name in streams:
            stream = self._stream(name)
            fresh = [(i, f) for i, f in stream.entries.items() if _id(i) > stream.last_delivered]
            for entry_id, fields in fresh[:count]:
                stream.pending[entry_id] = _Pending(self.consumer, 1, now)
                stream.last_delivered = _id(entry_id)
                out.append((name, entry_id, fields))
        return out

    async def read_pending(
        self, count: int, streams: list[str] | None = None, after: Mapping[str, str] | None = None
    ) -> tuple[list[Entry], dict[str, str]]:
        entries: list[Entry] = []
        now = time.monotonic()
        for name in streams or self.streams:
            stream = self._stream(name)
            start = _id((after or {}).get(name, "0-0"))
            mine = [
                i
                for i, p in stream.pending.items()
                if p.consumer == self.consumer and _id(i) > start
            ]
            for entry_id in sorted(mine, key=_id)[:count]:
                p = stream.pending[entry_id]
                p.deliveries, p.delivered_at = p.deliveries + 1, now
                entries.append((name, entry_id, stream.entries.get(entry_id)))
        if not entries:
            return [], {}
        last = {s: i for s, i, _ in entries}
        over = {
            (s, i)
            for s, i, _ in entries
            if self._stream(s).pending[i].deliveries > self.max_deliveries
        }
        entries, rejected = sift_pending(entries, over, self.max_deliveries)
        await self.dead_letter(rejected)
        return entries, last

    async def ack(self, ids: Iterable[tuple[str, str]]) -> None:
        for name, entry_id in ids:
            self._stream(name).pending.pop(entry_id, None)

    async def dead_letter(self, rejected: list[Rejected]) -> None:
        if not rejected:
            return
        for r in rejected:
            self.broker.add(names.DLQ_STREAM, dict(encode_dead_letter(r)))
        await self.ack((r.stream, r.entry_id) for r in rejected)
        self.dead_lettered += len(rejected)
        if self.on_dead_letter is not None:
            self.on_dead_letter(rejected)

    async def touch(self, ids: Iterable[tuple[str, str]]) -> None:
        now = time.monotonic()
        for name, entry_id in ids:
            pending = self._stream(name).pending.get(entry_id)
            if pending is not None and pending.consumer == self.consumer:
                pending.delivered_at = now

    async def publish(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            self.broker.add(names.ENROLLMENTS_STREAM, {names.ENROLLMENT_FIELD: payload})

    async def reroute(self, moves: list[tuple[Entry, str]]) -> None:
        mark = names.REROUTED_FIELD.encode()
        for (stream, entry_id, fields), target in moves:
            body = {k.decode(): v for k, v in (fields or {}).items()}
            self.broker.add(target, {**body, mark.decode(): stream})
            self._stream(stream).pending.pop(entry_id, None)

    async def claim_abandoned(self, idle_ms: int) -> bool:
        claimed = False
        cutoff = time.monotonic() - idle_ms / 1000
        for name in self.streams:
            stream = self._stream(name)
            for p in stream.pending.values():
                if p.consumer != self.consumer and p.delivered_at <= cutoff:
                    p.consumer, p.delivered_at = self.consumer, time.monotonic()
                    claimed = True
        return claimed

    async def trim(self, now_ms: int) -> list[Rejected]:
        if self.max_len:
            for name in self.streams:
                stream = self._stream(name)
                for entry_id in list(stream.entries)[: max(len(stream.entries) - self.max_len, 0)]:
                    del stream.entries[entry_id]
        return []

    async def lag(self) -> list[ShardLag]:
        out = []
        for shard, name in zip(self.shards, self.streams, strict=True):
            stream = self._stream(name)
            undelivered = sum(_id(i) > stream.last_delivered for i in stream.entries)
            out.append(ShardLag(shard, len(stream.entries), len(stream.pending), undelivered))
        return out

    async def spread_view(self, shards: int) -> SpreadView:
        return self.broker.spread

    async def drained_through(self, shard: int, cutoff_ms: int) -> bool:
        if time.time() * 1000 <= cutoff_ms:
            return False
        stream = self._stream(names.events_stream(shard))
        if any(_id(i)[0] <= cutoff_ms for i in stream.pending):
            return False
        return not any(
            stream.last_delivered < _id(i) and _id(i)[0] <= cutoff_ms for i in stream.entries
        )

    async def set_spread(self, account_id: uuid.UUID, factor: int, shards: int) -> bool:
        view = self.broker.spread
        move = view.moves.get(account_id)
        if account_id in view.pinned or (move and time.time() * 1000 <= move.cutoff_ms):
            return False
        self.broker.set_spread(account_id, factor, shards)
        return True

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
