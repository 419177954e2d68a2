"""One partition's consume loop: read a batch from its shards, match, commit, publish, ack.

Plain asyncio, no Ray: `actors.partition` wraps it in a restartable Ray actor. The worker talks
to two narrow interfaces, its stream side (`streams.base.Shards`: Redis, or memory in tests) and
its Postgres side (`store.partition.PartitionStore`); a batch is the short sequence of named
steps in `_process` (docs/architecture.md, "The walk of one event")."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import asyncpg

from pipelines import sizes
from pipelines import stream_metrics as sm
from pipelines.enrollment import (
    BusinessHours,
    ContactKey,
    Enrollment,
    Last,
    LogEntry,
    Match,
    PairKey,
    decide,
    enrollment_id,
    evaluate,
)
from pipelines.index import Spec, TriggerIndex
from pipelines.messages import Event, Rejected, decode_batch, encode_enrollment
from pipelines.metrics import Registry, Sink
from pipelines.projection import Contact
from pipelines.reasons import Blocked, DeadLetter
from pipelines.sharding import account_shards, shard_for, shards_of
from pipelines.spread import EMPTY, SpreadView, auto_factor, auto_threshold
from pipelines.trigger_stats import TriggerKey
from store.partition import PartitionStore
from streams import names
from streams.base import Entry, Shards
from streams.clients import async_client
from streams.errors import StreamError
from streams.shards import RedisShards

log = logging.getLogger(__name__)

HOURS_TTL_S = 30.0
# The servers' own failures: retried as they are, never blamed on the batch.
SERVER_ERRORS = (StreamError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    partition: int
    partitions: int
    shards: int
    database_url: str
    redis_url: str
    batch_size: int = 500  # per shard: XREADGROUP's COUNT applies to each stream
    block_ms: int = 200
    loop_limit: int = 10
    max_deliveries: int = 10
    claim_idle_ms: int = 60_000
    housekeeping_s: float = 2.0
    contact_cache: int = 200_000
    retention_s: float = 7 * 86400.0  # shard entries older than this are trimmed (0: never)
    stream_max_len: int = 0  # approximate length cap per shard stream (0: none)
    trim_every_s: float = 60.0
    spread_refresh_s: float = 1.0  # how old this partition's view of spread factors may be
    # Held-back events (a spread change) kept in memory at most; past it, the streams they came
    # from are not read until their old shards catch up.
    max_held: int = 50_000
    # Auto-spread (docs/operations.md §12): an account sending one partition more events per
    # second than this over a window, or more than the busy figure while the partition falls
    # behind, is spread twice as wide (0: never).
    auto_spread_events_s: float = 3000.0
    auto_spread_busy_events_s: float = 500.0
    auto_spread_window_s: float = 10.0


class ReadMode(Enum):
    NEW = "new"  # entries never delivered
    PENDING = "pending"  # own unacknowledged entries first: after a restart, claim or outage
    ONE_BY_ONE = "one_by_one"  # pending, one entry of one stream at a time: only the culprit fails


@dataclass(slots=True)
class Batch:
    """What one batch of valid events carries from step to step."""

    events: list[Event]
    working: dict[ContactKey, Contact] = field(default_factory=dict)
    matches: list[Match] = field(default_factory=list)
    logs: list[LogEntry] = field(default_factory=list)
    changed: set[ContactKey] = field(default_factory=set)
    evaluated: Counter[TriggerKey] = field(default_factory=Counter)
    match_ms: float = 0.0
    history: dict[PairKey, Last] = field(default_factory=dict)
    hours: dict[uuid.UUID, BusinessHours] = field(default_factory=dict)
    enrollments: list[Enrollment] = field(default_factory=list)
    decided: list[LogEntry] = field(default_factory=list)
    inserted: list[Enrollment] = field(default_factory=list)
    committed_ms: float = 0.0


class PartitionWorker:
    def __init__(
        self,
        config: WorkerConfig,
        metrics_sink: Sink | None = None,
        shards: Shards | None = None,
    ) -> None:
        """`shards`: the stream side to use (default: Redis at `config.redis_url`)."""
        self.config = config
        self.metrics = Registry(sm.PARTITION_METRICS, metrics_sink)
        self.started_at = datetime.now(UTC)
        self.consumer = names.partition_consumer(config.partition)
        self.shards = shards_of(config.partition, config.shards, config.partitions)
        self.index = TriggerIndex()
        self.mode = ReadMode.PENDING  # a (re)started consumer first finishes what it held
        self._contacts: dict[ContactKey, Contact] = {}
        self._shard_of = {names.events_stream(s): s for s in self.shards}
        self._accounts: set[uuid.UUID] = set()
        # Spread (docs/contract.md §3): the accounts whose triggers the index holds, the view
        # of factors it was chosen by, and the events of moved contacts held back until their
        # old shard has caught up, by (old shard, cutoff).
        self._loaded: set[uuid.UUID] = set()
        self._view: SpreadView = EMPTY
        self._view_at = -1e9
        self._held: dict[tuple[int, int], list[Entry]] = {}
        self._drained: set[tuple[int, int]] = set()
        self._cursor: dict[str, str] = {}  # pending entries already read in this pass
        self._homes: dict[uuid.UUID, int] = {}
        self._rate: Counter[uuid.UUID] = Counter()
        self._rate_since = time.monotonic()
        self._backlog = self._backlog_then = 0  # undelivered entries: now, at window start
        self._hours: dict[uuid.UUID, BusinessHours] = {}
        self._hours_at: dict[uuid.UUID, float] = {}
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._streams = shards
        self._store: PartitionStore | None = None
        self._next_trim = 0.0
        # Config reconciliation: versions above _reconcile_from are re-read each housekeeping
        # round; it trails the newest version seen by one round (see _reconcile).
        self._reconcile_from = self._newest_version = 0
        self._logged_invalid: dict[uuid.UUID, int] = {}  # quarantined trigger -> version logged

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Connect, rebuild, then consume until stop(); survives server outages."""
        await self._connect_with_retry()
        try:
            await self._loop()
        finally:
            await self.disconnect()

    async def disconnect(self) -> None:
        """Close the stream side and the pool (whichever were opened)."""
        if self._streams is not None:
            await self._streams.close()
        if self._store is not None:
            await self._store.close()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def stop(self) -> None:
        """Finish the batch in flight, then return."""
        self._stopping.set()

    async def _connect_with_retry(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                await self.connect()
                return
            except SERVER_ERRORS as exc:
                log.warning("%s: start failed (%s); retrying in %.1fs", self.consumer, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def connect(self) -> None:
        """Open both sides, create the consumer groups, rebuild the index."""
        c = self.config
        if self._streams is None:
            self._streams = RedisShards(
                async_client(c.redis_url),
                self.consumer,
                self.shards,
                c.max_deliveries,
                c.retention_s,
                c.stream_max_len,
            )
        self._streams.on_dead_letter = self._count_dead_letters
        self._store = self._store or await PartitionStore.connect(c.database_url)
        await self._streams.ensure_groups()
        await self._rebuild()
        self._ready.set()

    async def _rebuild(self) -> None:
        self._view = await self._stream().spread_view(self.config.shards)
        self._view_at = time.monotonic()
        specs = await self._db().all_specs()
        self.index.apply_many(s for s in specs if self._owns(s.account_id))
        newest = max((s.sync_version for s in specs), default=0)
        self._reconcile_from = self._newest_version = newest
        self._accounts = await self._db().known_accounts(None)
        self._loaded = {a for a in self._accounts if self._owns(a)}
        self._report_invalid()
        gc.freeze()  # the index is long-lived: keep it out of every later collection
        log.info("%s: index rebuilt, %d live triggers", self.consumer, self.index.trigger_count())

    def _db(self) -> PartitionStore:
        assert self._store is not None, "not connected"
        return self._store

    def _stream(self) -> Shards:
        assert self._streams is not None, "not connected"
        return self._streams

    def _owns(self, account_id: uuid.UUID) -> bool:
        """Does one of this partition's shards carry the account under its spread factor?"""
        spread = self._view.factor(account_id)
        mine = self._shard_of.values()
        return any(s in mine for s in account_shards(account_id, self.config.shards, spread))

    async def apply_config(self, specs: Iterable[Spec]) -> int:
        """Apply trigger changes from the gateway to the accounts this partition holds, or
        now should (a new account: the rest of its triggers are then read from Postgres);
        changes of other accounts are ignored, and so are stale versions. A trigger whose
        stored configuration does not validate is quarantined (pipelines.index), not raised."""
        specs = list(specs)
        arriving = {
            s.account_id
            for s in specs
            if s.account_id not in self._loaded and self._owns(s.account_id)
        }
        self._loaded |= arriving
        applied = sum(self.index.apply(s) for s in specs if s.account_id in self._loaded)
        if arriving:
            await self._take_on(arriving)
        self._report_invalid()
        return applied

    def _report_invalid(self) -> None:
        """Log each quarantined trigger version once; gauge how many this partition holds."""
        invalid = self.index.invalid()
        for spec in invalid:
            if self._logged_invalid.get(spec.trigger_id) != spec.sync_version:
                log.error(
                    "%s: trigger %s (workflow %s, account %s) skipped: its stored configuration"
                    " is invalid: %s",
                    self.consumer,
                    spec.trigger_id,
                    spec.workflow_id,
                    spec.account_id,
                    spec.reason,
                )
        self._logged_invalid = {s.trigger_id: s.sync_version for s in invalid}
        self.metrics.set(sm.TRIGGERS_INVALID, len(invalid), partition=self.config.partition)

    async def _take_on(self, accounts: set[uuid.UUID]) -> None:
        """Load the triggers of accounts whose events now reach this partition. They count as
        held before the read, so a push that arrives meanwhile is applied, and the read's
        older versions of it are then ignored."""
        self._loaded |= accounts
        try:
            self.index.apply_many(await self._db().account_specs(sorted(accounts)))
        except BaseException:
            self._loaded -= accounts
            raise
        log.info("%s: took on %d accounts", self.consumer, len(accounts))

    async def _sync_spread(self, refresh_s: float | None = None) -> None:
        """Follow spread changes: take on the accounts that now route here, let go of those
        that no longer do, and forget cached contacts of every account that moved (another
        partition may have changed them meanwhile)."""
        if refresh_s is None:
            refresh_s = self.config.spread_refresh_s
        if time.monotonic() - self._view_at < refresh_s:
            return
        view = await self._stream().spread_view(self.config.shards)
        self._view_at = time.monotonic()
        old, self._view = self._view, view
        changed = {
            a
            for a in old.factors.keys() | view.factors.keys() | view.moves.keys()
            if old.factor(a) != view.factor(a) or old.moves.get(a) != view.moves.get(a)
        }
        if not changed:
            return
        for key in [k for k in self._contacts if k[0] in changed]:
            del self._contacts[key]
        for account in changed & self._loaded:
            if not self._owns(account):
                self._loaded.discard(account)
                self.index.drop_account(account)
        arriving = {a for a in changed - self._loaded if self._owns(a) and a in self._accounts}
        if arriving:
            await self._take_on(arriving)
        self._report_invalid()

    # -- the loop --------------------------------------------------------------------------

    async def _loop(self) -> None:
        next_housekeeping, failures = 0.0, 0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_housekeeping:
                    if await self._housekeeping() and self.mode is ReadMode.NEW:
                        self._reread(ReadMode.PENDING)  # claimed entries are now ours
                    next_housekeeping = time.monotonic() + self.config.housekeeping_s
                await self.step()
                failures = 0
            except Exception as exc:  # never ack on failure; re-read own pending entries after
                self.metrics.inc(sm.BATCH_ERRORS, partition=self.config.partition)
                failures += 1
                outage = _is_outage(exc)
                self._reread(ReadMode.PENDING if outage else ReadMode.ONE_BY_ONE)
                log.warning(
                    "%s: batch failed (%s: %s)",
                    self.consumer,
                    type(exc).__name__,
                    exc,
                    exc_info=not outage,
                )
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))
                await self._wait_for_servers()

    async def step(self) -> None:
        """Read one batch in the current mode and process it (after the held-back events
        whose old shard has caught up)."""
        await self._sync_spread()
        entries = await self._released() + await self._read()
        if entries:
            await self._process(entries)

    def _readable(self) -> list[str] | None:
        """The streams to read new entries from: all (None), unless the held-back entries have
        reached `max_held`; then not those they came from, so that memory stays bounded."""
        if self._held_count() < self.config.max_held:
            return None
        full = {s for entries in self._held.values() for s, _, _ in entries}
        return [name for name in self._stream().streams if name not in full]

    def _reread(self, mode: ReadMode) -> None:
        """Start again from this consumer's own pending entries (held-back ones included)."""
        self.mode, self._cursor, self._held = mode, {}, {}

    async def _read(self) -> list[Entry]:
        c, streams = self.config, self._stream()
        if self.mode is ReadMode.NEW:
            readable = self._readable()
            if readable == []:  # every stream waits for its old shard
                await asyncio.sleep(c.block_ms / 1000)
                return []
            return await streams.read_new(c.batch_size, c.block_ms, readable)
        if self.mode is ReadMode.PENDING:
            entries, last = await streams.read_pending(c.batch_size, after=self._cursor)
        else:
            entries, last = [], {}
            for name in streams.streams:  # one entry of one stream: only the culprit can fail
                entries, last = await streams.read_pending(1, [name], self._cursor)
                if last:
                    break
        # Held-back entries stay pending: the cursor keeps one pass from reading them again.
        self._cursor.update(last)
        if not last:
            self.mode, self._cursor = ReadMode.NEW, {}
        return entries

    async def _process(self, entries: list[Entry]) -> None:
        redelivered = self.mode is not ReadMode.NEW
        events, entries = await self._admit(entries)
        batches = await self._commit_isolating(events, entries, redelivered) if events else []
        await self._stream().ack((s, i) for s, i, _ in entries)
        self._tally(batches, len(entries))

    async def _admit(self, entries: list[Entry]) -> tuple[list[Event], list[Entry]]:
        """The events of the entries that this partition is to process now: what cannot be
        processed is dead-lettered, strays go to their own shard, moved contacts wait."""
        events, rejected = _decode(entries)
        events, unknown = await self._known_accounts(events, entries)
        await self._stream().dead_letter(rejected + unknown)
        events, entries = await self._route_strays(events, entries)
        events, entries = await self._hold_back_moved(events, entries)
        arriving = {e.envelope.account_id for e in events} - self._loaded
        if arriving:  # events can come before this partition's view of the spread does
            await self._take_on(arriving)
        return events, entries

    async def _commit_isolating(
        self, events: list[Event], entries: list[Entry], redelivered: bool
    ) -> list[Batch]:
        """Commit the events as one batch; when that fails for anything but an outage, commit
        each half on its own, and so on down to the culprit (docs/architecture.md §4): the
        good events of the batch commit, in order, at once."""
        try:
            return [await self._commit(events, redelivered)]
        except Exception as exc:
            if _is_outage(exc):
                raise
            self.metrics.inc(sm.BATCH_ERRORS, partition=self.config.partition)
            if len(events) == 1:
                return await self._retry_alone(events[0], entries, True, exc)
            log.warning(
                "%s: a batch of %d events failed (%s: %s); isolating the culprit",
                self.consumer,
                len(events),
                type(exc).__name__,
                exc,
                exc_info=True,
            )
        # The parts publish again what an earlier try may have committed (as a redelivery does).
        half = len(events) // 2
        first = await self._commit_isolating(events[:half], entries, True)
        return first + await self._commit_isolating(events[half:], entries, True)

    async def _retry_alone(
        self, event: Event, entries: list[Entry], redelivered: bool, first: Exception
    ) -> list[Batch]:
        """One event failed on its own: once more, and if it raises the same way again it is
        dead-lettered with the error as its reason (anything else is left to redelivery)."""
        try:
            return [await self._commit([event], redelivered)]
        except Exception as exc:
            if _is_outage(exc) or type(exc) is not type(first):
                raise
            field_name = names.EVENT_FIELD.encode()
            raw = next(
                (f or {}).get(field_name, b"")
                for s, i, f in entries
                if (s, i) == (event.stream, event.entry_id)
            )
            reason = f"could not be processed: {type(exc).__name__}: {exc}"
            await self._stream().dead_letter(
                [Rejected(event.stream, event.entry_id, raw, DeadLetter.UNPROCESSABLE, reason)]
            )
            return []

    async def _commit(self, events: list[Event], redelivered: bool) -> Batch:
        batch = Batch(events)
        await self._match(batch)
        await self._read_policy_inputs(batch)
        self._decide(batch)
        await self._write(batch)
        await self._publish_committed(batch, redelivered)
        return batch

    async def _route_strays(
        self, events: list[Event], entries: list[Entry]
    ) -> tuple[list[Event], list[Entry]]:
        """Events that came on another shard than routing names (a producer that does not
        route as the contract says, docs/contract.md §3) are moved to it, once; one already
        moved is dead-lettered. A view of the spread older than the producer's is read again
        first."""
        strays = self._strays(events)
        if not strays:
            return events, entries
        await self._sync_spread(refresh_s=0)
        strays = self._strays(strays)
        if not strays:
            return events, entries
        fields = {(s, i): f for s, i, f in entries}
        mark, shards = names.REROUTED_FIELD.encode(), self.config.shards
        moves: list[tuple[Entry, str]] = []
        bounced: list[Rejected] = []
        for e in strays:
            f = fields[(e.stream, e.entry_id)] or {}
            account = e.envelope.account_id
            home = shard_for(account, shards, e.contact_id, self._view.factor(account))
            if mark in f:
                why = f"misrouted: came on {e.stream} after a move; its routing names shard {home}"
                raw = f.get(names.EVENT_FIELD.encode(), b"")
                bounced.append(Rejected(e.stream, e.entry_id, raw, DeadLetter.MISROUTED, why))
            else:
                moves.append(((e.stream, e.entry_id, f), names.events_stream(home)))
                self.metrics.inc(
                    sm.REROUTED, partition=self.config.partition, shard=self._shard_of[e.stream]
                )
        await self._stream().reroute(moves)
        await self._stream().dead_letter(bounced)
        if moves:
            log.warning("%s: moved %d events to the shard they route to", self.consumer, len(moves))
        gone = {(e.stream, e.entry_id) for e in strays}
        kept = [e for e in events if (e.stream, e.entry_id) not in gone]
        return kept, [x for x in entries if (x[0], x[1]) not in gone]

    def _strays(self, events: list[Event]) -> list[Event]:
        """The events that came on another shard than this partition's view of the spread
        routes them to (or, for a moved account, routed them to before the move)."""
        view, shards, shard_of = self._view, self.config.shards, self._shard_of
        homes, strays = self._homes, []
        for e in events:
            account = e.envelope.account_id
            factor = view.factors.get(account, 1)
            if factor == 1 and account not in view.moves:
                home = homes.get(account)
                if home is None:
                    home = homes[account] = shard_for(account, shards)
                if home != shard_of[e.stream]:
                    strays.append(e)
            elif shard_for(account, shards, e.contact_id, factor) != shard_of[e.stream]:
                move = view.moves.get(account)  # sent before the change: no stray
                if (
                    move is None
                    or move.old_shard(account, e.contact_id, shards) != shard_of[e.stream]
                ):
                    strays.append(e)
        return strays

    async def _hold_back_moved(
        self, events: list[Event], entries: list[Entry]
    ) -> tuple[list[Event], list[Entry]]:
        """Set aside the events of contacts that a spread change moved to this shard while
        their old shard has not processed everything sent before the change's cutoff; they
        stay pending and come back, in order, once it has (docs/contract.md §3)."""
        moves, shards = self._view.moves, self.config.shards
        if not moves:
            return events, entries
        gates: dict[tuple[str, str], tuple[int, int]] = {}
        for e in events:
            move = moves.get(e.envelope.account_id)
            if move is None:
                continue
            old = move.old_shard(e.envelope.account_id, e.contact_id, shards)
            gate = (old, move.cutoff_ms)
            if old != self._shard_of[e.stream] and gate not in self._drained:
                gates[(e.stream, e.entry_id)] = gate
        if not gates:
            return events, entries
        for gate in set(gates.values()):
            if await self._gate_open(gate):
                self._drained.add(gate)
        held = {k: g for k, g in gates.items() if g not in self._drained}
        if not held:
            return events, entries
        for s, i, f in entries:
            if (s, i) in held:
                self._held.setdefault(held[(s, i)], []).append((s, i, f))
        self._report_held()
        kept = [e for e in events if (e.stream, e.entry_id) not in held]
        return kept, [x for x in entries if (x[0], x[1]) not in held]

    async def _gate_open(self, gate: tuple[int, int]) -> bool:
        shard, cutoff_ms = gate
        if time.time() * 1000 <= cutoff_ms:  # too early by this host's clock: skip Redis
            return False
        return await self._stream().drained_through(shard, cutoff_ms)

    async def _released(self) -> list[Entry]:
        """Held-back entries whose old shard has caught up, oldest first."""
        out: list[Entry] = []
        for gate in list(self._held):
            if gate in self._drained or await self._gate_open(gate):
                self._drained.add(gate)
                out += self._held.pop(gate)
        if out:
            self._report_held()
        return out

    def _held_count(self) -> int:
        return sum(len(v) for v in self._held.values())

    def _report_held(self) -> None:
        self.metrics.set(sm.HELD_BACK, self._held_count(), partition=self.config.partition)

    async def _known_accounts(
        self, events: list[Event], entries: list[Entry]
    ) -> tuple[list[Event], list[Rejected]]:
        """Events of accounts that exist; the others are dead-lettered, never retried."""
        unknown = {e.envelope.account_id for e in events} - self._accounts
        if unknown:
            self._accounts |= await self._db().known_accounts(unknown)
            unknown -= self._accounts
        if not unknown:
            return events, []
        field_name = names.EVENT_FIELD.encode()
        raw = {(s, i): (f or {}).get(field_name, b"") for s, i, f in entries}
        rejected = [
            Rejected(
                e.stream,
                e.entry_id,
                raw[(e.stream, e.entry_id)],
                DeadLetter.UNKNOWN_ACCOUNT,
                f"unknown account_id {e.envelope.account_id}",
            )
            for e in events
            if e.envelope.account_id in unknown
        ]
        return [e for e in events if e.envelope.account_id not in unknown], rejected

    async def _match(self, batch: Batch) -> None:
        """The batch's contacts, then pure matching (contact events applied in order)."""
        keys = {(e.envelope.account_id, e.contact_id) for e in batch.events}
        await self._load_contacts(keys)
        batch.working = {k: self._contacts[k].copy() for k in keys}
        started = time.perf_counter()
        batch.matches, batch.logs, batch.changed = evaluate(
            batch.events, self.index, batch.working, batch.evaluated
        )
        batch.match_ms = (time.perf_counter() - started) * 1000

    async def _read_policy_inputs(self, batch: Batch) -> None:
        """What the enrollment policy needs: each pair's latest enrollment, business hours."""
        pairs = {
            (m.event.envelope.account_id, m.trigger.workflow_id, m.event.contact_id)
            for m in batch.matches
        }
        batch.history = await self._db().history(pairs) if pairs else {}
        waiting = {
            m.event.envelope.account_id
            for m in batch.matches
            if m.trigger.settings.respect_business_hours
        }
        batch.hours = await self._business_hours(waiting)

    def _decide(self, batch: Batch) -> None:
        batch.enrollments, batch.decided = decide(
            batch.matches, batch.history, datetime.now(UTC), self.config.loop_limit, batch.hours
        )

    async def _write(self, batch: Batch) -> None:
        """One transaction: projection, enrollments, logs, stats."""
        batch.inserted = await self._db().write_batch(
            {k: batch.working[k] for k in batch.changed},
            batch.enrollments,
            batch.logs + batch.decided,
            batch.evaluated,
        )
        batch.committed_ms = time.time() * 1000
        self._contacts.update(batch.working)

    def _tally(self, batches: list[Batch], entries: int) -> None:
        """The one tally of what was read together (one batch, or the parts a failure split
        it into): the metrics registry (stats() reads it back)."""
        partition = self.config.partition
        self.metrics.observe(sm.BATCH_SIZE, entries, partition=partition)
        for batch in batches:
            self._rate.update(e.envelope.account_id for e in batch.events)
            self.metrics.observe(sm.MATCH_MS, batch.match_ms, partition=partition)
            sm.record_batch(
                self.metrics,
                partition,
                batch.events,
                batch.matches,
                batch.inserted,
                batch.logs + batch.decided,
                batch.committed_ms,
            )

    async def _business_hours(self, accounts: set[uuid.UUID]) -> dict[uuid.UUID, BusinessHours]:
        """Account hours, cached for a short while (settings change rarely)."""
        now = time.monotonic()
        stale = {a for a in accounts if self._hours_at.get(a, -1e9) < now - HOURS_TTL_S}
        if stale:
            self._hours.update(await self._db().business_hours(stale))
            self._hours_at.update(dict.fromkeys(stale, now))
        return {a: self._hours[a] for a in accounts if a in self._hours}

    async def _load_contacts(self, keys: set[ContactKey]) -> None:
        """Make sure every key of the batch is in the cache (bounded: cleared when full)."""
        missing = keys - self._contacts.keys()
        if not missing:
            return
        if len(self._contacts) + len(missing) > self.config.contact_cache:
            self._contacts.clear()
            missing = keys
        found = await self._db().contacts(missing)
        for key in missing:
            self._contacts[key] = found.get(key) or Contact()

    async def _publish(self, items: list[tuple[uuid.UUID, bytes]], held: bool = True) -> None:
        """Enrollments to the enrollments stream, then (`held`: they came from it) out of the
        outbox."""
        if items:
            await self._stream().publish([payload for _, payload in items])
            if held:
                await self._db().mark_published([i for i, _ in items])
            self.metrics.inc(sm.PUBLISHED, len(items), partition=self.config.partition)

    async def _publish_committed(self, batch: Batch, redelivered: bool) -> None:
        """The batch's new enrollments to the stream, before its entries are acknowledged. A
        redelivered batch also publishes again those its matches had committed before (its
        first delivery may have stopped between commit and publish: the entry ids are the
        same, so consumers dedupe). When the stream does not take them, outbox rows keep them
        for housekeeping and the batch goes on; when Postgres does not take those either, the
        batch fails and is delivered again."""
        items = [
            (e.id, e.event_id, encode_enrollment(e))
            for e in batch.inserted
            if e.status == "triggered"
        ]
        if redelivered:
            fresh = {e.id for e in batch.inserted}
            ids = {
                enrollment_id(m.event.envelope.event_id, m.trigger.workflow_id, m.event.contact_id)
                for m in batch.matches
            }
            items += await self._db().committed_entries(sorted(ids - fresh))
        if not items:
            return
        try:
            await self._publish([(i, payload) for i, _, payload in items], held=False)
        except SERVER_ERRORS as exc:
            shard_of = {e.envelope.event_id: self._shard_of[e.stream] for e in batch.events}
            await self._db().hold_unpublished([(i, shard_of[event]) for i, event, _ in items])
            log.warning(
                "%s: %d enrollments left in the outbox (%s)", self.consumer, len(items), exc
            )

    async def _publish_items_or_leave(self, items: list[tuple[uuid.UUID, bytes]]) -> None:
        """Publishing can fail without failing the batch: what is committed stays in the
        outbox, and housekeeping publishes it later."""
        try:
            await self._publish(items)
        except SERVER_ERRORS as exc:
            log.warning("%s: enrollments left in the outbox (%s)", self.consumer, exc)

    async def _housekeeping(self) -> bool:
        """Publish committed-but-unpublished enrollments; claim entries idle on dead consumers.
        True when entries were claimed (they are now this consumer's pending entries)."""
        await self._publish_items_or_leave(await self._db().unpublished(self.shards, 1000))
        chores = (self._reconcile, self._sample_lag, self._trim, self._auto_spread)
        for chore in chores:  # never stop consuming
            try:
                await chore()
            except SERVER_ERRORS as exc:
                log.warning("%s: %s failed: %r", self.consumer, chore.__name__, exc)
        held = [(s, i) for entries in self._held.values() for s, i, _ in entries]
        await self._stream().touch(held)  # held back on purpose, not abandoned
        return await self._stream().claim_abandoned(self.config.claim_idle_ms)

    async def _reconcile(self) -> None:
        """Apply config changes whose push never arrived (the gateway failed after commit):
        re-read the triggers changed since one round before the newest version seen. Versions
        are taken just before commit, so a change can commit after a higher one; reading one
        round back finds it, and re-applying a version already held changes nothing."""
        specs = await self._db().specs_since(self._reconcile_from)
        applied = await self.apply_config(specs)
        if applied:
            log.warning(
                "%s: %d trigger changes applied from Postgres (push missed)", self.consumer, applied
            )
        self._reconcile_from = self._newest_version
        self._newest_version = max([self._newest_version, *(s.sync_version for s in specs)])

    async def _auto_spread(self) -> None:
        """Spread an account wider when it sends this partition more than it should carry
        alone (docs/operations.md §12); pinned accounts and unsettled moves are left alone."""
        c = self.config
        elapsed = time.monotonic() - self._rate_since
        if c.auto_spread_events_s <= 0 or elapsed < c.auto_spread_window_s:
            return
        counts, self._rate, self._rate_since = self._rate, Counter(), time.monotonic()
        threshold = auto_threshold(
            c.auto_spread_events_s,
            c.auto_spread_busy_events_s,
            self._backlog_then,
            self._backlog,
            c.batch_size * len(self.shards),
        )
        self._backlog_then = self._backlog
        for account, n in counts.items():
            rate = n / elapsed
            factor = auto_factor(self._view.factor(account), rate, threshold, c.shards)
            if factor is None or account in self._view.pinned:
                continue
            if await self._stream().set_spread(account, factor, c.shards):
                self.metrics.inc(sm.AUTO_SPREADS, partition=c.partition)
                self._view_at = -1e9  # follow the change at the next step
                log.warning(
                    "%s: account %s sent %.0f events/s here; spread -> %d",
                    self.consumer,
                    account,
                    rate,
                    factor,
                )

    async def _trim(self) -> None:
        """Retention: trim processed entries past their time; report entries lost unread."""
        if time.monotonic() < self._next_trim:
            return
        self._next_trim = time.monotonic() + self.config.trim_every_s
        streams = self._stream()
        await streams.dead_letter(await streams.trim(int(time.time() * 1000)))

    async def _sample_lag(self) -> None:
        backlog = 0
        for s in await self._stream().lag():
            backlog += s.lag or 0
            tags = {"partition": self.config.partition, "shard": s.shard}
            self.metrics.set(sm.STREAM_LENGTH, s.length, **tags)
            self.metrics.set(sm.STREAM_PENDING, s.pending, **tags)
            if s.lag is not None:
                self.metrics.set(sm.STREAM_LAG, s.lag, **tags)
        self._backlog = backlog

    def _count_dead_letters(self, rejected: list[Rejected]) -> None:
        sm.record_dead_letters(self.metrics, self.config.partition, rejected)

    async def _wait_for_servers(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                await self._stream().ping()
                await self._db().ping()
                return
            except Exception as exc:
                log.info("%s: waiting for servers (%s)", self.consumer, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def metrics_snapshot(self) -> dict[str, Any]:
        """This partition's metrics since the worker started, as plain data."""
        return {
            "partition": self.config.partition,
            "shards": self.shards,
            "started_at": self.started_at.isoformat(),
            "metrics": self.metrics.snapshot(),
            "index": self.index_report(),
        }

    def index_report(self) -> dict[str, Any]:
        """The index's estimated size: totals, and the largest accounts (pipelines.sizes)."""
        return sizes.index_report(self.index.account_sizes())

    def stats(self) -> dict[str, Any]:
        """The counts since start, read from the metrics registry (the one tally)."""
        m = self.metrics
        return {
            "partition": self.config.partition,
            "shards": self.shards,
            "triggers": self.index.trigger_count(),
            "index": self.index_report(),
            "invalid_triggers": {str(s.trigger_id): s.reason for s in self.index.invalid()},
            "batches": int(m.total(sm.BATCH_SIZE)),
            "events": int(m.total(sm.CONSUMED)),
            "matched": int(m.total(sm.MATCHED)),
            "enrolled": int(m.total(sm.ENROLLED)),
            "published": int(m.total(sm.PUBLISHED)),
            "dead_lettered": int(m.total(sm.DEAD_LETTERED)),
            "errors": int(m.total(sm.BATCH_ERRORS)),
            "blocked": {
                Blocked(code).text: int(n) for code, n in m.by_tag(sm.BLOCKED, "reason").items()
            },
        }


def _decode(entries: list[Entry]) -> tuple[list[Event], list[Rejected]]:
    field_name = names.EVENT_FIELD.encode()
    return decode_batch([(s, i, f.get(field_name) if f else None) for s, i, f in entries])


# Connection trouble, operator intervention, too many connections / out of resources,
# serialization failures, "not accepting connections", read-only (a failover): the servers'
# fault, retried as is; anything else is suspected to be the batch's.
_OUTAGE_SQLSTATES = ("08", "57", "53", "40", "55000", "25006")


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "").startswith(_OUTAGE_SQLSTATES)
    return isinstance(exc, (*SERVER_ERRORS, TimeoutError))
