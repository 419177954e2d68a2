"""Refusing configuration changes that close a workflow loop (REQ-N-003)."""

from __future__ import annotations

import uuid

from api.problems import ApiError
from pipelines import errors, loops
from store import workflows as store
from store.db import Conn

_EVENTS = sorted(loops.EMITTED_EVENTS)


async def refuse_loop(conn: Conn, account_id: uuid.UUID, workflow_id: uuid.UUID) -> None:
    """409 when the workflow, as this transaction has already changed it, is on a cycle of the
    account's active workflows. Checks of one account take turns until their transaction ends,
    so two concurrent changes cannot each pass and together close a loop."""
    await store.lock_loop_check(conn, account_id)
    rows = await store.loop_graph(conn, account_id, _EVENTS)
    nodes = [
        loops.node(r["workflow_id"], r["name"], r["actions"], r["trigger_event"], r["filters"])
        for r in rows
    ]
    cycle = loops.find_cycle(nodes, workflow_id)
    if cycle is not None:
        raise ApiError(
            409,
            errors.WORKFLOW_LOOP,
            f"this change would close a loop of active workflows: {loops.describe(cycle)}",
            cycle=loops.cycle_json(cycle),
        )
