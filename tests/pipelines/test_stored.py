"""Stored trigger rows read back (issue 21 item 8): one that no longer validates becomes an
InvalidSpec with the reason, never an exception; the API's verdict on a stored configuration
names the same reason."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from pipelines import errors
from pipelines.examples import all_of, cond
from pipelines.index import InvalidSpec, TriggerSpec
from pipelines.stored import read_spec, stored_reason

BOGUS = all_of(cond("tag", "equals", "hot"), {"field": "tag", "operator": "bogus_op", "value": 1})


def row(**overrides: Any) -> dict[str, Any]:
    return {
        "id": uuid4(),
        "workflow_id": uuid4(),
        "account_id": uuid4(),
        "trigger_event": "tag_added",
        "filters": all_of(cond("tag", "equals", "hot")),
        "settings": {},
        "live": True,
        "sync_version": 7,
        **overrides,
    }


def test_a_valid_row_is_a_spec() -> None:
    found = read_spec(row())
    assert isinstance(found, TriggerSpec)
    assert (found.event.name, found.sync_version, found.live) == ("tag_added", 7, True)
    assert stored_reason("tag_added", row()["filters"], {}) is None


@pytest.mark.parametrize(
    ("overrides", "title", "pointer"),
    [
        ({"filters": BOGUS}, errors.INVALID_OPERATOR, "/filters/conditions/1/operator"),
        ({"filters": {"logic": "XOR", "conditions": []}}, errors.INVALID_FILTER, "/filters/logic"),
        ({"filters": []}, errors.INVALID_FILTER, "/filters"),
        ({"settings": {"colour": "red"}}, errors.INVALID_SETTINGS, "/settings/colour"),
        ({"trigger_event": "tag_sneezed"}, errors.INVALID_TRIGGER_EVENT, ""),
    ],
    ids=["operator", "logic", "not an object", "settings", "event"],
)
def test_a_row_that_no_longer_validates_is_an_invalid_spec_with_the_reason(
    overrides: dict[str, Any], title: str, pointer: str
) -> None:
    stored = row(**overrides)
    found = read_spec(stored)
    assert isinstance(found, InvalidSpec)
    assert (found.trigger_id, found.account_id, found.sync_version, found.live) == (
        stored["id"],
        stored["account_id"],
        7,
        True,
    )
    assert found.reason.startswith(f"{title}: ")
    assert found.reason.endswith(f"(at {pointer})" if pointer else "")
    verdict = stored_reason(stored["trigger_event"], stored["filters"], stored["settings"])
    assert verdict == found.reason


def test_a_dead_row_that_no_longer_validates_stays_dead() -> None:
    found = read_spec(row(filters=BOGUS, live=False))
    assert isinstance(found, InvalidSpec)
    assert not found.live
