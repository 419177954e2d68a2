"""Data that ages out (docs/operations.md §15) with the real partition actors writing: an old
log partition is dropped by the scheduler's job while events keep flowing, and nothing else
is lost: enrollments and recent logs stay, a replayed event still dedupes, single stays
exact (REQ-S-002)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from actors.scheduler import SchedulerConfig, SchedulerWorker
from pipelines.config import Settings
from pipelines.examples import all_of, cond
from pipelines.partitions import LOGS
from store import partitions
from store.ageout import Report, Retention
from tests.support.db import Db, enrollments, logs
from tests.support.factories import Tenant, active_workflow, event
from tests.support.streams import Streams

MakeTenant = Callable[..., Tenant]
HOT = all_of(cond("tag", "equals", "hot"))
# Far enough back that no other test's rows are in it, and past a ten-year retention.
OLD_DAY = date(1990, 3, 1)
RETENTION = Retention(log_days=3650, enrollment_days=3650, live_hours=8 * 24)


def _tagged(account_id: uuid.UUID, contact_id: uuid.UUID, at: datetime | None = None) -> Any:
    sent = event(account_id, "contact.tag_added", contact_id, tag="hot")
    if at is not None:
        sent["timestamp"] = at.isoformat()
    return sent


def _age_out(settings: Settings, retention: Retention) -> Report:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    config = SchedulerConfig(
        settings.shards, settings.database_url, settings.redis_url, retention=retention
    )

    async def go() -> Report:
        worker = SchedulerWorker(config)
        await worker.start()
        try:
            return await worker.age_out(datetime.now(UTC))
        finally:
            await worker.close()

    return asyncio.run(go())


def test_an_old_log_partition_is_dropped_while_events_flow_and_nothing_else_is_lost(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, settings: Settings
) -> None:
    t = live_tenant()
    multiple, _ = active_workflow(
        t.client, "contact", "tag_added", HOT, {"enrollment_limit": "multiple"}
    )
    single, _ = active_workflow(t.client, "contact", "tag_added", HOT)
    db_sync.run(lambda c: partitions.create(c, LOGS, OLD_DAY))  # as the job made it back then
    contact = uuid.uuid4()
    old = _tagged(t.account_id, contact, datetime(1990, 3, 1, 12, tzinfo=UTC))
    recent = _tagged(t.account_id, contact)
    streams.send([old, recent])
    streams.wait_drained()
    assert LOGS.name(OLD_DAY) in {
        r["p"]
        for r in db_sync.fetch(
            "SELECT tableoid::regclass::text AS p FROM trigger_execution_logs"
            " WHERE account_id = $1",
            t.account_id,
        )
    }
    before = enrollments(db_sync, t.account_id)
    assert len(before) == 3  # multiple twice, single once

    streams.send([_tagged(t.account_id, uuid.uuid4()) for _ in range(50)])  # still flowing
    report = _age_out(settings, RETENTION)
    streams.wait_drained()
    assert LOGS.name(OLD_DAY) in report.dropped
    assert not db_sync.value("SELECT to_regclass($1) IS NOT NULL", LOGS.name(OLD_DAY))

    after = enrollments(db_sync, t.account_id)
    assert len(after) == 3 + 2 * 50
    assert {r["id"] for r in before} <= {r["id"] for r in after}
    kept = [
        g for g in logs(db_sync, t.account_id) if g["event_id"] == uuid.UUID(recent["event_id"])
    ]
    assert len(kept) == 2  # the recent event's decisions, one per workflow

    # a replay of the recent event, and a new event for the same contact
    streams.send([recent, old, _tagged(t.account_id, contact)])
    streams.wait_drained()
    final = enrollments(db_sync, t.account_id)
    ours = [r for r in final if r["contact_id"] == contact]
    assert sum(1 for r in ours if str(r["workflow_id"]) == single["id"]) == 1  # single: exact
    assert sum(1 for r in ours if str(r["workflow_id"]) == multiple["id"]) == 3  # + the new one
    replayed = [g for g in logs(db_sync, t.account_id) if g["event_id"] == kept[0]["event_id"]]
    assert len(replayed) == 2  # the replay logged nothing


def test_the_log_retention_setting_is_honoured(
    db_sync: Db, settings: Settings, monkeypatch: Any
) -> None:
    """A partition inside the retention stays; a shorter retention drops it."""
    day = date(2010, 6, 1)
    db_sync.run(lambda c: partitions.create(c, LOGS, day))
    years = (datetime.now(UTC).date() - day).days
    monkeypatch.setenv("HAIRTRIGGER_LOG_RETENTION_DAYS", str(years + 30))
    long = Settings.from_env()
    keep = Retention(long.log_retention_days, 0, 0)
    assert LOGS.name(day) not in _age_out(settings, keep).dropped
    assert db_sync.value("SELECT to_regclass($1) IS NOT NULL", LOGS.name(day))
    monkeypatch.setenv("HAIRTRIGGER_LOG_RETENTION_DAYS", str(years - 30))
    short = Retention(Settings.from_env().log_retention_days, 0, 0)
    assert LOGS.name(day) in _age_out(settings, short).dropped
