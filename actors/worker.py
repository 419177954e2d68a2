"""One partition's consume loop: read a batch from its shards, match, commit, publish, ack.

Plain asyncio, no Ray: `actors.partition` wraps it in a restartable Ray actor."""

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
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pipelines import stream_metrics as sm
from pipelines.enrollment import (
    BusinessHours,
    ContactKey,
    Enrollment,
    LogEntry,
    decide,
    evaluate,
)
from pipelines.index import TriggerIndex, TriggerSpec
from pipelines.messages import Event, Rejected, decode_batch
from pipelines.metrics import Registry, Sink
from pipelines.projection import Contact
from pipelines.sharding import shard_for, shards_of
from pipelines.trigger_stats import TriggerKey
from store import config_sync, db, stream
from streams import names
from streams.clients import async_client
from streams.consumer import Entry, StreamConsumer
from streams.lag import shard_lag
from streams.retention import StreamRetention

log = logging.getLogger(__name__)

HOURS_TTL_S = 30.0


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


@dataclass(slots=True)
class Counters:
    batches: int = 0
    events: int = 0
    matched: int = 0
    enrolled: int = 0
    published: int = 0
    errors: int = 0
    blocked: dict[str, int] = field(default_factory=dict)


class PartitionWorker:
    def __init__(self, config: WorkerConfig, metrics_sink: Sink | None = None) -> None:
        self.config = config
        self.metrics = Registry(sm.PARTITION_METRICS, metrics_sink)
        self.started_at = datetime.now(UTC)
        self.consumer = names.partition_consumer(config.partition)
        self.shards = shards_of(config.partition, config.shards, config.partitions)
        self.streams = [names.events_stream(s) for s in self.shards]
        self.index = TriggerIndex()
        self.counters = Counters()
        self._contacts: dict[ContactKey, Contact] = {}
        self._shard_of: dict[uuid.UUID, int] = {}
        self._accounts: set[uuid.UUID] = set()
        self._hours: dict[uuid.UUID, BusinessHours] = {}
        self._hours_at: dict[uuid.UUID, float] = {}
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._redis: Redis | None = None
        self._pool: asyncpg.Pool | None = None
        self._streams: StreamConsumer | None = None
        self._retention: StreamRetention | None = None
        # After a failure that was not the servers', pending entries are retried one at a time
        # (one stream at a time too: COUNT applies per stream), so only the culprit fails.
        self._suspect = False
        self._next_trim = 0.0
        # Config reconciliation: versions above _reconcile_from are re-read each housekeeping
        # round; it trails the newest version seen by one round (see _reconcile).
        self._reconcile_from = self._newest_version = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Connect, rebuild, then consume until stop(); survives server outages."""
        await self._connect_with_retry()
        try:
            await self._loop()
        finally:
            await self.disconnect()

    async def disconnect(self) -> None:
        """Close the Redis client and the pool (whichever were opened)."""
        if self._redis is not None:
            await self._redis.aclose()
        if self._pool is not None:
            await self._pool.close()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def stop(self) -> None:
        """Finish the batch in flight, then return."""
        self._stopping.set()

    async def _connect_with_retry(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                self._redis = self._redis or async_client(self.config.redis_url)
                self._pool = self._pool or await db.create_pool(self.config.database_url, 1, 4)
                self._streams = StreamConsumer(
                    self._redis, self.consumer, self.streams, self.config.max_deliveries
                )
                self._streams.on_dead_letter = self._count_dead_letters
                await self._streams.ensure_groups()
                await self._rebuild()
                self._ready.set()
                return
            except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("%s: start failed (%s); retrying in %.1fs", self.consumer, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _rebuild(self) -> None:
        pool = self._need_pool()
        specs = await config_sync.all_specs(pool)
        self.index.apply_many(s for s in specs if self._owns(s.account_id))
        newest = max((s.sync_version for s in specs), default=0)
        self._reconcile_from = self._newest_version = newest
        self._accounts = await stream.known_accounts(pool, None)
        gc.freeze()  # the index is long-lived: keep it out of every later collection
        log.info("%s: index rebuilt, %d live triggers", self.consumer, self.index.trigger_count())

    def _need_pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "not connected"
        return self._pool

    def _need_streams(self) -> StreamConsumer:
        assert self._streams is not None, "not connected"
        return self._streams

    def _owns(self, account_id: uuid.UUID) -> bool:
        return self._shard(account_id) in self.shards

    def _shard(self, account_id: uuid.UUID) -> int:
        shard = self._shard_of.get(account_id)
        if shard is None:
            shard = self._shard_of[account_id] = shard_for(account_id, self.config.shards)
        return shard

    async def apply_config(self, specs: Iterable[TriggerSpec]) -> int:
        """Apply trigger changes from the gateway; stale versions are ignored."""
        return sum(self.index.apply(s) for s in specs if self._owns(s.account_id))

    # -- the loop --------------------------------------------------------------------------

    async def _loop(self) -> None:
        recovering, next_housekeeping, failures = True, 0.0, 0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_housekeeping:
                    recovering = await self._housekeeping() or recovering
                    next_housekeeping = time.monotonic() + self.config.housekeeping_s
                if recovering:
                    entries, pending = await self._read_pending()
                    if not pending:
                        recovering, self._suspect = False, False
                        continue
                else:
                    entries = await self._need_streams().read(
                        ">", self.config.batch_size, self.config.block_ms
                    )
                if entries:
                    await self._process(entries)
                failures = 0
            except Exception as exc:  # never ack on failure; re-read own pending entries after
                self.counters.errors += 1
                self.metrics.inc(sm.BATCH_ERRORS, partition=self.config.partition)
                failures += 1
                outage = _is_outage(exc)
                self._suspect = not outage
                log.warning("%s: batch failed (%s: %s)", self.consumer, type(exc).__name__, exc,
                            exc_info=not outage)  # fmt: skip
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))
                await self._wait_for_servers()
                recovering = True

    async def _read_pending(self) -> tuple[list[Entry], bool]:
        consumer = self._need_streams()
        if not self._suspect:
            return await consumer.read_pending(self.config.batch_size)
        for name in self.streams:  # one entry of one stream: only the culprit can fail
            entries, pending = await consumer.read_pending(1, [name])
            if pending:
                return entries, True
        return [], False

    async def _process(self, entries: list[Entry]) -> None:
        field_name = names.EVENT_FIELD.encode()
        events, rejected = decode_batch(
            [(s, i, f.get(field_name) if f else None) for s, i, f in entries]
        )
        raw = {(s, i): (f or {}).get(field_name, b"") for s, i, f in entries}
        events, unknown = await self._known_accounts(events, raw)
        await self._need_streams().dead_letter(rejected + unknown)
        if events:
            inserted = await self._enroll(events)
            ready = [e for e in inserted if e.status == "triggered"]  # queued: the scheduler's
            await self._publish_or_leave([(e.id, orjson.dumps(e.to_json())) for e in ready])
        await self._need_streams().ack((s, i) for s, i, _ in entries)
        self.metrics.observe(sm.BATCH_SIZE, len(entries), partition=self.config.partition)
        self.counters.batches += 1
        self.counters.events += len(events)

    async def _known_accounts(
        self, events: list[Event], raw: dict[tuple[str, str], bytes]
    ) -> tuple[list[Event], list[Rejected]]:
        """Events of accounts that exist; the others are dead-lettered, never retried."""
        unknown = {e.envelope.account_id for e in events} - self._accounts
        if unknown:
            self._accounts |= await stream.known_accounts(self._need_pool(), unknown)
            unknown -= self._accounts
        if not unknown:
            return events, []
        rejected = [
            Rejected(e.stream, e.entry_id, raw[(e.stream, e.entry_id)],
                     f"unknown account_id {e.envelope.account_id}")
            for e in events if e.envelope.account_id in unknown
        ]  # fmt: skip
        return [e for e in events if e.envelope.account_id not in unknown], rejected

    async def _enroll(self, events: list[Event]) -> list[Enrollment]:
        keys = {(e.envelope.account_id, e.contact_id) for e in events}
        await self._load_contacts(keys)
        working = {k: self._contacts[k].copy() for k in keys}
        started = time.perf_counter()
        evaluated: Counter[TriggerKey] = Counter()  # per-trigger stats (issue 7)
        matches, logs, changed = evaluate(events, self.index, working, evaluated)
        match_ms = (time.perf_counter() - started) * 1000
        now = datetime.now(UTC)
        async with self._need_pool().acquire() as conn:
            pairs = {(m.event.envelope.account_id, m.trigger.workflow_id, m.event.contact_id)
                     for m in matches}  # fmt: skip
            history = await stream.load_history(conn, pairs) if pairs else {}
            waiting = [m for m in matches if m.trigger.settings.respect_business_hours]
            hours = await self._business_hours({m.event.envelope.account_id for m in waiting})
            enrollments, decided = decide(matches, history, now, self.config.loop_limit, hours)
            shard_of = {e.account_id: self._shard(e.account_id) for e in enrollments}
            inserted = await stream.write_batch(
                conn,
                {k: working[k] for k in changed},
                enrollments,
                logs + decided,
                shard_of,
                evaluated,
            )
        committed_ms = time.time() * 1000
        self._contacts.update(working)
        self._count(len(matches), inserted, decided)
        partition = self.config.partition
        self.metrics.observe(sm.MATCH_MS, match_ms, partition=partition)
        sm.record_batch(self.metrics, partition, events, matches, inserted, logs + decided,
                        committed_ms)  # fmt: skip
        return inserted

    async def _business_hours(self, accounts: set[uuid.UUID]) -> dict[uuid.UUID, BusinessHours]:
        """Account hours, cached for a short while (settings change rarely)."""
        now = time.monotonic()
        stale = {a for a in accounts if self._hours_at.get(a, -1e9) < now - HOURS_TTL_S}
        if stale:
            self._hours.update(await stream.load_business_hours(self._need_pool(), stale))
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
        found = await stream.load_contacts(self._need_pool(), missing)
        for key in missing:
            self._contacts[key] = found.get(key) or Contact()

    def _count(self, matched: int, inserted: list[Enrollment], decided: list[LogEntry]) -> None:
        self.counters.matched += matched
        self.counters.enrolled += len(inserted)
        for entry in decided:
            if entry.failure_reason:
                blocked = self.counters.blocked
                blocked[entry.failure_reason] = blocked.get(entry.failure_reason, 0) + 1

    async def _publish(self, items: list[tuple[uuid.UUID, bytes]]) -> None:
        """Enrollments to the enrollments stream, then out of the outbox."""
        if items:
            await self._need_streams().publish([payload for _, payload in items])
            await stream.mark_published(self._need_pool(), [i for i, _ in items])
            self.counters.published += len(items)
            self.metrics.inc(sm.PUBLISHED, len(items), partition=self.config.partition)

    async def _publish_or_leave(self, items: list[tuple[uuid.UUID, bytes]]) -> None:
        """Publishing can fail without failing the batch: what is committed stays in the
        outbox, and housekeeping publishes it later."""
        try:
            await self._publish(items)
        except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("%s: enrollments left in the outbox (%s)", self.consumer, exc)

    async def _housekeeping(self) -> bool:
        """Publish committed-but-unpublished enrollments; claim entries idle on dead consumers.
        True when entries were claimed (they are now this consumer's pending entries)."""
        await self._publish_or_leave(await stream.unpublished(self._need_pool(), self.shards, 1000))
        for chore in (self._reconcile, self._sample_lag, self._trim):  # never stop consuming
            try:
                await chore()
            except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("%s: %s failed: %r", self.consumer, chore.__name__, exc)
        return await self._need_streams().claim_abandoned(self.config.claim_idle_ms)

    async def _reconcile(self) -> None:
        """Apply config changes whose push never arrived (the gateway failed after commit):
        re-read the triggers changed since one round before the newest version seen. Versions
        are taken just before commit, so a change can commit after a higher one; reading one
        round back finds it, and re-applying a version already held changes nothing."""
        specs = await config_sync.specs_since(self._need_pool(), self._reconcile_from)
        applied = await self.apply_config(specs)
        if applied:
            log.warning("%s: %d trigger changes applied from Postgres (push missed)",
                        self.consumer, applied)  # fmt: skip
        self._reconcile_from = self._newest_version
        self._newest_version = max([self._newest_version, *(s.sync_version for s in specs)])

    async def _trim(self) -> None:
        """Retention: trim processed entries past their time; report entries lost unread."""
        if time.monotonic() < self._next_trim or self._redis is None:
            return
        self._next_trim = time.monotonic() + self.config.trim_every_s
        if self._retention is None:
            self._retention = StreamRetention(
                self._redis, self.streams, self.config.retention_s, self.config.stream_max_len
            )
        await self._need_streams().dead_letter(await self._retention.run(int(time.time() * 1000)))

    async def _sample_lag(self) -> None:
        assert self._redis is not None
        for s in await shard_lag(self._redis, self.shards):
            tags = {"partition": self.config.partition, "shard": s.shard}
            self.metrics.set(sm.STREAM_LENGTH, s.length, **tags)
            self.metrics.set(sm.STREAM_PENDING, s.pending, **tags)
            if s.lag is not None:
                self.metrics.set(sm.STREAM_LAG, s.lag, **tags)

    def _count_dead_letters(self, rejected: list[Rejected]) -> None:
        sm.record_dead_letters(
            self.metrics, self.config.partition, [(r.stream, r.reason) for r in rejected]
        )

    async def _wait_for_servers(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                assert self._redis is not None
                await self._redis.ping()
                await self._need_pool().fetchval("SELECT 1")
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
        }

    def stats(self) -> dict[str, Any]:
        c = self.counters
        return {
            "partition": self.config.partition,
            "shards": self.shards,
            "triggers": self.index.trigger_count(),
            "batches": c.batches,
            "events": c.events,
            "matched": c.matched,
            "enrolled": c.enrolled,
            "published": c.published,
            "dead_lettered": self._streams.dead_lettered if self._streams else 0,
            "errors": c.errors,
            "blocked": dict(c.blocked),
        }


# Connection trouble, operator intervention, too many connections / out of resources,
# serialization failures, "not accepting connections", read-only (a failover): the servers'
# fault, retried as is; anything else is suspected to be the batch's.
_OUTAGE_SQLSTATES = ("08", "57", "53", "40", "55000", "25006")


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "").startswith(_OUTAGE_SQLSTATES)
    return isinstance(
        exc,
        RedisError | OSError | asyncpg.InterfaceError | TimeoutError,
    )  # fmt: skip
