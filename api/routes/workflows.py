"""Workflows: create, list, read, change status and actions, soft delete."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api import cursors
from api.deps import (
    Editor,
    PoolDep,
    QuotasDep,
    Reader,
    owned_workflow,
    push_config,
    push_documented,
    record_change,
)
from api.guard import GuardedRoute
from api.loops import refuse_loop
from api.problems import PROBLEM_RESPONSES
from api.quotas import refuse_past_quota
from api.schemas import Workflow, WorkflowCreate, WorkflowPage, WorkflowPatch
from pipelines.workflows import check_actions, check_transition
from store import config_sync
from store import workflows as store

router = APIRouter(
    prefix="/workflows", tags=["workflows"], route_class=GuardedRoute, responses=PROBLEM_RESPONSES
)

_STATUS_ACTIONS = {
    "active": "workflow.activate",
    "paused": "workflow.pause",
    "draft": "workflow.draft",
}


def public(row: dict[str, Any]) -> dict[str, Any]:
    return Workflow.model_validate(row).model_dump(mode="json")


@router.post("", status_code=201, response_model=Workflow)
async def create_workflow(
    body: WorkflowCreate, principal: Editor, pool: PoolDep, quotas: QuotasDep
) -> Any:
    """Create a workflow. New workflows are `draft` and fire nothing until activated.

    Past the account's `workflows` quota (GET /account/settings), 409 "Quota exceeded"."""
    actions = check_actions([a.model_dump() for a in body.actions])
    async with pool.acquire() as conn, conn.transaction():
        row = await store.insert_workflow(
            conn, principal.account_id, body.name, body.description, actions
        )
        await refuse_past_quota(conn, quotas, principal.account_id, workflows=1)
        await record_change(conn, principal, "workflow.create", row["id"], after=public(row))
    return row


@router.get("", response_model=WorkflowPage)
async def list_workflows(
    principal: Reader,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Any:
    """The caller's workflows, oldest first, a page at a time."""
    after = cursors.decode_keyset(cursor) if cursor else None
    rows = await store.list_workflows(pool, principal.account_id, limit, after)
    next_cursor = None
    if len(rows) == limit:
        next_cursor = cursors.encode_keyset(rows[-1]["created_at"], rows[-1]["id"])
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/{workflow_id}", response_model=Workflow)
async def get_workflow(workflow_id: uuid.UUID, principal: Reader, pool: PoolDep) -> Any:
    """One workflow of the caller's account."""
    return await owned_workflow(pool, principal, workflow_id)


@router.patch("/{workflow_id}", response_model=Workflow, responses=push_documented(200))
async def update_workflow(
    workflow_id: uuid.UUID,
    body: WorkflowPatch,
    principal: Editor,
    pool: PoolDep,
    request: Request,
    response: Response,
) -> Any:
    """Rename, describe, change actions, or move between draft, active and paused.

    Activating a workflow, or changing the actions of an active one, so that it closes a loop
    of active workflows (REQ-N-003) is refused with 409 "Workflow loop detected", the cycle
    named."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "actions" in changes:
        changes["actions"] = check_actions(changes["actions"])
    async with pool.acquire() as conn, conn.transaction():
        before = await owned_workflow(conn, principal, workflow_id, lock=True)
        if "status" in changes:
            check_transition(before["status"], changes["status"])
        if not changes:
            return before
        after = await store.update_workflow(conn, workflow_id, changes)
        status_changed = after["status"] != before["status"]
        if after["status"] == "active" and (status_changed or "actions" in changes):
            await refuse_loop(conn, principal.account_id, workflow_id)
        action = _STATUS_ACTIONS[after["status"]] if status_changed else "workflow.update"
        await record_change(
            conn, principal, action, workflow_id, before=public(before), after=public(after)
        )
        specs = await config_sync.bump(conn, workflow_id) if status_changed else []
    await push_config(request, response, principal.account_id, specs)
    return after


@router.delete("/{workflow_id}", status_code=204, responses=push_documented(204))
async def delete_workflow(
    workflow_id: uuid.UUID, principal: Editor, pool: PoolDep, request: Request
) -> Response:
    """Soft-delete the workflow and its trigger; history and enrollments are kept."""
    async with pool.acquire() as conn, conn.transaction():
        before = await owned_workflow(conn, principal, workflow_id, lock=True)
        trigger = await store.live_trigger(conn, workflow_id)
        if trigger is not None:
            await store.delete_trigger(conn, trigger["id"])
        await store.delete_workflow(conn, workflow_id)
        trigger_id = trigger["id"] if trigger else None
        await record_change(
            conn, principal, "workflow.delete", workflow_id, trigger_id, before=public(before)
        )
        specs = await config_sync.bump(conn, workflow_id)
    done = Response(status_code=204)
    await push_config(request, done, principal.account_id, specs)
    return done
