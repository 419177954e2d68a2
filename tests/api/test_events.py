"""POST /events: validated envelopes land in their account's shard stream (docs/contract.md §3)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import redis

from pipelines import errors, scopes
from tests.support.factories import Tenant, envelope
from tests.support.problems import problem
from tests.support.streams import stream_events

MakeTenant = Callable[..., Tenant]


def test_one_event_and_a_list_are_accepted_into_the_shard(
    tenant: MakeTenant, redis_url: str
) -> None:
    t = tenant()
    one = envelope(t.account_id)
    response = t.client.post("/events", json=one)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "event_ids": [one["event_id"]], "held": False}
    many = [envelope(t.account_id) for _ in range(3)]
    response = t.client.post("/events", json=many)
    assert response.status_code == 202
    with redis.Redis.from_url(redis_url) as client:
        found = stream_events(client, t.account_id)
    assert [e["event_id"] for e in found] == [one["event_id"]] + [e["event_id"] for e in many]
    assert found[0]["data"]["tag"] == "vip"
    assert found[0]["metadata"]["depth"] == 0


def test_bad_events_are_refused_and_nothing_is_written(tenant: MakeTenant, redis_url: str) -> None:
    t = tenant()
    other = uuid.uuid4()
    problem(
        t.client.post("/events", json=envelope(t.account_id, event_type="contact.sneezed")),
        400,
        errors.INVALID_EVENT,
    )
    problem(t.client.post("/events", json=envelope(other)), 403, errors.FORBIDDEN)
    problem(
        t.client.post("/events", json=envelope(t.account_id, event_id="nope")),
        422,
        errors.VALIDATION_FAILED,
    )
    problem(
        t.client.post("/events", json=envelope(t.account_id, data={"tag": "x"})),
        422,
        errors.MISSING_FIELD,
    )
    problem(t.client.post("/events", json=[]), 400, errors.INVALID_EVENT)
    mixed = [envelope(t.account_id), envelope(t.account_id, event_type="nope")]
    problem(t.client.post("/events", json=mixed), 400, errors.INVALID_EVENT)
    with redis.Redis.from_url(redis_url) as client:
        assert stream_events(client, t.account_id) == []


def test_events_need_the_events_scope(tenant: MakeTenant) -> None:
    t = tenant(scopes=(scopes.SCOPE_WORKFLOW_EDIT, scopes.SCOPE_WORKFLOW_READ))
    problem(t.client.post("/events", json=envelope(t.account_id)), 403, errors.FORBIDDEN)


def _nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def test_what_the_engine_would_dead_letter_is_refused_with_a_pointer(
    tenant: MakeTenant, redis_url: str
) -> None:
    """SPEC §15: a 202 means "will be processed"; each poison a partition would dead-letter is
    a 400 naming the value, and nothing of the request is written."""
    t = tenant()
    good = envelope(t.account_id)
    cases = [
        ({"timestamp": "0001-01-01T00:00:00+14:00"}, "/1/timestamp", "1970-01-01 .. 2199-12-31"),
        ({"timestamp": "9999-12-31T23:59:59Z"}, "/1/timestamp", "1970-01-01 .. 2199-12-31"),
        ({"timestamp": "1969-12-31T23:59:59Z"}, "/1/timestamp", "1970-01-01 .. 2199-12-31"),
        (
            {"data": {**good["data"], "nested": _nested(40)}},
            "/1/data/nested" + "/0" * 31,
            "nested deeper than 32 levels",
        ),
        (
            {"event_type": "time.birthday"},
            "/1/event_type",
            "emitted by the engine only",
        ),
        (
            {"event_type": "segment.entered"},
            "/1/event_type",
            "emitted by the engine only",
        ),
    ]
    for overrides, pointer, words in cases:
        bad = envelope(t.account_id, **overrides)
        body = problem(t.client.post("/events", json=[good, bad]), 400, errors.INVALID_EVENT)
        assert body["pointer"] == pointer, body
        assert words in body["detail"], body
    edge = envelope(t.account_id, timestamp="2199-12-31T23:59:59Z")
    # Beyond 64 bits, a JSON integer is read as a double, here as in every body: processable.
    edge["data"] = {**edge["data"], "score": 2**80, "nested": _nested(30)}
    assert t.client.post("/events", json=edge).status_code == 202
    with redis.Redis.from_url(redis_url) as client:
        found = stream_events(client, t.account_id)
    assert [e["event_id"] for e in found] == [edge["event_id"]]
    assert found[0]["data"]["score"] == 2.0**80
