"""One partition's consume loop: read a batch from its shards, match, commit, publish, ack.

Plain asyncio, no Ray: `actors.partition` wraps it in a restartable Ray actor."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from hairtrigger import names
from hairtrigger.redis_clients import async_client
from pipelines.enrollment import ContactKey, Enrollment, decide, evaluate
from pipelines.envelope import Event, Rejected, decode_batch
from pipelines.index import TriggerIndex, TriggerSpec
from pipelines.projection import Contact
from pipelines.sharding import shard_for, shards_of
from store import config_sync, db, stream

log = logging.getLogger(__name__)

GROUP = "hairtrigger"
Entry = tuple[str, str, dict[bytes, bytes] | None]  # (stream, entry id, fields)


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


@dataclass(slots=True)
class Counters:
    batches: int = 0
    events: int = 0
    matched: int = 0
    enrolled: int = 0
    dead_lettered: int = 0
    published: int = 0
    errors: int = 0
    blocked: dict[str, int] = field(default_factory=dict)


class PartitionWorker:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.consumer = f"partition-{config.partition}"
        self.shards = shards_of(config.partition, config.shards, config.partitions)
        self.streams = [names.events_stream(s) for s in self.shards]
        self.index = TriggerIndex()
        self.counters = Counters()
        self._contacts: dict[ContactKey, Contact] = {}
        self._shard_of: dict[uuid.UUID, int] = {}
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._redis: Redis | None = None
        self._pool: asyncpg.Pool | None = None
        self._suspect = False  # the last failure was not the servers': retry one entry at a time

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Connect, rebuild, then consume until stop(); survives server outages."""
        await self._connect_with_retry()
        try:
            await self._loop()
        finally:
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
                await self._ensure_groups()
                await self._rebuild()
                self._ready.set()
                return
            except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("%s: start failed (%s); retrying in %.1fs", self.consumer, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _ensure_groups(self) -> None:
        assert self._redis is not None
        for name in self.streams:
            try:
                await self._redis.xgroup_create(name, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _rebuild(self) -> None:
        assert self._pool is not None
        specs = await config_sync.all_specs(self._pool)
        self.index.apply_many(s for s in specs if self._owns(s.account_id))
        gc.freeze()  # the index is long-lived: keep it out of every later collection
        log.info("%s: index rebuilt, %d live triggers", self.consumer, self.index.trigger_count())

    def _owns(self, account_id: uuid.UUID) -> bool:
        return self._shard(account_id) in self.shards

    def _shard(self, account_id: uuid.UUID) -> int:
        shard = self._shard_of.get(account_id)
        if shard is None:
            shard = self._shard_of[account_id] = shard_for(account_id, self.config.shards)
        return shard

    # -- configuration ---------------------------------------------------------------------

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
                    entries = await self._read_pending()
                    if not entries:
                        recovering, self._suspect = False, False
                        continue
                else:
                    entries = await self._read(">", self.config.batch_size, self.config.block_ms)
                if entries:
                    await self._process(entries)
                failures = 0
            except Exception as exc:  # never ack on failure; re-read own pending entries after
                self.counters.errors += 1
                failures += 1
                outage = _is_outage(exc)
                self._suspect = not outage
                log.warning("%s: batch failed (%s: %s)", self.consumer, type(exc).__name__, exc,
                            exc_info=not outage)  # fmt: skip
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))
                await self._wait_for_servers()
                recovering = True

    async def _read(self, start: str, count: int, block: int | None) -> list[Entry]:
        assert self._redis is not None
        reply: Any = await self._redis.xreadgroup(
            GROUP, self.consumer, {s: start for s in self.streams}, count=count, block=block
        )
        entries: list[Entry] = []
        for name, items in reply or []:
            stream_name = name.decode() if isinstance(name, bytes) else name
            for entry_id, fields in items:
                entries.append((stream_name, entry_id.decode(), fields or None))
        return entries

    async def _read_pending(self) -> list[Entry]:
        """Own entries delivered before and never acknowledged; over-delivered ones are
        dead-lettered instead of retried forever."""
        count = 1 if self._suspect else self.config.batch_size
        entries = await self._read("0", count, None)
        if not entries:
            return []
        over = await self._over_delivered({(s, i) for s, i, _ in entries})
        if over:
            dead = [
                Rejected(s, i, (f or {}).get(names.EVENT_FIELD.encode(), b""),
                         f"delivered more than {self.config.max_deliveries} times without success")
                for s, i, f in entries if (s, i) in over
            ]  # fmt: skip
            await self._dead_letter(dead)
            await self._ack((r.stream, r.entry_id) for r in dead)
            entries = [e for e in entries if (e[0], e[1]) not in over]
        return entries

    async def _over_delivered(self, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        assert self._redis is not None
        over: set[tuple[str, str]] = set()
        for name in {s for s, _ in wanted}:
            pending: Any = await self._redis.xpending_range(
                name, GROUP, min="-", max="+", count=max(len(wanted), 1), consumername=self.consumer
            )
            for item in pending:
                entry_id = item["message_id"]
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                if (name, entry_id) in wanted and item[
                    "times_delivered"
                ] > self.config.max_deliveries:
                    over.add((name, entry_id))
        return over

    async def _process(self, entries: list[Entry]) -> None:
        field_name = names.EVENT_FIELD.encode()
        events, rejected = decode_batch(
            [(s, i, f.get(field_name) if f else None) for s, i, f in entries]
        )
        if rejected:
            await self._dead_letter(rejected)
        if events:
            inserted = await self._enroll(events)
            await self._publish([(e.id, _enrollment_bytes(e)) for e in inserted])
        await self._ack((s, i) for s, i, _ in entries)
        self.counters.batches += 1
        self.counters.events += len(events)

    async def _enroll(self, events: list[Event]) -> list[Enrollment]:
        assert self._pool is not None
        keys = {(e.envelope.account_id, e.contact_id) for e in events}
        await self._load_contacts(keys)
        working = {k: _copy(self._contacts.get(k)) for k in keys}
        matches, logs, changed = evaluate(events, self.index, working)
        now = datetime.now(UTC)
        async with self._pool.acquire() as conn:
            pairs = {(m.event.envelope.account_id, m.trigger.workflow_id, m.event.contact_id)
                     for m in matches}  # fmt: skip
            history = await stream.load_history(conn, pairs) if pairs else {}
            enrollments, decided = decide(matches, history, now, self.config.loop_limit)
            shard_of = {e.account_id: self._shard(e.account_id) for e in enrollments}
            inserted = await stream.write_batch(
                conn, {k: working[k] for k in changed}, enrollments, logs + decided, shard_of
            )
        self._contacts.update(working)
        self._count(len(matches), inserted, decided)
        return inserted

    async def _load_contacts(self, keys: set[ContactKey]) -> None:
        assert self._pool is not None
        missing = keys - self._contacts.keys()
        if not missing:
            return
        if len(self._contacts) + len(missing) > self.config.contact_cache:
            self._contacts.clear()
        found = await stream.load_contacts(self._pool, missing)
        for key in missing:
            self._contacts[key] = found.get(key) or Contact()

    def _count(self, matched: int, inserted: list[Enrollment], decided: list[Any]) -> None:
        self.counters.matched += matched
        self.counters.enrolled += len(inserted)
        for entry in decided:
            if entry.failure_reason:
                blocked = self.counters.blocked
                blocked[entry.failure_reason] = blocked.get(entry.failure_reason, 0) + 1

    # -- Redis side effects ----------------------------------------------------------------

    async def _dead_letter(self, rejected: list[Rejected]) -> None:
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for r in rejected:
                fields: dict[Any, Any] = {"reason": r.reason, "stream": r.stream}
                fields.update({"entry_id": r.entry_id, names.EVENT_FIELD: r.raw})
                pipe.xadd(names.DLQ_STREAM, fields)
            await pipe.execute()
        self.counters.dead_lettered += len(rejected)
        for r in rejected:
            log.warning(
                "%s: dead-lettered %s %s: %s", self.consumer, r.stream, r.entry_id, r.reason
            )

    async def _publish(self, items: list[tuple[uuid.UUID, bytes]]) -> None:
        """Enrollments to the enrollments stream, then marked published (the outbox)."""
        if not items:
            return
        assert self._redis is not None
        assert self._pool is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, payload in items:
                pipe.xadd(names.ENROLLMENTS_STREAM, {names.ENROLLMENT_FIELD: payload})
            await pipe.execute()
        await stream.mark_published(self._pool, [i for i, _ in items])
        self.counters.published += len(items)

    async def _ack(self, ids: Iterable[tuple[str, str]]) -> None:
        assert self._redis is not None
        by_stream: dict[str, list[str]] = {}
        for name, entry_id in ids:
            by_stream.setdefault(name, []).append(entry_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, entry_ids in by_stream.items():
                pipe.xack(name, GROUP, *entry_ids)
            await pipe.execute()

    async def _housekeeping(self) -> bool:
        """Publish committed-but-unpublished enrollments; claim entries idle on dead consumers.
        True when entries were claimed (they are now this consumer's pending entries)."""
        assert self._redis is not None
        assert self._pool is not None
        await self._publish(await stream.unpublished(self._pool, self.shards, 1000))
        claimed = False
        for name in self.streams:
            ids = await self._redis.xautoclaim(
                name, GROUP, self.consumer, self.config.claim_idle_ms, "0-0", count=100,
                justid=True,
            )  # fmt: skip
            claimed = claimed or bool(ids)
        return claimed

    async def _wait_for_servers(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                assert self._redis is not None
                assert self._pool is not None
                await self._redis.ping()
                await self._pool.fetchval("SELECT 1")
                return
            except Exception as exc:
                log.info("%s: waiting for servers (%s)", self.consumer, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

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
            "dead_lettered": c.dead_lettered,
            "errors": c.errors,
            "blocked": dict(c.blocked),
        }


def _copy(contact: Contact | None) -> Contact:
    if contact is None:
        return Contact()
    return Contact(dict(contact.state), contact.deleted, contact.event_ts)


def _enrollment_bytes(enrollment: Enrollment) -> bytes:
    import orjson

    return orjson.dumps(enrollment.to_json())


_OUTAGE_SQLSTATES = ("08", "57", "55000")  # connection, operator intervention, not accepting


def _is_outage(exc: BaseException) -> bool:
    """A server was unreachable (retry as is) rather than something wrong with the batch."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "").startswith(_OUTAGE_SQLSTATES)
    return isinstance(
        exc,
        RedisError | OSError | asyncpg.InterfaceError | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.CannotConnectNowError | TimeoutError,
    )  # fmt: skip
