"""Quotas per account over HTTP (docs/contract.md §15): the quota + 1st workflow, trigger or
over-size filter is a 409 problem naming the quota, under it everything works, deleting frees
it, concurrent creates at the edge do not overshoot, and GET /account/settings shows each quota
with its use. Small quotas come from a gateway of their own on the session's database; the
session's gateway keeps the defaults."""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.schemas import AccountQuotas
from pipelines import errors, quotas, sizes
from pipelines.config import Settings
from pipelines.examples import all_of, cond
from pipelines.quotas import Quotas
from pipelines.triggers import validate_trigger
from store import quotas as store_quotas
from tests.support.db import Db
from tests.support.factories import Tenant, new_trigger, new_workflow, tenant_factory
from tests.support.problems import problem
from tests.support.servers import serve

MakeTenant = Callable[..., Tenant]


def tag_trigger(tag: str) -> dict[str, Any]:
    return {
        "trigger_type": "contact",
        "trigger_event": "tag_added",
        "filters": all_of(cond("tag", "equals", tag)),
    }


def list_trigger(values: int) -> dict[str, Any]:
    """A trigger whose filter grows with `values`: a tag among that many."""
    tags = [f"tag-{n:05d}" for n in range(values)]
    return {
        "trigger_type": "contact",
        "trigger_event": "tag_added",
        "filters": all_of(cond("tag", "in", tags)),
    }


def estimate(body: dict[str, Any]) -> int:
    config = validate_trigger(body["trigger_type"], body["trigger_event"], body["filters"], {})
    return sizes.index_bytes(config.filters)


SMALL_LIST, LARGE_LIST, TINY = list_trigger(3), list_trigger(30), tag_trigger("tiny")
# The index budget holds two small triggers, or a tiny and a large one, not a small and a
# large one.
SMALL = Quotas(
    workflows=4,
    triggers=3,
    filter_bytes=1024,
    index_bytes=estimate(TINY)
    + estimate(LARGE_LIST)
    + (estimate(SMALL_LIST) - estimate(TINY)) // 2,
)


@pytest.fixture(scope="module")
def small_url(settings: Settings) -> Iterator[str]:
    with serve(create_app(dataclasses.replace(settings, quotas=SMALL))) as url:
        yield url


@pytest.fixture
def small(db_sync: Db, small_url: str) -> Iterator[MakeTenant]:
    """Tenants of a gateway with SMALL quotas."""
    yield from tenant_factory(db_sync, small_url)


def quota_problem(response: httpx.Response, quota: str, limit: int, use: int) -> dict[str, Any]:
    body = problem(response, 409, errors.QUOTA_EXCEEDED)
    assert (body["quota"], body["limit"], body["use"]) == (quota, limit, use), body
    assert quota in body["detail"]
    return body


def quota_use(client: httpx.Client) -> dict[str, dict[str, int]]:
    response = client.get("/account/settings")
    assert response.status_code == 200, response.text
    found: dict[str, dict[str, int]] = response.json()["quotas"]
    return found


def counted(db_sync: Db, t: Tenant) -> quotas.Usage:
    found: quotas.Usage = db_sync.run(lambda c: store_quotas.counted(c, t.account_id))
    return found


def test_the_quota_plus_first_workflow_is_refused_naming_the_quota(small: MakeTenant) -> None:
    t = small()
    made = [new_workflow(t.client, name=f"w{n}") for n in range(SMALL.workflows)]
    body = quota_problem(
        t.client.post("/workflows", json={"name": "one too many"}), "workflows", 4, 4
    )
    assert body["requested"] == 1
    assert quotas.env_name("workflows") in body["detail"]
    listed = t.client.get("/workflows").json()["items"]
    assert [w["id"] for w in listed] == [w["id"] for w in made]  # nothing was saved
    assert t.client.delete(f"/workflows/{made[0]['id']}").status_code == 204
    new_workflow(t.client, name="in the freed place")
    quota_problem(t.client.post("/workflows", json={"name": "again"}), "workflows", 4, 4)


