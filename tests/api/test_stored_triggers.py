"""A trigger stored with a configuration that no longer validates (written past the API) is
reported `invalid` with the reason, and changing its workflow still works (issue 21 item 8,
docs/contract.md §4)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pipelines import errors
from pipelines.examples import all_of, cond, trigger_body
from tests.support.db import Db
from tests.support.factories import Tenant, active_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]
BOGUS = all_of({"field": "tag", "operator": "bogus_op", "value": "x"})


def corrupt(db_sync: Db, trigger_id: str, filters: dict[str, Any] = BOGUS) -> None:
    db_sync.run(
        lambda c: c.execute(
            "UPDATE workflow_triggers SET filters = $2 WHERE id = $1",
            uuid.UUID(trigger_id),
            filters,
        )
    )


def test_a_stored_invalid_trigger_reads_as_invalid_with_the_reason(
    tenant: MakeTenant, db_sync: Db
) -> None:
    t = tenant()
    workflow, trigger = active_workflow(
        t.client, "contact", "tag_added", all_of(cond("tag", "equals", "a"))
    )
    fine, _ = active_workflow(t.client, "contact", "tag_added")
    assert t.client.get(f"/workflows/{fine['id']}/trigger").json()["state"] == "valid"
    corrupt(db_sync, trigger["id"])
    shown = t.client.get(f"/workflows/{workflow['id']}/trigger")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["state"] == "invalid"
    assert body["reason"].startswith(f"{errors.INVALID_OPERATOR}: 'bogus_op' is not an operator")
    assert body["reason"].endswith("(at /filters/conditions/0/operator)")
    assert body["filters"] == BOGUS  # as stored
    fetched = t.client.get(f"/workflows/{fine['id']}/trigger").json()
    assert (fetched["state"], fetched["reason"]) == ("valid", None)


def test_test_preview_and_backtest_of_an_invalid_trigger_are_409_with_the_reason(
    tenant: MakeTenant, db_sync: Db
) -> None:
    t = tenant()
    workflow, trigger = active_workflow(t.client, "contact", "tag_added")
    corrupt(db_sync, trigger["id"])
    base = f"/workflows/{workflow['id']}/trigger/{trigger['id']}"
    tested = t.client.post(
        f"{base}/test", json={"contact_id": str(uuid.uuid4()), "simulate_event_data": {"tag": "x"}}
    )
    assert "bogus_op" in problem(tested, 409, errors.INVALID_STORED_TRIGGER)["detail"]
    previewed = t.client.get(f"{base}/preview")
    assert "bogus_op" in problem(previewed, 409, errors.INVALID_STORED_TRIGGER)["detail"]
    backtest = f"/workflows/{workflow['id']}/trigger/backtest"
    saved = t.client.post(backtest, json={})
    assert "bogus_op" in problem(saved, 409, errors.INVALID_STORED_TRIGGER)["detail"]
    draft = t.client.post(backtest, json={"trigger": trigger_body("tag_added")})
    assert draft.status_code == 200, draft.text
    assert (draft.json()["trigger"], draft.json()["diff"]) == ("draft", None)


def test_the_workflow_of_an_invalid_trigger_can_still_be_changed_fixed_and_deleted(
    tenant: MakeTenant, db_sync: Db
) -> None:
    """Each change reads the trigger back for the partitions (store.config_sync.bump): an
    invalid one must not fail the change."""
    t = tenant()
    workflow, trigger = active_workflow(t.client, "contact", "tag_added")
    corrupt(db_sync, trigger["id"])
    path = f"/workflows/{workflow['id']}"
    assert t.client.patch(path, json={"status": "paused"}).status_code == 200
    assert t.client.patch(path, json={"status": "active"}).status_code == 200
    fixed = t.client.put(f"{path}/trigger/{trigger['id']}", json=trigger_body("tag_added"))
    assert fixed.status_code == 200, fixed.text
    assert (fixed.json()["state"], fixed.json()["reason"]) == ("valid", None)
    audit = t.client.get(f"{path}/trigger/audit").json()["items"]
    update = next(e for e in audit if e["action"] == "trigger.update")
    assert update["before"]["state"] == "invalid"
    assert update["after"]["state"] == "valid"
    corrupt(db_sync, trigger["id"])
    assert t.client.delete(path).status_code == 204
    assert t.client.get(path).status_code == 404
