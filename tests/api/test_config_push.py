"""Config writes are bounded (issue 21 item 9): a change answers once it has committed and the
partitions have applied it, or after HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S with `Config-Push:
pending`; reconciliation then delivers it (docs/contract.md §4, "Read-your-writes")."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import ray

from actors.client import Partitions
from api.app import create_app
from pipelines.config import Settings
from pipelines.examples import all_of, cond, trigger_body
from tests.support.db import Db, enrollments
from tests.support.factories import Tenant, event, new_workflow, tenants
from tests.support.servers import serve
from tests.support.streams import Streams

MakeTenant = Callable[..., Tenant]
HOT = all_of(cond("tag", "equals", "hot"))
TIMEOUT_S = 0.5


@ray.remote(num_cpus=0)
class Unanswering:
    """A partition actor hung in a long call: it never answers a push."""

    def apply_config(self, specs: list[Any]) -> int:
        time.sleep(3600)
        return 0


class HungPartitions(Partitions):
    """The deployment's partitions as a gateway sees them when every one of them hangs."""

    def __init__(self, like: Partitions, actor: Any) -> None:
        super().__init__(like.partitions, like.shards)
        self._actor = actor

    def handle(self, partition: int) -> Any:
        return self._actor


@pytest.fixture
def hung_api(settings: Settings, partitions: Partitions, db_sync: Db) -> Iterator[MakeTenant]:
    """Tenants of a gateway whose pushes go to a hung actor; the session's partition actors
    (`partitions`) serve the streams, but are never told of its changes."""
    actor = Unanswering.remote()  # type: ignore[attr-defined]
    bounded = replace(settings, config_push_timeout_s=TIMEOUT_S)
    app = create_app(bounded, sync=HungPartitions(partitions, actor))
    try:
        with serve(app) as url, tenants(db_sync, url) as make:
            yield make
    finally:
        ray.kill(actor)


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_hung_partition_does_not_hold_config_writes_and_reconciliation_delivers(
    hung_api: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = hung_api()
    workflow = new_workflow(t.client)
    path = f"/workflows/{workflow['id']}"
    body = {**trigger_body("tag_added"), "filters": HOT, "settings": {}}
    calls = [
        lambda: t.client.post(f"{path}/trigger", json=body),
        lambda: t.client.patch(path, json={"status": "active"}),
    ]
    for call in calls:
        response, took = timed(call)
        assert response.is_success, response.text
        assert response.headers["Config-Push"] == "pending"
        assert took < TIMEOUT_S + 5, took  # bounded by the timeout, not by the hung actor
    assert t.client.get(f"{path}/trigger").json()["filters"] == HOT  # committed
    # The partitions serving the streams were never pushed to: their reconciliation finds it.
    deadline = time.monotonic() + 60
    while not enrollments(db_sync, t.account_id):
        assert time.monotonic() < deadline, "reconciliation never delivered the change"
        streams.send([event(t.account_id, "contact.tag_added", tag="hot")])
        streams.wait_drained()
    deleted, took = timed(lambda: t.client.delete(path))
    assert deleted.status_code == 204
    assert deleted.headers["Config-Push"] == "pending"
    assert took < TIMEOUT_S + 5, took


def test_changes_pushed_to_live_partitions_say_applied(live_tenant: MakeTenant) -> None:
    t = live_tenant()
    workflow = new_workflow(t.client)
    path = f"/workflows/{workflow['id']}"
    created = t.client.post(f"{path}/trigger", json=trigger_body("tag_added"))
    assert created.headers["Config-Push"] == "applied"
    renamed = t.client.patch(path, json={"name": "nothing the partitions match"})
    assert renamed.headers["Config-Push"] == "applied"


def test_without_partition_actors_a_change_is_pending_and_documented(
    tenant: MakeTenant, api_url: str
) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    created = t.client.post(f"/workflows/{workflow['id']}/trigger", json=trigger_body("tag_added"))
    assert created.headers["Config-Push"] == "pending"
    document = httpx.get(f"{api_url}/openapi.json").json()
    writes = [
        ("/api/v1/workflows/{workflow_id}", "patch", "200"),
        ("/api/v1/workflows/{workflow_id}", "delete", "204"),
        ("/api/v1/workflows/{workflow_id}/trigger", "post", "201"),
        ("/api/v1/workflows/{workflow_id}/trigger/{trigger_id}", "put", "200"),
        ("/api/v1/workflows/{workflow_id}/trigger/{trigger_id}", "delete", "204"),
    ]
    for path, method, status in writes:
        header = document["paths"][path][method]["responses"][status]["headers"]["Config-Push"]
        assert header["schema"]["enum"] == ["applied", "pending"], (path, method)