def test_the_quota_plus_first_trigger_is_refused_and_deleting_frees_it(
    small: MakeTenant, db_sync: Db
) -> None:
    t = small()
    workflows = [new_workflow(t.client, name=f"w{n}") for n in range(4)]
    triggers = [
        new_trigger(t.client, w["id"], tag_trigger(f"t{n}")) for n, w in enumerate(workflows[:3])
    ]
    refused = t.client.post(f"/workflows/{workflows[3]['id']}/trigger", json=tag_trigger("t3"))
    quota_problem(refused, "triggers", 3, 3)
    assert t.client.get(f"/workflows/{workflows[3]['id']}/trigger").status_code == 404
    first = triggers[0]
    gone = t.client.delete(f"/workflows/{first['workflow_id']}/trigger/{first['id']}")
    assert gone.status_code == 204
    new_trigger(t.client, workflows[3]["id"], tag_trigger("t3"))
    # Deleting a workflow takes its trigger with it: both quotas get the room back.
    assert t.client.delete(f"/workflows/{workflows[1]['id']}").status_code == 204
    new_trigger(t.client, workflows[0]["id"], tag_trigger("t0 again"))
    use = quota_use(t.client)
    assert (use["workflows"]["use"], use["triggers"]["use"]) == (3, 3)
    assert counted(db_sync, t) == store_quotas_usage(db_sync, t)


def store_quotas_usage(db_sync: Db, t: Tenant) -> quotas.Usage:
    found: quotas.Usage = db_sync.run(lambda c: store_quotas.usage(c, t.account_id))
    return found


def test_an_over_size_filter_is_refused_before_anything_is_saved(small: MakeTenant) -> None:
    t = small()
    workflow = new_workflow(t.client)
    large = list_trigger(100)
    size = len(httpx.Request("POST", "/", json=large["filters"]).content)  # compact JSON
    refused = t.client.post(f"/workflows/{workflow['id']}/trigger", json=large)
    body = quota_problem(refused, "filter_bytes", 1024, size)
    assert "1024" in body["detail"]
    assert t.client.get(f"/workflows/{workflow['id']}/trigger").status_code == 404
    created = new_trigger(t.client, workflow["id"], SMALL_LIST)
    replaced = t.client.put(f"/workflows/{workflow['id']}/trigger/{created['id']}", json=large)
    quota_problem(replaced, "filter_bytes", 1024, size)
    kept = t.client.get(f"/workflows/{workflow['id']}/trigger").json()
    assert (kept["filters"], kept["version"]) == (created["filters"], 1)


def test_the_index_budget_refuses_growth_but_never_a_shrink(small: MakeTenant, db_sync: Db) -> None:
    t = small()
    workflows = [new_workflow(t.client, name=f"w{n}") for n in range(3)]
    first, second = (new_trigger(t.client, w["id"], SMALL_LIST) for w in workflows[:2])
    small_size, large_size = estimate(SMALL_LIST), estimate(LARGE_LIST)
    refused = t.client.post(f"/workflows/{workflows[2]['id']}/trigger", json=LARGE_LIST)
    body = quota_problem(refused, "index_bytes", SMALL.index_bytes, 2 * small_size)
    assert body["requested"] == large_size
    path = f"/workflows/{workflows[1]['id']}/trigger/{second['id']}"
    grown = t.client.put(path, json=LARGE_LIST)
    body = quota_problem(grown, "index_bytes", SMALL.index_bytes, 2 * small_size)
    assert body["requested"] == large_size - small_size
    shrunk = t.client.put(path, json=TINY)
    assert shrunk.status_code == 200, shrunk.text
    gone = t.client.delete(f"/workflows/{workflows[0]['id']}/trigger/{first['id']}")
    assert gone.status_code == 204
    new_trigger(t.client, workflows[2]["id"], LARGE_LIST)  # the room the shrink and delete made
    use = quota_use(t.client)["index_bytes"]["use"]
    assert use == estimate(TINY) + large_size == counted(db_sync, t).index_bytes
    assert t.client.put(path, json=SMALL_LIST).status_code == 409


def test_an_account_over_a_lowered_quota_can_still_edit_and_delete(
    tenant: MakeTenant, small_url: str
) -> None:
    t = tenant()  # on the session's gateway, with the default quotas
    workflows = [new_workflow(t.client, name=f"w{n}") for n in range(SMALL.workflows + 1)]
    lowered = httpx.Client(base_url=f"{small_url}/api/v1", headers=t.client.headers, timeout=30)
    with lowered:
        quota_problem(lowered.post("/workflows", json={"name": "x"}), "workflows", 4, 5)
        renamed = lowered.patch(f"/workflows/{workflows[0]['id']}", json={"name": "renamed"})
        assert renamed.status_code == 200, renamed.text
        assert lowered.delete(f"/workflows/{workflows[1]['id']}").status_code == 204
        quota_problem(lowered.post("/workflows", json={"name": "x"}), "workflows", 4, 4)


