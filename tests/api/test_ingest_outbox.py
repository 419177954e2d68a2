"""Ingest that survives Redis (docs/architecture.md §4): while the gateway cannot reach Redis,
accepted events wait in Postgres and are relayed in order once it is back; each enrolls exactly
once."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from actors.client import Partitions
from api.app import create_app
from pipelines.config import Settings
from pipelines.examples import all_of, cond
from streams import names
from tests.support.db import Db, enrollments
from tests.support.factories import active_workflow, event, tenant_factory
from tests.support.proxy import TcpProxy, through
from tests.support.servers import serve
from tests.support.streams import Streams
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow


def _payload(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A shard entry's event; {} for the poison other tests leave on the same shard."""
    try:
        found = orjson.loads(fields.get(names.EVENT_FIELD.encode(), b"null"))
    except orjson.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def test_events_accepted_during_a_redis_outage_enroll_once_in_order(
    settings: Settings, partitions: Partitions, db_sync: Db, streams: Streams, proxy: TcpProxy
) -> None:
    assert settings.redis_url is not None
    gateway = dataclasses.replace(settings, redis_url=through(settings.redis_url, proxy.port))
    with serve(create_app(gateway, sync=partitions)) as url:
        factory = tenant_factory(db_sync, url)
        t = next(factory)()
        active_workflow(t.client, "contact", "tag_added", all_of(cond("tag", "equals", "lead")))
        sent: list[str] = []

        def post(n: int) -> bool:
            batch = [event(t.account_id, "contact.tag_added", tag="lead") for _ in range(n)]
            response = t.client.post("/events", json=batch)
            assert response.status_code == 202, response.text
            sent.extend(e["event_id"] for e in batch)
            held: bool = response.json()["held"]
            return held

        assert [post(10) for _ in range(3)] == [False] * 3
        proxy.cut()
        assert [post(20) for _ in range(3)] == [True] * 3  # still 202: held in Postgres
        proxy.restore()
        post(30)  # queues behind the held ones, or goes straight on if they have left
        held = "SELECT count(*) FROM ingest_outbox WHERE account_id = $1"
        wait_until(lambda: db_sync.value(held, t.account_id) == 0, "the relay to finish")
        wait_until(lambda: len(enrollments(db_sync, t.account_id)) >= 120, "120 enrollments")
        streams.wait_drained()
        enrolled = [str(r["event_id"]) for r in enrollments(db_sync, t.account_id)]
        assert sorted(enrolled) == sorted(sent)  # every accepted event, once
        # on the shard stream, the account's events are in the order they were accepted
        on_stream = [
            _payload(fields) for _, fields in streams.client.xrange(streams.stream_of(t.account_id))
        ]
        ours = [e["event_id"] for e in on_stream if e.get("account_id") == str(t.account_id)]
        assert list(dict.fromkeys(ours)) == sent
        next(factory, None)


def test_ingest_without_redis_or_postgres_is_refused(
    settings: Settings, db_sync: Db, proxy: TcpProxy
) -> None:
    """Redis unreachable and the outbox cannot be written either: 503, nothing accepted."""
    assert settings.redis_url is not None
    gateway = dataclasses.replace(
        settings,
        redis_url=through(settings.redis_url, proxy.port),
    )
    with serve(create_app(gateway)) as url:
        factory = tenant_factory(db_sync, url)
        t = next(factory)()
        proxy.cut()
        db_sync.run(lambda c: c.execute("ALTER TABLE ingest_outbox RENAME TO ingest_outbox_away"))
        try:
            response = t.client.post("/events", json=event(t.account_id, "contact.tag_added"))
        finally:
            db_sync.run(
                lambda c: c.execute("ALTER TABLE ingest_outbox_away RENAME TO ingest_outbox")
            )
        assert response.status_code == 503, response.text
        assert response.json()["title"] == "Service unavailable"
        next(factory, None)
