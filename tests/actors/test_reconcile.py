"""A config change whose push to the actors never arrived (the gateway failed after commit)
reaches them anyway: each housekeeping round re-reads the triggers changed since the last."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from pipelines.examples import all_of, cond
from tests.support.db import Db, enrollments
from tests.support.factories import Tenant, active_workflow, event
from tests.support.streams import Streams

MakeTenant = Callable[..., Tenant]


def test_a_change_committed_without_a_push_is_applied_by_the_owner(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    _, trigger = active_workflow(
        t.client, "contact", "tag_added", all_of(cond("tag", "equals", "hot"))
    )
    # What a gateway that crashed between commit and push leaves behind: a new filter and a new
    # sync version in Postgres, and actors that were never told.
    db_sync.run(
        lambda c: c.execute(
            "UPDATE workflow_triggers SET filters = $2, sync_version = nextval('config_sync_seq')"
            " WHERE id = $1",
            uuid.UUID(trigger["id"]),
            all_of(cond("tag", "equals", "cold")),
        )
    )
    deadline = time.monotonic() + 60
    while True:  # until the owner has reconciled: a cold tag enrolls
        streams.send([event(t.account_id, "contact.tag_added", tag="cold")])
        streams.wait_drained()
        if enrollments(db_sync, t.account_id):
            break
        assert time.monotonic() < deadline, "the change never reached the partition actor"
        time.sleep(0.5)
    before = len(enrollments(db_sync, t.account_id))
    streams.send([event(t.account_id, "contact.tag_added", tag="hot")])  # the old filter
    streams.wait_drained()
    assert len(enrollments(db_sync, t.account_id)) == before