def test_account_settings_show_every_quota_with_its_use(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    defaults = Quotas()
    empty = quota_use(t.client)
    assert empty == {name: {"limit": getattr(defaults, name), "use": 0} for name in quotas.names()}
    workflow = new_workflow(t.client)
    new_workflow(t.client, name="no trigger")
    body = list_trigger(20)
    new_trigger(t.client, workflow["id"], body)
    use = quota_use(t.client)
    assert use["workflows"] == {"limit": 20_000, "use": 2}
    assert use["triggers"] == {"limit": 20_000, "use": 1}
    size = len(httpx.Request("POST", "/", json=body["filters"]).content)
    assert use["filter_bytes"] == {"limit": 64 * 1024, "use": size}
    assert use["index_bytes"] == {"limit": 128 * 1024 * 1024, "use": estimate(body)}
    for later in ("segments", "event_types", "exit_rules"):
        assert use[later]["use"] == 0
    put = t.client.put("/account/settings", json={"timezone": "Europe/Berlin"})
    assert put.status_code == 200, put.text
    assert put.json()["quotas"] == use
    assert counted(db_sync, t) == store_quotas_usage(db_sync, t)


def test_the_default_quotas_allow_the_triggers_the_contract_promises() -> None:
    """docs/contract.md §8: 10,000+ active triggers per account, of realistic size."""
    defaults = Quotas()
    assert defaults.workflows >= 10_000
    assert defaults.triggers >= 10_000
    assert defaults.index_bytes >= defaults.triggers * estimate(
        {
            "trigger_type": "form",
            "trigger_event": "form_submitted",
            "filters": all_of(*(cond(f"answer_{n}", "equals", "yes") for n in range(4))),
        }
    )


def _race(count: int, call: Callable[[int], httpx.Response]) -> list[int]:
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def go(n: int) -> None:
        barrier.wait()
        statuses.append(call(n).status_code)

    threads = [threading.Thread(target=go, args=(n,)) for n in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sorted(statuses)


def test_concurrent_workflow_creates_at_the_edge_do_not_overshoot(
    small: MakeTenant, db_sync: Db
) -> None:
    for _ in range(3):
        t = small()
        for n in range(SMALL.workflows - 1):
            new_workflow(t.client, name=f"w{n}")
        post = functools.partial(_post_workflow, t.client)
        assert _race(6, post) == [201] + [409] * 5
        assert counted(db_sync, t).workflows == SMALL.workflows


def _post_workflow(client: httpx.Client, n: int) -> httpx.Response:
    return client.post("/workflows", json={"name": f"race {n}"})


def test_concurrent_trigger_creates_at_the_edge_do_not_overshoot(
    small: MakeTenant, db_sync: Db
) -> None:
    for _ in range(3):
        t = small()
        workflows = [new_workflow(t.client, name=f"w{n}") for n in range(SMALL.workflows)]
        for n, w in enumerate(workflows[: SMALL.triggers - 1]):
            new_trigger(t.client, w["id"], tag_trigger(f"t{n}"))
        rest = [w["id"] for w in workflows[SMALL.triggers - 1 :]]
        post = functools.partial(_post_trigger, t.client, rest)
        assert _race(len(rest), post) == [201] + [409] * (len(rest) - 1)
        assert counted(db_sync, t).triggers == SMALL.triggers
        assert counted(db_sync, t) == store_quotas_usage(db_sync, t)


def _post_trigger(client: httpx.Client, workflow_ids: list[str], n: int) -> httpx.Response:
    return client.post(f"/workflows/{workflow_ids[n]}/trigger", json=tag_trigger(f"race {n}"))


def test_quotas_are_documented_in_openapi(api_url: str) -> None:
    schema = httpx.get(f"{api_url}/openapi.json").json()
    settings = schema["components"]["schemas"]["AccountSettings"]
    assert "quotas" in settings["required"]
    documented = schema["components"]["schemas"]["AccountQuotas"]["properties"]
    assert set(documented) == set(quotas.names()) == set(AccountQuotas.model_fields)
    post = schema["paths"]["/api/v1/workflows"]["post"]
    assert "Quota exceeded" in post["description"]
    assert "409" in post["responses"]
