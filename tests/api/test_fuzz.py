"""Property-based fuzzing of every route of the OpenAPI document (schemathesis, valid and
invalid inputs): whatever a client sends, the served app never answers 5xx, and its status
code, content type and body are the ones the document declares.

Each operation gets a fresh account whose key has every scope (the test settings' rate
budgets are far above what the fuzzing spends), with a workflow and its trigger whose ids
stand in for generated path ids (and its account for an event's) half the time, so requests
get past the 404s and 403s. Examples are
derandomized (the same every run, as CI needs); HT_FUZZ_EXAMPLES runs more locally."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from pipelines.config import Settings
from tests.support.db import Db
from tests.support.factories import new_trigger, new_workflow, tenants

EXAMPLES = int(os.environ.get("HT_FUZZ_EXAMPLES", "30"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TRIGGER = {
    "trigger_type": "contact",
    "trigger_event": "tag_added",
    "filters": {"conditions": [{"field": "tag", "operator": "equals", "value": "vip"}]},
}
# The app's document, built without servers: schemathesis parametrizes at collection, before
# any fixture has served the app (test_the_fuzzed_document_is_the_served_one ties the two).
DOCUMENT = create_app(Settings(database_url="postgresql://-", redis_url="redis://-")).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)
_seeded_ids: dict[str, str] = {}  # of the operation under test, set by the `seeded` fixture


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    if not path_parameters:
        return st.just(path_parameters)
    ours = {name: _seeded_ids.get(name, value) for name, value in path_parameters.items()}
    return st.sampled_from([path_parameters, ours])


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Events of the seeded account, half the time, so ingest gets past 'another account'."""
    if not isinstance(body, dict) or "account_id" not in body:
        return st.just(body)
    return st.sampled_from([body, {**body, "account_id": _seeded_ids["account_id"]}])


@pytest.fixture
def seeded(api_url: str, db_sync: Db) -> Iterator[dict[str, str]]:
    """An account with a workflow and its trigger, new for each operation (what a fuzzed
    DELETE or PATCH did is not what the next operation meets); the headers of its key."""
    with tenants(db_sync, api_url) as make:
        t = make()
        workflow = new_workflow(t.client)
        trigger = new_trigger(t.client, workflow["id"], TRIGGER)
        _seeded_ids.update(
            workflow_id=workflow["id"], trigger_id=trigger["id"], account_id=str(t.account_id)
        )
        yield {"Authorization": f"Bearer {t.key}"}
        _seeded_ids.clear()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_route_answers_5xx_or_off_its_schema(
    case: Any, api_url: str, seeded: dict[str, str]
) -> None:
    case.call_and_validate(base_url=api_url, headers=seeded, checks=CHECKS)


def test_the_fuzzed_document_is_the_served_one(api_url: str) -> None:
    assert httpx.get(f"{api_url}/openapi.json").json() == DOCUMENT
