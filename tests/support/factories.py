"""Accounts with API keys and an HTTP client (tenants), workflows with their trigger, and event
envelopes."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from pipelines import scopes
from pipelines.sharding import shard_for
from store import accounts
from tests.support.db import Db

if TYPE_CHECKING:
    from tests.support.streams import Streams


@dataclass
class Tenant:
    account_id: uuid.UUID
    key: str
    key_id: uuid.UUID
    client: httpx.Client


def tenant_factory(db_sync: Db, api_url: str) -> Iterator[Callable[..., Tenant]]:
    """Factory: a new account with an API key (all scopes unless told) and an HTTP client to
    the API at `api_url`. The second next() closes the clients and deletes the accounts."""
    made: list[Tenant] = []

    def make(scopes: tuple[str, ...] = scopes.SCOPES, timezone: str = "UTC") -> Tenant:
        async def work(conn: Any) -> tuple[uuid.UUID, str, uuid.UUID]:
            account_id = await accounts.create_account(conn, "test account", timezone)
            key, key_id = await accounts.create_key(conn, account_id, list(scopes))
            return account_id, key, key_id

        account_id, key, key_id = db_sync.run(work)
        client = httpx.Client(
            base_url=f"{api_url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        made.append(Tenant(account_id, key, key_id, client))
        return made[-1]

    yield make
    for t in made:
        t.client.close()
    db_sync.run(
        lambda c: c.execute("DELETE FROM accounts WHERE id = ANY($1)", [t.account_id for t in made])
    )


tenants = contextlib.contextmanager(tenant_factory)  # with tenants(db_sync, url) as make: ...


def keyed(t: Tenant, key: str) -> httpx.Client:
    """A client for the same server presenting another key."""
    return httpx.Client(
        base_url=str(t.client.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def tenants_on_shards(
    make: Callable[..., Any], streams: Streams, want: Callable[[int, int], bool], tries: int = 40
) -> tuple[Any, Any]:
    """Two new tenants whose shards (a, b) satisfy `want(a, b)`."""
    first = make()
    shard = streams.shards
    a = shard_for(first.account_id, shard)
    for _ in range(tries):
        second = make()
        if want(a, shard_for(second.account_id, shard)):
            return first, second
    raise AssertionError("no pair of accounts on the wanted shards")


def new_workflow(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": "Follow up", **fields}
    response = client.post("/workflows", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def new_trigger(client: httpx.Client, workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/workflows/{workflow_id}/trigger", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def active_workflow(
    client: httpx.Client,
    trigger_type: str,
    trigger_event: str,
    filters: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    status: str = "active",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A workflow with this trigger, moved to `status` (active unless told)."""
    workflow = client.post("/workflows", json={"name": f"on {trigger_event}"}).json()
    trigger = client.post(
        f"/workflows/{workflow['id']}/trigger",
        json={
            "trigger_type": trigger_type,
            "trigger_event": trigger_event,
            "filters": filters,
            "settings": settings or {},
        },
    )
    assert trigger.status_code == 201, trigger.text
    if status != "draft":
        moved = client.patch(f"/workflows/{workflow['id']}", json={"status": "active"})
        assert moved.status_code == 200, moved.text
    if status == "paused":
        moved = client.patch(f"/workflows/{workflow['id']}", json={"status": "paused"})
        assert moved.status_code == 200, moved.text
    return workflow, trigger.json()


def event(
    account_id: uuid.UUID,
    event_type: str,
    contact_id: uuid.UUID | None = None,
    *,
    depth: int = 0,
    event_id: uuid.UUID | None = None,
    **data: Any,
) -> dict[str, Any]:
    """An event envelope as a producer writes it, stamped now; `data` goes into its data."""
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "account_id": str(account_id),
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"contact_id": str(contact_id or uuid.uuid4()), **data},
        "metadata": {"source": "test", "depth": depth},
    }


def envelope(account_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """An envelope as a client posts it to /events: a fixed timestamp, a contact tagged vip;
    `overrides` replace its top-level fields."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.tag_added",
        "account_id": str(account_id),
        "timestamp": "2026-11-25T10:00:00Z",
        "data": {"contact_id": str(uuid.uuid4()), "tag": "vip"},
        "metadata": {"source": "api"},
        **overrides,
    }
