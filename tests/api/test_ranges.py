"""Values at the edges (docs/contract.md §15): every date parameter, cursor and filter date at
the ends of the calendar and of the timezones is a problem document, never a 5xx."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pipelines import errors
from tests.support.db import Db
from tests.support.factories import new_trigger, new_workflow, tenants
from tests.support.problems import problem

# Outside 1970-01-01 .. 2199-12-31 UTC; the first two are not even instants in UTC.
OUT_OF_RANGE = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00+00:01",  # a minute before the epoch in UTC
    "2200-01-01T00:00:00Z",
    "2199-12-31T23:59:59-00:01",  # a minute past the end in UTC
    "1969-12-31",
]
EDGES_INSIDE = ["1970-01-01T00:00:00Z", "2199-12-31T23:59:59.999999Z", "1970-01-01T14:00:00+14:00"]


def _query(path: str, name: str) -> tuple[str, str, str]:
    return ("GET", path, name)


# (method, path, parameter): {wf} is the seeded workflow.
DATE_PARAMETERS = [
    _query("/workflows/{wf}/trigger/stats", "from"),
    _query("/workflows/{wf}/trigger/stats", "to"),
    _query("/trigger-logs", "from"),
    _query("/trigger-logs", "to"),
    _query("/workflows/{wf}/enrollments", "from"),
    _query("/workflows/{wf}/enrollments", "to"),
    ("POST", "/workflows/{wf}/trigger/backtest", "from"),
    ("POST", "/workflows/{wf}/trigger/backtest", "to"),
]
TRIGGER = {"trigger_type": "contact", "trigger_event": "tag_added"}


@pytest.fixture(scope="module")
def seeded(db_sync: Db, api_url: str) -> Iterator[tuple[httpx.Client, str]]:
    with tenants(db_sync, api_url) as make:
        t = make()
        workflow = new_workflow(t.client)
        new_trigger(t.client, workflow["id"], TRIGGER)
        yield t.client, workflow["id"]


def _send(client: httpx.Client, method: str, path: str, name: str, value: str) -> httpx.Response:
    if method == "GET":
        return client.get(path, params={name: value})
    return client.post(path, json={name: value})


def _ids(param: Any) -> str:
    return "-".join(param) if isinstance(param, tuple) else str(param)


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(("method", "path", "name"), DATE_PARAMETERS, ids=_ids)
def test_a_date_out_of_range_is_a_422_pointing_at_it(
    seeded: tuple[httpx.Client, str], method: str, path: str, name: str, value: str
) -> None:
    client, wf = seeded
    response = _send(client, method, path.format(wf=wf), name, value)
    body = problem(response, 422, errors.VALIDATION_FAILED)
    where = f"/query/{name}" if method == "GET" else f"/{name}"
    assert [e["pointer"] for e in body["errors"]] == [where], body
    assert "1970-01-01" in body["detail"], body


@pytest.mark.parametrize("value", EDGES_INSIDE)
@pytest.mark.parametrize(("method", "path", "name"), DATE_PARAMETERS, ids=_ids)
def test_a_date_at_the_edge_of_the_range_is_served(
    seeded: tuple[httpx.Client, str], method: str, path: str, name: str, value: str
) -> None:
    """Accepted, or refused for what the window means (future, reversed, too long): a 400
    problem, never a 5xx and never the range's 422."""
    client, wf = seeded
    response = _send(client, method, path.format(wf=wf), name, value)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.headers["content-type"] == "application/problem+json"


def test_a_backtest_window_just_after_the_epoch_is_not_a_stream_outage(
    seeded: tuple[httpx.Client, str],
) -> None:
    """Its default start (`to` - 24 h) would lie before 1970, where no stream id is."""
    client, wf = seeded
    response = client.post(f"/workflows/{wf}/trigger/backtest", json={"to": "1970-01-01T05:00:00Z"})
    assert response.status_code == 200, response.text
    assert response.json()["from"].startswith("1970-01-01T00:00:00")


def _cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        *(_cursor(at, str(uuid.uuid4())) for at in OUT_OF_RANGE[:4]),
        _cursor(2**63),
        _cursor(-(2**63) - 1),
        _cursor(2**64 - 1),
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/workflows",
        "/workflows/{wf}/enrollments",
        "/trigger-logs",
        "/workflows/{wf}/trigger/audit",
        "/account/settings/audit",
    ],
)
def test_a_forged_cursor_out_of_range_is_an_invalid_cursor(
    seeded: tuple[httpx.Client, str], path: str, cursor: str
) -> None:
    client, wf = seeded
    response = client.get(path.format(wf=wf), params={"cursor": cursor})
    problem(response, 400, errors.INVALID_CURSOR)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_filter_date_that_is_no_instant_is_an_invalid_value(
    seeded: tuple[httpx.Client, str], value: str
) -> None:
    client, _ = seeded
    workflow = new_workflow(client)
    condition = {"field": "contact.signed_up", "operator": "greater_than", "value": value}
    response = client.post(
        f"/workflows/{workflow['id']}/trigger",
        json={**TRIGGER, "filters": {"conditions": [condition]}},
    )
    body = problem(response, 400, errors.INVALID_VALUE)
    assert body["pointer"] == "/filters/conditions/0/value"


@pytest.mark.parametrize("value", ["1900-01-01", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_a_filter_date_before_1970_or_far_ahead_is_still_a_date(
    seeded: tuple[httpx.Client, str], value: str
) -> None:
    """Filters compare the contacts' own dates (birthdays before 1970): only the dates a
    client asks the API about are bounded."""
    client, _ = seeded
    workflow = new_workflow(client)
    condition = {"field": "contact.birthday", "operator": "less_than", "value": value}
    new_trigger(client, workflow["id"], {**TRIGGER, "filters": {"conditions": [condition]}})
