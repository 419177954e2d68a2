"""`hairtrigger up` with a stored trigger that no longer validates (issue 21 item 8): it starts
and serves, every other trigger of that account and of others enrolls, the bad one is reported
invalid, and another row going bad while it runs stalls nothing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hairtrigger import embedded
from pipelines.examples import all_of, cond
from pipelines.triggers import validate_trigger
from store import accounts, config_sync
from store import workflows as store
from tests.support.db import Db
from tests.support.factories import event
from tests.support.servers import UP_REDIS_DB, own_servers
from tests.support.streams import Streams
from tests.support.up import Up
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow
BOGUS = all_of({"field": "tag", "operator": "bogus_op", "value": "x"})


@pytest.fixture
def own_env(services: embedded.Services) -> Iterator[dict[str, str]]:
    """A database and Redis db of its own: the session's partition actors may be alive."""
    with own_servers(services, "ht_quarantine", UP_REDIS_DB, 4) as env:
        yield env


def seed(db: Db, tags: list[str]) -> tuple[uuid.UUID, str, list[uuid.UUID]]:
    """An account with a key and one active workflow per tag, its trigger matching that tag:
    (account, key, trigger ids), written as the API writes them."""

    async def work(conn: Any) -> tuple[uuid.UUID, str, list[uuid.UUID]]:
        account_id = await accounts.create_account(conn, "Quarantine Co")
        key, _ = await accounts.create_key(conn, account_id, ["workflow:read", "stats:read"])
        triggers = []
        for tag in tags:
            async with conn.transaction():
                wf = await store.insert_workflow(conn, account_id, f"on {tag}", "", [])
                await store.update_workflow(conn, wf["id"], {"status": "active"})
                filters = all_of(cond("tag", "equals", tag))
                config = validate_trigger("contact", "tag_added", filters, {})
                row = await store.insert_trigger(conn, account_id, wf["id"], config, True)
                await config_sync.bump(conn, wf["id"])
            triggers.append(row["id"])
        return account_id, key, triggers

    found: tuple[uuid.UUID, str, list[uuid.UUID]] = db.run(work)
    return found


def corrupt(db: Db, trigger_id: uuid.UUID) -> None:
    db.run(
        lambda c: c.execute(
            "UPDATE workflow_triggers SET filters = $2, sync_version = nextval('config_sync_seq')"
            " WHERE id = $1",
            trigger_id,
            BOGUS,
        )
    )


def enrolled(db: Db, account_id: uuid.UUID) -> set[uuid.UUID]:
    rows = db.fetch("SELECT trigger_id FROM workflow_enrollments WHERE account_id = $1", account_id)
    return {r["trigger_id"] for r in rows}


def test_up_starts_and_serves_with_a_stored_trigger_that_no_longer_validates(
    own_env: dict[str, str], tmp_path: Path
) -> None:
    env = own_env
    migrated = subprocess.run(
        [sys.executable, "-m", "hairtrigger.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    db = Db(env["DATABASE_URL"])
    a, key, (a_good, a_bad, a_later) = seed(db, ["good", "bad", "later"])
    b, _, (b_good,) = seed(db, ["good"])
    corrupt(db, a_bad)
    up = Up(env, tmp_path)
    try:
        up.wait_healthy()  # before: the partitions never became ready, and up never served
        streams = Streams(env["REDIS_URL"])
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"{up.base}/api/v1", headers=headers, timeout=30) as client:

            def quarantined() -> int:
                partitions = client.get("/stats").json()["partitions"]
                return sum(p["invalid_triggers"] for p in partitions)

            assert quarantined() >= 1  # a's partition; more if a is spread
            shown = client.get(f"/workflows/{_workflow(db, a_bad)}/trigger").json()
            assert shown["state"] == "invalid"
            assert "bogus_op" in shown["reason"]
            streams.send([event(a, "contact.tag_added", tag=t) for t in ("good", "bad")])
            streams.send([event(b, "contact.tag_added", tag="good")])
            wait_until(lambda: enrolled(db, a) == {a_good}, "the account's good trigger")
            wait_until(lambda: enrolled(db, b) == {b_good}, "another account's trigger")
            before = quarantined()
            corrupt(db, a_later)  # while running: the partitions' re-read meets it
            wait_until(lambda: quarantined() > before, "the re-read to quarantine it")
            streams.send([event(a, "contact.tag_added", tag=t) for t in ("good", "later")])
            streams.send([event(b, "contact.tag_added", tag="good")])
            count = "SELECT count(*) FROM workflow_enrollments WHERE account_id = $1"
            wait_until(lambda: db.value(count, b) == 2, "another account, after the re-read")
            streams.wait_drained()
            assert enrolled(db, a) == {a_good}
        streams.close()
    finally:
        output = up.stop()
    for trigger_id in (a_bad, a_later):
        assert str(trigger_id) in output, output[-3000:]
    assert "bogus_op" in output


def _workflow(db: Db, trigger_id: uuid.UUID) -> uuid.UUID:
    found: uuid.UUID = db.value(
        "SELECT workflow_id FROM workflow_triggers WHERE id = $1", trigger_id
    )
    return found
