"""Idempotency keys (docs/operations.md §9): a retried POST/PUT/PATCH with the same Idempotency-Key
gets the first response back and acts once; per account, 24 hours, one effect under concurrency."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
import redis

from api.app import create_app
from pipelines import errors
from pipelines import idempotency as rules
from pipelines.config import Settings
from pipelines.ratelimit import Budget
from store import accounts
from tests.support.db import Db
from tests.support.factories import Tenant, envelope, keyed, tenants
from tests.support.problems import problem
from tests.support.servers import serve
from tests.support.streams import stream_events

MakeTenant = Callable[..., Tenant]

TRIGGER = {
    "trigger_type": "contact",
    "trigger_event": "tag_added",
    "filters": {
        "logic": "AND",
        "conditions": [{"field": "tag", "operator": "equals", "value": "vip"}],
    },
}


def with_key(key: str) -> dict[str, str]:
    return {rules.HEADER: key}


def count(db_sync: Db, table: str, account_id: uuid.UUID) -> int:
    found: int = db_sync.value(f"SELECT count(*) FROM {table} WHERE account_id = $1", account_id)
    return found


def test_a_retry_gets_the_first_response_and_nothing_happens_twice(
    tenant: MakeTenant, db_sync: Db
) -> None:
    t = tenant()
    key = str(uuid.uuid4())
    first = t.client.post("/workflows", json={"name": "Lead"}, headers=with_key(key))
    assert first.status_code == 201, first.text
    again = t.client.post("/workflows", json={"name": "Lead"}, headers=with_key(key))
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count(db_sync, "workflows", t.account_id) == 1

    path = f"/workflows/{first.json()['id']}/trigger"
    made = [t.client.post(path, json=TRIGGER, headers=with_key("trigger-1")) for _ in range(3)]
    assert [r.status_code for r in made] == [201, 201, 201]
    assert {r.json()["id"] for r in made} == {made[0].json()["id"]}
    assert count(db_sync, "workflow_triggers", t.account_id) == 1
    # Not a second 409 "Trigger already exists": the retry is the first request, answered again.
    audit = t.client.get(f"{path}/audit").json()["items"]
    assert [a["action"] for a in audit].count("trigger.create") == 1


def test_a_client_error_is_replayed_too(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    bad = [t.client.post("/workflows", json={}, headers=with_key("k")) for _ in range(2)]
    problem(bad[0], 422, errors.MISSING_FIELD)
    assert bad[1].content == bad[0].content
    assert bad[1].headers["content-type"] == "application/problem+json"
    assert bad[1].headers["idempotent-replayed"] == "true"


def test_the_same_key_on_another_request_is_422(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    created = t.client.post(
        "/workflows", json={"name": "A", "description": "d"}, headers=with_key("k1")
    )
    assert created.status_code == 201
    workflow_id = created.json()["id"]
    other_body = t.client.post("/workflows", json={"name": "B"}, headers=with_key("k1"))
    body = problem(other_body, 422, errors.IDEMPOTENCY_KEY_REUSED)
    assert rules.HEADER in body["detail"]
    other_path = t.client.patch(
        f"/workflows/{workflow_id}", json={"name": "A", "description": "d"}, headers=with_key("k1")
    )
    problem(other_path, 422, errors.IDEMPOTENCY_KEY_REUSED)
    # The same JSON written differently is the same body.
    reordered = b'{ "description" : "d",\n "name": "A" }'
    same = t.client.post(
        "/workflows",
        content=reordered,
        headers={**with_key("k1"), "content-type": "application/json"},
    )
    assert same.status_code == 201
    assert same.json()["id"] == workflow_id
    assert count(db_sync, "workflows", t.account_id) == 1


def test_keys_are_per_account(tenant: MakeTenant, db_sync: Db) -> None:
    t, other = tenant(), tenant()
    mine = t.client.post("/workflows", json={"name": "mine"}, headers=with_key("shared"))
    theirs = other.client.post("/workflows", json={"name": "theirs"}, headers=with_key("shared"))
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs.json()["name"] == "theirs"
    assert count(db_sync, "workflows", other.account_id) == 1


def test_concurrent_retries_with_one_key_have_one_effect(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    threads = 10
    start = threading.Barrier(threads)

    def attempt(_: int) -> httpx.Response:
        with keyed(t, t.key) as client:
            start.wait()
            return client.post("/workflows", json={"name": "once"}, headers=with_key("race"))

    with ThreadPoolExecutor(threads) as pool:
        seen = list(pool.map(attempt, range(threads)))
    created = [r for r in seen if r.status_code == 201]
    waiting = [r for r in seen if r.status_code != 201]
    assert created, [r.text for r in seen]
    assert {r.content for r in created} == {created[0].content}
    for response in waiting:
        problem(response, 409, errors.REQUEST_IN_PROGRESS)
        assert int(response.headers["retry-after"]) >= 1
    assert count(db_sync, "workflows", t.account_id) == 1
    later = t.client.post("/workflows", json={"name": "once"}, headers=with_key("race"))
    assert later.content == created[0].content


def test_a_replayed_event_batch_is_xadded_once(tenant: MakeTenant, redis_url: str) -> None:
    t = tenant()
    batch = [envelope(t.account_id) for _ in range(3)]
    answers = [t.client.post("/events", json=batch, headers=with_key("batch-7")) for _ in range(3)]
    assert [r.status_code for r in answers] == [202, 202, 202]
    assert {r.content for r in answers} == {answers[0].content}
    with redis.Redis.from_url(redis_url) as client:
        found = [e["event_id"] for e in stream_events(client, t.account_id)]
    assert found == [e["event_id"] for e in batch]


def test_an_expired_key_starts_afresh(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    first = t.client.post("/workflows", json={"name": "x"}, headers=with_key("old"))
    db_sync.run(
        lambda c: c.execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '24 hours 1 second'"
            " WHERE account_id = $1",
            t.account_id,
        )
    )
    second = t.client.post("/workflows", json={"name": "y"}, headers=with_key("old"))
    assert second.status_code == 201, second.text
    assert second.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in second.headers
    third = t.client.post("/workflows", json={"name": "y"}, headers=with_key("old"))
    assert third.content == second.content
    assert count(db_sync, "workflows", t.account_id) == 2


def _claim_row(db_sync: Db, account_id: uuid.UUID, key: str, fp: bytes, lease: str) -> None:
    db_sync.run(
        lambda c: c.execute(
            "INSERT INTO idempotency_keys (account_id, key, fingerprint, state, claim_id,"
            " lease_until) VALUES ($1, $2, $3, 'running', $4, now() + $5::text::interval)",
            account_id,
            key,
            fp,
            uuid.uuid4(),
            lease,
        )
    )


def test_a_running_claim_is_409_until_its_lease_runs_out(tenant: MakeTenant, db_sync: Db) -> None:
    """A claim whose request crashed blocks retries only for its lease (30 s), then a retry runs."""
    t = tenant()
    body = orjson.dumps({"name": "after a crash"})
    fp = rules.fingerprint("POST", "/api/v1/workflows", "", body, str(t.key_id))
    headers = {"content-type": "application/json"}
    _claim_row(db_sync, t.account_id, "live", fp, "30 seconds")
    busy = t.client.post("/workflows", content=body, headers={**headers, **with_key("live")})
    problem(busy, 409, errors.REQUEST_IN_PROGRESS)
    assert busy.headers["retry-after"] == "1"
    _claim_row(db_sync, t.account_id, "crashed", fp, "-1 second")
    taken = t.client.post("/workflows", content=body, headers={**headers, **with_key("crashed")})
    assert taken.status_code == 201, taken.text
    assert count(db_sync, "workflows", t.account_id) == 1
    # Another request cannot take over a crashed claim: that key belongs to its own request.
    _claim_row(db_sync, t.account_id, "crashed-2", fp, "-1 second")
    problem(
        t.client.post("/workflows", json={"name": "other"}, headers=with_key("crashed-2")),
        422,
        errors.IDEMPOTENCY_KEY_REUSED,
    )


@pytest.fixture
def one_write(settings: Settings, db_sync: Db) -> Iterator[Tenant]:
    """A tenant of a gateway that allows 2 writes per key per hour."""
    tight = dataclasses.replace(settings, rate_writes=Budget(2, 3600))
    with serve(create_app(tight)) as url, tenants(db_sync, url) as make:
        yield make()


def test_replays_spend_no_budget_and_a_refused_request_frees_its_key(
    one_write: Tenant, db_sync: Db
) -> None:
    t = one_write
    first = t.client.post("/workflows", json={"name": "a"}, headers=with_key("a"))
    assert first.headers["ratelimit-remaining"] == "1"
    replay = t.client.post("/workflows", json={"name": "a"}, headers=with_key("a"))
    assert replay.content == first.content
    assert "ratelimit-remaining" not in replay.headers
    assert t.client.post("/workflows", json={"name": "b"}).headers["ratelimit-remaining"] == "0"
    refused = t.client.post("/workflows", json={"name": "c"}, headers=with_key("c"))
    problem(refused, 429, errors.RATE_LIMITED)
    kept = db_sync.fetch("SELECT key FROM idempotency_keys WHERE account_id = $1", t.account_id)
    assert [r["key"] for r in kept] == ["a"]


def test_a_malformed_key_is_400(tenant: MakeTenant) -> None:
    t = tenant()
    for bad in ("has space", "x" * 256, ""):
        response = t.client.post("/workflows", json={"name": "x"}, headers=with_key(bad))
        problem(response, 400, errors.INVALID_IDEMPOTENCY_KEY)


def test_without_a_valid_api_key_nothing_is_claimed(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    with keyed(t, "ht_nope_nope") as stranger:
        response = stranger.post("/workflows", json={"name": "x"}, headers=with_key("k"))
    problem(response, 401, errors.UNAUTHORIZED)
    response = t.client.post("/workflows", json={"name": "x"}, headers=with_key("k"))
    assert response.status_code == 201


def test_deletes_and_reads_ignore_the_header(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = t.client.post("/workflows", json={"name": "x"}).json()
    path = f"/workflows/{workflow['id']}"
    assert t.client.delete(path, headers=with_key("d")).status_code == 204
    problem(t.client.delete(path, headers=with_key("d")), 404, errors.NOT_FOUND)
    problem(t.client.get(path, headers=with_key("d")), 404, errors.NOT_FOUND)


def test_expired_keys_are_pruned(settings: Settings, db_sync: Db) -> None:
    """Pruned by the first keyed request a gateway serves, then every 10 minutes."""
    with serve(create_app(settings)) as url, tenants(db_sync, url) as make:
        t = make()
        body = b"{}"
        fp = rules.fingerprint("POST", "/api/v1/workflows", "", body)
        _claim_row(db_sync, t.account_id, "stale", fp, "-1 second")
        db_sync.run(
            lambda c: c.execute(
                "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"
                " WHERE account_id = $1",
                t.account_id,
            )
        )
        _claim_row(db_sync, t.account_id, "fresh", fp, "30 seconds")
        t.client.post("/workflows", json={"name": "x"}, headers=with_key("new"))
        left = db_sync.fetch(
            "SELECT key FROM idempotency_keys WHERE account_id = $1 ORDER BY key", t.account_id
        )
    assert [r["key"] for r in left] == ["fresh", "new"]


def test_the_header_is_documented_on_posts_puts_and_patches(api_url: str) -> None:
    schema = httpx.get(f"{api_url}/openapi.json").json()

    def headers_of(path: str, method: str) -> list[Any]:
        operation = schema["paths"][f"/api/v1{path}"][method]
        return [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]

    assert rules.HEADER in headers_of("/workflows", "post")
    assert rules.HEADER in headers_of("/events", "post")
    assert rules.HEADER in headers_of("/workflows/{workflow_id}", "patch")
    assert rules.HEADER in headers_of("/workflows/{workflow_id}/trigger/{trigger_id}", "put")
    assert rules.HEADER not in headers_of("/workflows", "get")
    assert rules.HEADER not in headers_of("/workflows/{workflow_id}", "delete")


def test_another_key_of_the_account_never_gets_a_replay(tenant: MakeTenant, db_sync: Db) -> None:
    """The first key's answer is its own: a second key reusing the header value is refused."""
    t = tenant()
    first = t.client.post("/workflows", json={"name": "mine"}, headers=with_key("shared"))
    assert first.status_code == 201, first.text
    other_key, _ = db_sync.run(lambda c: accounts.create_key(c, t.account_id, ["workflow:read"]))
    with keyed(t, other_key) as other:
        again = other.post("/workflows", json={"name": "mine"}, headers=with_key("shared"))
    problem(again, 422, errors.IDEMPOTENCY_KEY_REUSED)
    assert count(db_sync, "workflows", t.account_id) == 1
