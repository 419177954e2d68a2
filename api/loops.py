"""Refusing configuration changes that close a workflow loop (REQ-N-003)."""

from __future__ import annotations

import uuid
from typing import Any

from api.problems import ApiError
from pipelines import errors, loops
from pipelines.loop_search import Reach
from store import workflows as store
from store.db import Conn


def _node(row: dict[str, Any]) -> loops.Node:
    rank = (row["created_at"], row["workflow_id"])
    return loops.node(
        row["workflow_id"], row["name"], row["actions"], row["trigger_event"], row["filters"], rank
    )


async def refuse_loop(conn: Conn, account_id: uuid.UUID, workflow_id: uuid.UUID) -> None:
    """409 when the workflow, as this transaction has already changed it, is on a cycle of the
    account's active workflows. Checks of one account take turns until their transaction ends,
    so two concurrent changes cannot each pass and together close a loop. Only the workflows
    reachable from this one are read, a ring at a time (pipelines.loop_search)."""
    await store.lock_loop_check(conn, account_id)
    start = await store.loop_node(conn, workflow_id)
    reach = Reach(account_id, None if start is None else _node(start))
    while (lookup := reach.next()) is not None:
        rows = await store.loop_listeners(
            conn, account_id, lookup.keys, lookup.events, lookup.known
        )
        reach.add(_node(r) for r in rows)
    cycle = reach.cycle()
    if cycle is not None:
        raise ApiError(
            409,
            errors.WORKFLOW_LOOP,
            f"this change would close a loop of active workflows: {loops.describe(cycle)}",
            cycle=loops.cycle_json(cycle),
        )
