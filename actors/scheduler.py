"""The scheduler: plans time-trigger occurrences, emits them as time.* events into the shards,
and releases enrollments queued for business hours. `SchedulerWorker.tick(now)` does one round
with any clock; the Ray actor runs it every few seconds with the real one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import ray

from actors.logs import configure as configure_logging
from actors.loop_thread import LoopThread
from actors.ray_metrics import RaySink
from pipelines import stream_metrics as sm
from pipelines.index import InvalidSpec, TriggerSpec
from pipelines.messages import encode_event
from pipelines.metrics import Registry, Sink
from pipelines.schedule import Occurrence, date_occurrences, schedule_occurrences
from pipelines.settings import MAX_CATCH_UP_HOURS
from pipelines.sharding import shard_for
from pipelines.time_events import lookup_keys, time_event, zone
from store import config_sync, db, stream
from store import schedule as store
from store.ageout import Report, Retention, age_out
from store.stats import queued_enrollments
from streams.clients import AsyncRedis, async_client
from streams.events import Router, add_events, publish_enrollments

log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEDULER_NAME = "scheduler"
PRUNE_EVERY = timedelta(hours=1)
PRUNE_MARGIN = timedelta(days=1)  # past the longest catch-up: planning never goes back there
KEEP_STATS = timedelta(days=400)  # the longest stats window is 366 days


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    shards: int
    database_url: str
    redis_url: str
    tick_s: float = 5.0
    plan_every_s: float = 300.0
    plan_ahead: timedelta = timedelta(hours=36)
    batch: int = 5000
    autorun: bool = True  # False: only explicit tick(now) calls (tests with a fake clock)
    # Logs and ended enrollments that age out (docs/operations.md §15), hourly on the real
    # clock in run(); None: nothing ages out.
    retention: Retention | None = None


@dataclass(slots=True)
class Counters:
    emitted: int = 0
    skipped: int = 0
    stale: int = 0
    released: int = 0
    ticks: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class SchedulerWorker:
    def __init__(self, config: SchedulerConfig, metrics_sink: Sink | None = None) -> None:
        self.config = config
        self.counters = Counters()
        self.metrics = Registry(sm.SCHEDULER_METRICS, metrics_sink)
        self.started_at = datetime.now(UTC)
        self._pool: asyncpg.Pool | None = None
        self._redis: AsyncRedis | None = None
        self._router = Router(config.shards)
        self._stopping = asyncio.Event()
        self._pruned_at: datetime | None = None
        self._aged_at: datetime | None = None
        self._skipped_invalid: dict[Any, int] = {}  # trigger id -> the version logged

    async def start(self) -> None:
        self._pool = await db.create_pool(self.config.database_url, 1, 4)
        self._redis = async_client(self.config.redis_url)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        if self._pool is not None:
            await self._pool.close()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick(datetime.now(UTC))
                await self._age_out_hourly(datetime.now(UTC))
            except Exception as exc:  # servers away: the next tick tries again
                log.warning("scheduler tick failed (%s: %s)", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.tick_s)

    async def stop(self) -> None:
        self._stopping.set()

    # -- one round -----------------------------------------------------------------------

    async def tick(self, now: datetime, max_batches: int | None = None) -> dict[str, Any]:
        """Plan, emit what is due by `now`, release queued enrollments. `max_batches` stops
        emission early (as a crash would); the next tick carries on."""
        pool = self._need_pool()
        triggers = self._valid(await config_sync.time_specs(pool))
        for spec, account_tz in triggers.values():
            tz = spec.settings.timezone or account_tz
            if spec.event.name == "recurring_schedule":
                await self._plan_runs(spec, tz, now)
            else:
                await self._plan_dates(spec, tz, now)
        budget = [max_batches if max_batches is not None else 1_000_000]
        await self._emit_agenda(triggers, now, budget)
        await self._emit_runs(triggers, now, budget)
        await self._release(now)
        await self._prune(now)
        self.counters.ticks += 1
        self.metrics.inc(sm.TICKS)
        self.metrics.set(sm.WAITING, await queued_enrollments(pool))
        return self.stats()

    def _valid(
        self, found: list[tuple[TriggerSpec | InvalidSpec, str]]
    ) -> dict[Any, tuple[TriggerSpec, str]]:
        """The time triggers to plan, by id; one whose stored configuration no longer validates
        is skipped (logged once per version), so it stops no other."""
        triggers: dict[Any, tuple[TriggerSpec, str]] = {}
        invalid: dict[Any, int] = {}
        for spec, tz in found:
            if isinstance(spec, TriggerSpec):
                triggers[spec.trigger_id] = (spec, tz)
                continue
            invalid[spec.trigger_id] = spec.sync_version
            if self._skipped_invalid.get(spec.trigger_id) != spec.sync_version:
                log.error(
                    "scheduler: time trigger %s (account %s) skipped: its stored configuration"
                    " is invalid: %s",
                    spec.trigger_id,
                    spec.account_id,
                    spec.reason,
                )
        self._skipped_invalid = invalid
        return triggers

    def _need_pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "start() first"
        return self._pool

    async def _prune(self, now: datetime) -> None:
        """Hourly: settled agenda rows and runs past any catch-up, stats past any window."""
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        done_before = now - timedelta(hours=MAX_CATCH_UP_HOURS) - PRUNE_MARGIN
        removed = await store.prune(self._need_pool(), done_before, now - KEEP_STATS)
        if any(removed.values()):
            log.info("scheduler pruned %s", removed)

    async def _age_out_hourly(self, now: datetime) -> None:
        if self.config.retention is None:
            return
        if self._aged_at is not None and now - self._aged_at < PRUNE_EVERY:
            return
        self._aged_at = now
        await self.age_out(now)

    async def age_out(self, now: datetime) -> Report:
        """Make the coming partitions, drop those past retention (or skip them while the
        tables are busy: the next round tries again), move ended enrollments to the history."""
        assert self.config.retention is not None, "no retention configured"
        async with self._need_pool().acquire() as conn:
            report = await age_out(conn, self.config.retention, now)
        if report.dropped or report.skipped or report.moved or report.deleted or report.pruned:
            log.info("aged out %s", report)
        return report

    def _window(
        self, spec: TriggerSpec, now: datetime, mark: datetime | None
    ) -> tuple[datetime, datetime | None]:
        """Where planning starts, and up to where occurrences are too old to catch up (None:
        nothing was missed)."""
        catch_up = timedelta(hours=spec.settings.catch_up_hours or 24)
        if mark is None:  # a new trigger fires from now on, nothing retroactive
            return now, None
        if mark < now:  # the scheduler was away: catch up what is young enough
            oldest = now - catch_up
            return (max(mark, oldest), oldest if mark < oldest else None)
        return now - timedelta(seconds=2 * self.config.plan_every_s), None

    async def _plan_dates(self, spec: TriggerSpec, account_tz: str, now: datetime) -> None:
        pool = self._need_pool()
        state = await store.watermark(pool, spec.trigger_id)
        mark = state[0] if state else None
        recent = state is not None and state[1] > now - timedelta(seconds=self.config.plan_every_s)
        if recent and mark is not None and mark > now:
            return  # planned recently and far enough ahead
        start, too_old = self._window(spec, now, mark)
        horizon = now + self.config.plan_ahead
        field = spec.settings.date_field or "birthday"
        if too_old is not None and mark is not None:
            await self._log_missed_dates(spec, account_tz, field, mark, too_old)
        keys = lookup_keys(spec, start, horizon)
        rows = []
        for contact_id, day, tz in await store.dated_contacts(pool, spec.account_id, field, **keys):
            for o in date_occurrences(
                spec.event.name, day, spec.settings, zone(tz, account_tz), start, horizon
            ):
                rows.append((spec.trigger_id, contact_id, o.key, spec.account_id, field, day, o.at))
        await store.add_agenda(pool, rows)
        await store.set_watermark(pool, spec.trigger_id, horizon, now)

    async def _log_missed_dates(
        self, spec: TriggerSpec, account_tz: str, field: str, start: datetime, end: datetime
    ) -> None:
        pool = self._need_pool()
        keys = lookup_keys(spec, start, end)
        missed = []
        for contact_id, day, tz in await store.dated_contacts(pool, spec.account_id, field, **keys):
            for o in date_occurrences(
                spec.event.name, day, spec.settings, zone(tz, account_tz), start, end
            ):
                missed.append(_skip_row(spec, contact_id, o))
        await store.log_skipped(pool, missed)
        self._count_skips(spec, len(missed))

    def _count_skips(self, spec: TriggerSpec, n: int) -> None:
        if n:
            self.counters.skipped += n
            self.metrics.inc(sm.SKIPPED, n)
            log.warning(
                "trigger %s: %d occurrence(s) older than catch_up_hours skipped", spec.trigger_id, n
            )

    async def _plan_runs(self, spec: TriggerSpec, account_tz: str, now: datetime) -> None:
        pool = self._need_pool()
        state = await store.watermark(pool, spec.trigger_id)
        mark = state[0] if state else None
        start, too_old = self._window(spec, now, mark)
        if mark is not None and mark >= now:
            return
        tz = zone(None, account_tz)
        if too_old is not None and mark is not None:
            missed = schedule_occurrences(spec.settings, tz, mark, too_old)
            await store.log_skipped(pool, [_skip_row(spec, None, o) for o in missed])
            self._count_skips(spec, len(missed))
        due = schedule_occurrences(spec.settings, tz, start, now)
        await store.add_runs(pool, [(spec.trigger_id, o.key, spec.account_id, o.at) for o in due])
        await store.set_watermark(pool, spec.trigger_id, now, now)

    # -- emission ------------------------------------------------------------------------

    async def _emit_agenda(
        self, triggers: dict[Any, tuple[TriggerSpec, str]], now: datetime, budget: list[int]
    ) -> None:
        pool = self._need_pool()
        while budget[0] > 0:
            rows = await store.due_agenda(pool, now, self.config.batch)
            if not rows:
                return
            budget[0] -= 1
            events, emitted, skipped, stale, logs = [], [], [], [], []
            for r in rows:
                key = (r["trigger_id"], r["contact_id"], r["occurrence"])
                found = triggers.get(r["trigger_id"])
                if found is None or r["deleted"] or r["current_day"] != r["day"]:
                    stale.append(key)  # paused, deleted contact, or the date has changed
                    continue
                spec = found[0]
                occurrence = Occurrence(r["occurrence"], r["due_at"])
                if r["due_at"] < now - timedelta(hours=spec.settings.catch_up_hours or 24):
                    skipped.append(key)
                    logs.append(_skip_row(spec, r["contact_id"], occurrence))
                    continue
                events.append(time_event(spec, r["contact_id"], occurrence, r["field"]))
                emitted.append(key)
            await self._xadd(events)
            await store.log_skipped(pool, logs)
            for status, keys in (("emitted", emitted), ("skipped", skipped), ("stale", stale)):
                await store.mark_agenda(pool, keys, status)
            self._count(events, len(skipped), len(stale))

    async def _emit_runs(
        self, triggers: dict[Any, tuple[TriggerSpec, str]], now: datetime, budget: list[int]
    ) -> None:
        """Each due occurrence of a recurring schedule: an event for every live contact, a page
        at a time, the cursor saved after each page."""
        pool = self._need_pool()
        for run in await store.due_runs(pool, now):
            found = triggers.get(run["trigger_id"])
            if found is None:
                await store.advance_run(pool, run["trigger_id"], run["occurrence"], None, "skipped")
                continue
            spec, occurrence = found[0], Occurrence(run["occurrence"], run["due_at"])
            cursor = run["cursor"]
            while budget[0] > 0:
                budget[0] -= 1
                page = await store.contacts_after(pool, spec.account_id, cursor, self.config.batch)
                events = [time_event(spec, c, occurrence, None) for c in page]
                await self._xadd(events)
                cursor = page[-1] if page else cursor
                done = len(page) < self.config.batch
                status = "done" if done else "pending"
                await store.advance_run(pool, spec.trigger_id, occurrence.key, cursor, status)
                self._count(events, 0, 0)
                if done:
                    break

    async def _xadd(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        assert self._redis is not None
        keys = [(e["account_id"], e["data"]["contact_id"]) for e in events]
        streams = await self._router.streams(self._redis, keys)
        await add_events(self._redis, list(zip(streams, map(encode_event, events), strict=True)))

    def _count(self, events: list[dict[str, Any]], skipped: int, stale: int) -> None:
        c = self.counters
        c.emitted += len(events)
        c.skipped += skipped
        c.stale += stale
        self.metrics.inc(sm.SKIPPED, skipped)
        self.metrics.inc(sm.STALE, stale)
        kinds = Counter(e["event_type"] for e in events)
        for kind, n in kinds.items():
            c.by_kind[kind] = c.by_kind.get(kind, 0) + n
            self.metrics.inc(sm.EMITTED, n, event=kind.removeprefix("time."))

    async def _release(self, now: datetime) -> None:
        """Queued enrollments whose opening time has come: triggered, published once."""
        pool = self._need_pool()
        async with pool.acquire() as conn, conn.transaction():
            released = await store.release_queued(conn, now, 10_000)
            shards = [(i, shard_for(a, self.config.shards)) for i, a, _ in released]
            await store.add_outbox(conn, shards)
        if released:
            assert self._redis is not None
            await publish_enrollments(self._redis, [payload for _, _, payload in released])
            await stream.mark_published(pool, [i for i, _, _ in released])
            self.counters.released += len(released)
            self.metrics.inc(sm.RELEASED, len(released))

    def metrics_snapshot(self) -> dict[str, Any]:
        return {"started_at": self.started_at.isoformat(), "metrics": self.metrics.snapshot()}

    def stats(self) -> dict[str, Any]:
        c = self.counters
        return {
            "ticks": c.ticks,
            "emitted": c.emitted,
            "skipped": c.skipped,
            "stale": c.stale,
            "released": c.released,
            "by_kind": dict(c.by_kind),
        }


async def _snapshot(worker: SchedulerWorker) -> dict[str, Any]:
    return worker.metrics_snapshot()  # on the scheduler's loop, between records


def _skip_row(spec: TriggerSpec, contact_id: Any, occurrence: Occurrence) -> tuple[Any, ...]:
    details = {"occurrence": occurrence.key, "due_at": occurrence.at.isoformat()}
    return (
        spec.account_id,
        spec.workflow_id,
        spec.trigger_id,
        contact_id,
        spec.event.event_type,
        details,
    )


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)
class SchedulerActor:
    """The scheduler as a named, restartable Ray actor; its loop starts at construction."""

    def __init__(self, config: SchedulerConfig) -> None:
        configure_logging()
        self._thread = LoopThread("scheduler")
        self._worker = SchedulerWorker(config, RaySink(sm.SCHEDULER_METRICS))
        self._thread.call(self._worker.start())
        self._running = self._thread.submit(self._worker.run()) if config.autorun else None

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 300) -> T:
        return self._thread.call(coro, timeout)

    def tick(self, now: str, max_batches: int | None = None) -> dict[str, Any]:
        return self._call(self._worker.tick(datetime.fromisoformat(now), max_batches))

    def stats(self) -> dict[str, Any]:
        return self._worker.stats()

    def metrics(self) -> dict[str, Any]:
        """The scheduler's metric state as plain data."""
        return self._call(_snapshot(self._worker), timeout=60)

    def pid(self) -> int:
        return os.getpid()

    def stop(self) -> bool:
        self._call(self._worker.stop())
        if self._running is not None:
            self._running.result(timeout=60)
        self._call(self._worker.close())
        return True
