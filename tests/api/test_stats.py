"""GET /api/v1/stats without partition actors: the Redis and Postgres figures, system-wide,
the same for every operator key (scope stats:read; docs/operations.md §11). With actors:
tests/actors/test_metrics.py."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import redis

from actors.worker import PartitionWorker, WorkerConfig
from api.app import create_app
from api.routes.stats import Stats
from pipelines import errors, scopes
from pipelines.config import Settings
from pipelines.examples import all_of, cond
from pipelines.index import spec_from_config
from pipelines.stats_report import build_report
from pipelines.triggers import validate_trigger
from streams import names
from tests.support.db import Db
from tests.support.factories import Tenant, tenant_factory
from tests.support.problems import problem
from tests.support.proxy import TcpProxy
from tests.support.servers import serve

MakeTenant = Callable[..., Tenant]


def _xinfo(client: redis.Redis, shard: int) -> tuple[int, int, int | None]:
    """(length, pending, lag) as Redis tells it, to compare with the endpoint."""
    stream = names.events_stream(shard)
    length = int(client.xlen(stream))
    groups = client.xinfo_groups(stream) if client.exists(stream) else []
    for g in groups:  # type: ignore[union-attr]
        if g["name"].decode() == names.CONSUMER_GROUP:
            return length, int(g["pending"]), g["lag"]
    return length, 0, length


def test_stats_without_actors_give_the_streams_lag_per_shard(
    tenant: MakeTenant, redis_url: str, settings: Settings
) -> None:
    t = tenant(scopes=(scopes.SCOPE_STATS_READ,))
    shard = 1
    stream = names.events_stream(shard)
    with redis.Redis.from_url(redis_url) as client:
        if not client.exists(stream):
            client.xgroup_create(stream, names.CONSUMER_GROUP, id="0", mkstream=True)
        client.xadd(stream, {names.EVENT_FIELD: b"{}"})  # not consumed: no actors here
        response = t.client.get("/stats")
        assert response.status_code == 200, response.text
        body = response.json()
        expected = _xinfo(client, shard)
        dlq = int(client.xlen(names.DLQ_STREAM))
    assert body["actors_running"] is False
    assert body["partitions"] == []
    assert body["scheduler"] is None
    assert [s["shard"] for s in body["shards"]] == list(range(settings.shards))
    got = body["shards"][shard]
    assert (got["stream_length"], got["pending"], got["lag"]) == expected
    assert got["partition"] is None
    assert got["consumed"] is None
    assert body["totals"]["dead_letter_length"] == dlq
    assert body["totals"]["stream_length"] >= got["stream_length"] >= 1
    assert isinstance(body["totals"]["enrollments_waiting"], int)


def test_stats_are_system_wide_and_the_same_for_every_account(tenant: MakeTenant) -> None:
    a, b = tenant(), tenant(scopes=(scopes.SCOPE_STATS_READ,))
    first, second = a.client.get("/stats").json(), b.client.get("/stats").json()
    for key in ("actors_running", "totals", "partitions", "shards", "scheduler"):
        assert first[key] == second[key], key
    for body in (first, second):
        text = str(body)
        assert str(a.account_id) not in text
        assert str(b.account_id) not in text


def test_enrollments_waiting_for_business_hours_are_counted_across_accounts(
    tenant: MakeTenant, db_sync: Db
) -> None:
    """Another account's queued enrollment counts too: a system-wide figure, not the caller's."""
    a, b = tenant(), tenant(scopes=(scopes.SCOPE_STATS_READ,))
    db_sync.run(
        lambda c: c.execute(
            "INSERT INTO workflow_enrollments (id, account_id, workflow_id, trigger_id, contact_id,"
            " event_id, status, run_at) VALUES ($1, $2, $1, $1, $1, $1, 'queued', now())",
            uuid.uuid4(),
            a.account_id,
        )
    )
    waiting = db_sync.value("SELECT count(*) FROM workflow_enrollments WHERE status = 'queued'")
    assert waiting >= 1
    assert b.client.get("/stats").json()["totals"]["enrollments_waiting"] == waiting


def test_stats_count_the_gateway_requests_by_route_template(tenant: MakeTenant) -> None:
    t = tenant()
    workflow_id = uuid.uuid4()
    assert t.client.get(f"/workflows/{workflow_id}").status_code == 404
    assert t.client.get(f"/no-such-thing/{workflow_id}").status_code == 404
    body = t.client.get("/stats").json()
    routes = {r["route"]: r for r in body["gateway"]}
    found = routes["GET /api/v1/workflows/{workflow_id}"]
    assert found["by_status"]["404"] >= 1
    assert found["ms"]["count"] == found["requests"]
    assert routes["unmatched"]["by_status"]["404"] >= 1
    assert str(workflow_id) not in str(body)


def test_stats_need_a_key_with_stats_read(tenant: MakeTenant) -> None:
    t = tenant(scopes=(scopes.SCOPE_WORKFLOW_READ, scopes.SCOPE_WORKFLOW_EDIT))
    problem(t.client.get("/stats"), 403, errors.FORBIDDEN)
    t.client.headers.pop("Authorization")
    problem(t.client.get("/stats"), 401, errors.UNAUTHORIZED)


def test_stats_are_documented_in_openapi(tenant: MakeTenant) -> None:
    t = tenant()
    spec = t.client.get(t.client.base_url.copy_with(path="/openapi.json")).json()
    get = spec["paths"]["/api/v1/stats"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Stats"
    )
    assert {"401", "403"} <= set(get["responses"])
    assert "stats:read" in get["description"]


def test_stats_without_redis_are_a_503_problem(
    settings: Settings, db_sync: Db, proxy: TcpProxy
) -> None:
    assert settings.redis_url is not None
    parts = urlsplit(settings.redis_url)
    through = urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))
    with serve(create_app(dataclasses.replace(settings, redis_url=through))) as url:
        factory = tenant_factory(db_sync, url)
        t = next(factory)()
        proxy.cut()
        problem(t.client.get("/stats"), 503, errors.SERVICE_UNAVAILABLE)
        proxy.restore()
        assert t.client.get("/stats").status_code == 200
        next(factory, None)


def test_a_partition_reports_its_accounts_index_sizes() -> None:
    """docs/contract.md §15: each partition's stats give its index's estimated size, and its
    largest accounts by that estimate, as GET /stats documents them."""
    worker = PartitionWorker(WorkerConfig(0, 1, 1, "postgresql://unused", "redis://unused"))
    big, small = uuid.UUID(int=7), uuid.UUID(int=8)
    tags = [f"tag-{n}" for n in range(200)]
    for account, filters in (
        (big, all_of(cond("tag", "in", tags))),
        (big, all_of(cond("tag", "equals", "vip"))),
        (small, all_of(cond("tag", "equals", "vip"))),
    ):
        config = validate_trigger("contact", "tag_added", filters, {})
        worker.index.apply(
            spec_from_config(
                config, trigger_id=uuid.uuid4(), workflow_id=uuid.uuid4(), account_id=account
            )
        )
    report = worker.stats()["index"]
    assert (report["accounts"], report["triggers"]) == (2, 3)
    largest = report["largest_accounts"]
    assert [(a["account_id"], a["triggers"]) for a in largest] == [(str(big), 2), (str(small), 1)]
    assert largest[0]["index_bytes"] > largest[1]["index_bytes"] > 0
    assert report["index_bytes"] == sum(a["index_bytes"] for a in largest)
    found = {"available": True, **worker.metrics_snapshot()}
    stats = build_report({"partitions": [found], "scheduler": None}, 1, [], 0, 0, {})
    shown = Stats.model_validate(stats).partitions[0].index
    assert shown is not None
    totals = {k: v for k, v in report.items() if k != "largest_accounts"}
    assert shown.model_dump(mode="json") == totals  # /stats names no account
