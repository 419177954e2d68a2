"""Trigger backtest over HTTP against real Redis streams and Postgres: figures equal a brute-force
replay, no side effects, diffs, bad windows and drafts, tenancy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from pipelines import errors, scopes
from streams import names
from tests.pipelines.backtest_oracle import (
    CONTACT_TYPES,
    VIP_CUSTOMER,
    VIP_OR_HOT,
    Expected,
    Rule,
    brute_force,
    make_events,
    vip_customer,
    vip_or_hot,
)
from tests.support.db import Db
from tests.support.factories import Tenant, new_trigger, new_workflow, tenants_on_shards
from tests.support.problems import problem
from tests.support.streams import Streams

MakeTenant = Callable[..., Tenant]
CONTACTS = [uuid.UUID(int=i + 1, version=4) for i in range(12)]
PROJECTION = {
    CONTACTS[0]: ({"status": "customer", "tags": ["newsletter"]}, False),
    CONTACTS[1]: ({"status": "customer", "tags": ["vip"]}, False),
    CONTACTS[2]: ({"status": "customer"}, True),
    CONTACTS[3]: ({"status": "lead", "tags": ["vip"]}, False),
}
ENROLLED_BEFORE = [CONTACTS[1], CONTACTS[5]]
SAVED = {"trigger_type": "contact", "trigger_event": "tag_added", "filters": VIP_CUSTOMER}
MULTIPLE = {"enrollment_limit": "multiple", "reenroll_cooldown_seconds": 1800}
DRAFT = {
    "trigger_type": "contact",
    "trigger_event": "tag_added",
    "filters": VIP_OR_HOT,
    "settings": MULTIPLE,
}


@pytest.fixture
def streams(redis_url: str, api_url: str) -> Iterator[Streams]:
    s = Streams(redis_url)  # the API published the shard count
    yield s
    s.close()


def iso(at: datetime) -> str:
    return at.isoformat()


def send(streams: Streams, events: list[dict[str, Any]]) -> tuple[datetime, datetime]:
    """XADD the events in order; the window [from, to) that holds exactly them."""
    start = datetime.now(UTC) - timedelta(milliseconds=1)
    time.sleep(0.005)
    streams.send(events)
    time.sleep(0.005)
    return start, datetime.now(UTC)


def seed_state(db: Db, account: uuid.UUID, workflow: uuid.UUID, trigger: uuid.UUID) -> None:
    """The contacts projection now, and contacts already enrolled in the workflow."""

    async def work(conn: Any) -> None:
        for contact, (state, deleted) in PROJECTION.items():
            await conn.execute(
                "INSERT INTO contacts (account_id, contact_id, state, deleted, event_ts)"
                " VALUES ($1, $2, $3, $4, now())",
                account,
                contact,
                state,
                deleted,
            )
        for contact in ENROLLED_BEFORE:
            await conn.execute(
                "INSERT INTO workflow_enrollments (id, account_id, workflow_id, trigger_id,"
                " contact_id, event_id, status, run_at, single)"
                " VALUES ($1, $2, $3, $4, $5, $6, 'triggered', now(), true)",
                uuid.uuid4(),
                account,
                workflow,
                trigger,
                contact,
                uuid.uuid4(),
            )

    db.run(work)


def oracle(events: list[dict[str, Any]], account: uuid.UUID, rule: Rule) -> Expected:
    projection = {str(c): v for c, v in PROJECTION.items()}
    replayed = CONTACT_TYPES | {"contact.tag_added"}
    return brute_force(
        events, account, rule, replayed, projection, {str(c) for c in ENROLLED_BEFORE}
    )


def assert_figures(body: dict[str, Any], want: Expected) -> None:
    assert body["events_scanned"] == want.scanned
    assert body["matched_events"] == want.matched
    assert body["matched_contacts"] == len(want.contacts)
    assert body["would_enroll"] == want.would_enroll
    assert body["blocked"] == dict(want.blocked)
    assert [s["event_id"] for s in body["samples"]] == want.matched_ids[:10]


def side_effects(db: Db, streams: Streams, account: uuid.UUID) -> dict[str, Any]:
    stream = streams.stream_of(account)
    return {
        "enrollments": db.value(
            "SELECT count(*) FROM workflow_enrollments WHERE account_id = $1", account
        ),
        "logs": db.value(
            "SELECT count(*) FROM trigger_execution_logs WHERE account_id = $1", account
        ),
        "contacts": db.fetch(
            "SELECT contact_id, state, deleted, event_ts, updated_at FROM contacts"
            " WHERE account_id = $1 ORDER BY contact_id",
            account,
        ),
        "stream": streams.client.xlen(stream),
        "groups": streams.client.xinfo_groups(stream),
        "published": streams.client.xlen(names.ENROLLMENTS_STREAM),
        "dead": streams.client.xlen(names.DLQ_STREAM),
    }


@pytest.fixture
def scene(
    tenant: MakeTenant, streams: Streams, db_sync: Db
) -> tuple[Tenant, Tenant, dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """Two accounts on one shard; the first's workflow (draft) has the saved trigger; 600
    events of both accounts, with redeliveries and loop-depth breaches, in the window."""
    a, b = tenants_on_shards(tenant, streams, lambda x, y: x == y)
    workflow = new_workflow(a.client)
    trigger = new_trigger(a.client, workflow["id"], SAVED)
    seed_state(db_sync, a.account_id, uuid.UUID(workflow["id"]), uuid.UUID(trigger["id"]))
    events = make_events(a.account_id, b.account_id, CONTACTS, 600, seed=11)
    start, end = send(streams, events)
    return a, b, workflow, events, {"from": iso(start), "to": iso(end)}


def test_saved_trigger_figures_equal_a_brute_force_replay(scene: Any) -> None:
    a, _, workflow, events, window = scene
    response = a.client.post(f"/workflows/{workflow['id']}/trigger/backtest", json=window)
    assert response.status_code == 200, response.text
    body = response.json()
    want = oracle(events, a.account_id, Rule("contact.tag_added", vip_customer))
    assert want.would_enroll
    assert len(want.blocked) >= 2
    assert_figures(body, want)
    assert body["trigger"] == "saved"
    assert body["diff"] is None
    assert datetime.fromisoformat(body["from"]) == datetime.fromisoformat(window["from"])
    assert datetime.fromisoformat(body["to"]) == datetime.fromisoformat(window["to"])
    assert body["retained_since"] is not None
    sample = body["samples"][0]
    assert sample.keys() == {
        "event_id",
        "contact_id",
        "event_type",
        "timestamp",
        "would_enroll",
        "reason",
    }


def test_a_draft_is_backtested_and_diffed_against_the_saved_trigger(scene: Any) -> None:
    a, _, workflow, events, window = scene
    response = a.client.post(
        f"/workflows/{workflow['id']}/trigger/backtest", json={"trigger": DRAFT, **window}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    draft = oracle(events, a.account_id, Rule("contact.tag_added", vip_or_hot, False, 1800))
    saved = oracle(events, a.account_id, Rule("contact.tag_added", vip_customer))
    assert_figures(body, draft)
    assert body["trigger"] == "draft"
    newly = [i for i in draft.matched_ids if i not in set(saved.matched_ids)]
    assert newly
    assert body["diff"] == {
        "newly_matching": {"count": len(newly), "sample_event_ids": newly[:10]},
        "no_longer_matching": {"count": 0, "sample_event_ids": []},
    }


def test_a_backtest_has_no_side_effects(scene: Any, db_sync: Db, streams: Streams) -> None:
    """Nothing enrolled, logged, published, projected, consumed or dead-lettered."""
    a, _, workflow, _, window = scene
    before = side_effects(db_sync, streams, a.account_id)
    for body in ({**window}, {"trigger": DRAFT, **window}):
        response = a.client.post(f"/workflows/{workflow['id']}/trigger/backtest", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["would_enroll"] > 0
    assert side_effects(db_sync, streams, a.account_id) == before
    audit = a.client.get(f"/workflows/{workflow['id']}/trigger/audit").json()["items"]
    assert [e["action"] for e in audit] == ["workflow.create", "trigger.create"]


def test_other_accounts_events_on_the_shard_are_not_counted(scene: Any) -> None:
    _, b, _, events, window = scene
    other = new_workflow(b.client)
    new_trigger(b.client, other["id"], SAVED)
    response = b.client.post(f"/workflows/{other['id']}/trigger/backtest", json=window)
    assert response.status_code == 200, response.text
    mine = {e["event_id"] for e in events if e["account_id"] == str(b.account_id)}
    assert response.json()["events_scanned"] == len(mine)
    assert {s["event_id"] for s in response.json()["samples"]} <= mine


def test_the_window_is_by_arrival_time(tenant: MakeTenant, streams: Streams) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    new_trigger(t.client, workflow["id"], {**SAVED, "filters": None})
    early = make_events(t.account_id, t.account_id, CONTACTS, 30, seed=1)
    late = make_events(t.account_id, t.account_id, CONTACTS, 20, seed=2)
    send(streams, early)
    start, end = send(streams, late)
    url = f"/workflows/{workflow['id']}/trigger/backtest"
    body = t.client.post(url, json={"from": iso(start), "to": iso(end)}).json()
    assert body["events_scanned"] == len({e["event_id"] for e in late})
    whole = t.client.post(url, json={"from": iso(start - timedelta(minutes=1))}).json()
    assert whole["events_scanned"] == len({e["event_id"] for e in early + late})
    empty = t.client.post(url, json={"from": iso(end), "to": iso(end + timedelta(hours=1))})
    assert empty.json()["events_scanned"] == 0


NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("window", "pointer"),
    [
        ({"from": iso(NOW), "to": iso(NOW - timedelta(hours=1))}, "/from"),
        ({"from": iso(NOW - timedelta(hours=1)), "to": iso(NOW - timedelta(hours=1))}, "/from"),
        ({"from": iso(NOW + timedelta(days=1)), "to": iso(NOW + timedelta(days=2))}, "/from"),
        ({"from": iso(NOW - timedelta(hours=169)), "to": iso(NOW)}, "/to"),
    ],
)
def test_bad_windows_are_problem_documents(
    tenant: MakeTenant, window: dict[str, str], pointer: str
) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    new_trigger(t.client, workflow["id"], SAVED)
    response = t.client.post(f"/workflows/{workflow['id']}/trigger/backtest", json=window)
    assert problem(response, 400, errors.INVALID_WINDOW)["pointer"] == pointer


def test_an_unparseable_time_is_a_422(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(
        f"/workflows/{workflow['id']}/trigger/backtest", json={"from": "last tuesday"}
    )
    assert problem(response, 422, errors.VALIDATION_FAILED)["errors"][0]["pointer"] == "/from"


@pytest.mark.parametrize(
    ("draft", "status", "title", "pointer"),
    [
        (
            {
                "trigger_type": "contact",
                "trigger_event": "tag_added",
                "filters": {
                    "logic": "AND",
                    "conditions": [{"field": "tag", "operator": "resembles", "value": "vip"}],
                },
            },
            400,
            errors.INVALID_OPERATOR,
            "/trigger/filters/conditions/0/operator",
        ),
        (
            {"trigger_type": "webinar", "trigger_event": "tag_added"},
            400,
            errors.INVALID_TRIGGER_TYPE,
            "/trigger/trigger_type",
        ),
        (
            {
                "trigger_type": "contact",
                "trigger_event": "tag_added",
                "settings": {"enrollment_limit": "always"},
            },
            400,
            errors.INVALID_SETTINGS,
            None,
        ),
        ({"trigger_event": "tag_added"}, 422, errors.MISSING_FIELD, None),
    ],
)
def test_a_draft_is_validated_like_a_create(
    tenant: MakeTenant, draft: dict[str, Any], status: int, title: str, pointer: str | None
) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(
        f"/workflows/{workflow['id']}/trigger/backtest", json={"trigger": draft}
    )
    body = problem(response, status, title)
    if pointer is not None:
        assert body["pointer"] == pointer


def test_a_draft_works_without_a_saved_trigger(tenant: MakeTenant, streams: Streams) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    events = make_events(t.account_id, t.account_id, CONTACTS, 40, seed=3)
    start, end = send(streams, events)
    body = {"trigger": DRAFT, "from": iso(start), "to": iso(end)}
    response = t.client.post(f"/workflows/{workflow['id']}/trigger/backtest", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["diff"] is None
    want = brute_force(
        events,
        t.account_id,
        Rule("contact.tag_added", vip_or_hot, False, 1800),
        CONTACT_TYPES,
        {},
        set(),
    )
    assert_figures(response.json(), want)


def test_without_a_trigger_or_a_draft_it_is_404(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(f"/workflows/{workflow['id']}/trigger/backtest", json={})
    assert "send a draft" in problem(response, 404, errors.NOT_FOUND)["detail"]


def test_tenancy_and_scopes(tenant: MakeTenant) -> None:
    """REQ-U-004: another account's workflow is 403, an unknown one 404; workflow:read needed."""
    owner, stranger = tenant(), tenant()
    workflow = new_workflow(owner.client)
    new_trigger(owner.client, workflow["id"], SAVED)
    url = f"/workflows/{workflow['id']}/trigger/backtest"
    problem(stranger.client.post(url, json={}), 403, errors.FORBIDDEN)
    problem(stranger.client.post(url, json={"trigger": DRAFT}), 403, errors.FORBIDDEN)
    problem(
        owner.client.post(f"/workflows/{uuid.uuid4()}/trigger/backtest", json={}),
        404,
        errors.NOT_FOUND,
    )
    writer = tenant(scopes=(scopes.SCOPE_EVENTS_WRITE,))
    problem(writer.client.post(url, json={}), 403, errors.FORBIDDEN)
    assert owner.client.post(url, json={}).status_code == 200


def test_the_endpoint_is_documented(api_url: str) -> None:
    spec = httpx.get(f"{api_url}/openapi.json").json()
    operation = spec["paths"]["/api/v1/workflows/{workflow_id}/trigger/backtest"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert b"#/components/schemas/BacktestIn" in orjson.dumps(body)
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/BacktestOut"
    )
    assert {"400", "403", "404", "422"} <= operation["responses"].keys()
    out = spec["components"]["schemas"]["BacktestOut"]["properties"]
    assert {
        "from",
        "to",
        "events_scanned",
        "matched_events",
        "matched_contacts",
        "would_enroll",
        "samples",
        "diff",
    } <= out.keys()


def test_without_a_body_the_saved_trigger_replays_the_last_day(
    tenant: MakeTenant, streams: Streams
) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    new_trigger(t.client, workflow["id"], SAVED)
    events = make_events(t.account_id, t.account_id, CONTACTS, 25, seed=4)
    send(streams, events)
    response = t.client.post(f"/workflows/{workflow['id']}/trigger/backtest")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["events_scanned"] == len({e["event_id"] for e in events})
    to = datetime.fromisoformat(body["to"])
    assert to - datetime.fromisoformat(body["from"]) == timedelta(hours=24)
    assert abs(datetime.now(UTC) - to) < timedelta(minutes=1)
