"""A workflow's trigger: configure, read, replace, soft delete, and its audit trail."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
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
from api.problems import PROBLEM_RESPONSES, ApiError
from api.quotas import check_filter, refuse_past_quota
from api.routes import templates
from api.schemas import AuditPage, Trigger, TriggerIn
from pipelines import errors
from pipelines.stored import stored_reason
from pipelines.triggers import validate_trigger
from store import audit, config_sync
from store import workflows as store
from store.db import Conn

router = APIRouter(
    prefix="/workflows/{workflow_id}/trigger",
    tags=["triggers"],
    route_class=GuardedRoute,
    responses=PROBLEM_RESPONSES,
)


def judged(row: dict[str, Any]) -> dict[str, Any]:
    """The trigger with its `state`: parsed and compiled as the partitions do, so a stored row
    that no longer validates is reported `invalid` with the reason they skip it for."""
    reason = stored_reason(row["trigger_event"], row["filters"], row["settings"])
    return {**row, "state": "valid" if reason is None else "invalid", "reason": reason}


def public(row: dict[str, Any]) -> dict[str, Any]:
    return Trigger.model_validate(judged(row)).model_dump(mode="json")


async def _live_trigger(
    conn: Conn, workflow_id: uuid.UUID, trigger_id: uuid.UUID
) -> dict[str, Any]:
    row = await store.live_trigger(conn, workflow_id)
    if row is None or row["id"] != trigger_id:
        raise ApiError(404, errors.NOT_FOUND, f"workflow {workflow_id} has no trigger {trigger_id}")
    return row


@router.post("", status_code=201, response_model=Trigger, responses=push_documented(201))
async def create_trigger(
    workflow_id: uuid.UUID,
    body: TriggerIn,
    principal: Editor,
    pool: PoolDep,
    quotas: QuotasDep,
    request: Request,
    response: Response,
) -> Any:
    """Configure the workflow's trigger. A workflow has at most one (409 for a second).

    The configuration is validated before anything is saved: unknown types, events or
    operators, wrong value types, and more than 20 conditions are refused with a problem
    document naming the problem; a trigger that would close a loop of active workflows
    (REQ-N-003) is refused with 409 "Workflow loop detected", the cycle named. Past the
    account's quotas (`triggers`, `filter_bytes` of this trigger, `index_bytes`: see GET
    /account/settings), 409 "Quota exceeded".
    """
    body = templates.resolve(body)
    config = validate_trigger(body.trigger_type, body.trigger_event, body.filters, body.settings)
    check_filter(quotas, config)
    async with pool.acquire() as conn, conn.transaction():
        workflow = await owned_workflow(conn, principal, workflow_id, lock=True)
        try:
            row = await store.insert_trigger(
                conn, principal.account_id, workflow_id, config, body.is_active
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(
                409,
                errors.TRIGGER_EXISTS,
                f"workflow {workflow_id} already has a trigger; replace it with PUT",
            ) from None
        await refuse_past_quota(
            conn, quotas, principal.account_id, triggers=1, index_bytes=row["index_bytes"]
        )
        if workflow["status"] == "active" and row["is_active"]:
            await refuse_loop(conn, principal.account_id, workflow_id)
        await record_change(
            conn, principal, "trigger.create", workflow_id, row["id"], after=public(row)
        )
        specs = await config_sync.bump(conn, workflow_id)
    await push_config(request, response, principal.account_id, specs)
    return judged(row)


@router.get("", response_model=Trigger)
async def get_trigger(workflow_id: uuid.UUID, principal: Reader, pool: PoolDep) -> Any:
    """The workflow's live trigger. `state` is `invalid`, with the `reason`, when the trigger
    as stored no longer validates: the partitions skip it (it matches nothing) until it is
    replaced with PUT."""
    await owned_workflow(pool, principal, workflow_id)
    row = await store.live_trigger(pool, workflow_id)
    if row is None:
        raise ApiError(404, errors.NOT_FOUND, f"workflow {workflow_id} has no trigger")
    return judged(row)


@router.put("/{trigger_id}", response_model=Trigger, responses=push_documented(200))
async def replace_trigger(
    workflow_id: uuid.UUID,
    trigger_id: uuid.UUID,
    body: TriggerIn,
    principal: Editor,
    pool: PoolDep,
    quotas: QuotasDep,
    request: Request,
    response: Response,
) -> Any:
    """Replace the trigger's configuration, validated like a create (loops and quotas
    included: a larger filter must fit `filter_bytes` and the account's `index_bytes`); its
    version goes up."""
    body = templates.resolve(body)
    config = validate_trigger(body.trigger_type, body.trigger_event, body.filters, body.settings)
    check_filter(quotas, config)
    async with pool.acquire() as conn, conn.transaction():
        workflow = await owned_workflow(conn, principal, workflow_id, lock=True)
        before = await _live_trigger(conn, workflow_id, trigger_id)
        after = await store.replace_trigger(
            conn, principal.account_id, trigger_id, config, body.is_active
        )
        grown = (after["index_bytes"] or 0) - (before["index_bytes"] or 0)
        await refuse_past_quota(conn, quotas, principal.account_id, index_bytes=grown)
        if workflow["status"] == "active" and after["is_active"]:
            await refuse_loop(conn, principal.account_id, workflow_id)
        await record_change(
            conn,
            principal,
            "trigger.update",
            workflow_id,
            trigger_id,
            before=public(before),
            after=public(after),
        )
        specs = await config_sync.bump(conn, workflow_id)
    await push_config(request, response, principal.account_id, specs)
    return judged(after)


@router.delete("/{trigger_id}", status_code=204, responses=push_documented(204))
async def delete_trigger(
    workflow_id: uuid.UUID,
    trigger_id: uuid.UUID,
    principal: Editor,
    pool: PoolDep,
    request: Request,
) -> Response:
    """Soft-delete the trigger: it stops firing at once; its history is kept."""
    async with pool.acquire() as conn, conn.transaction():
        await owned_workflow(conn, principal, workflow_id, lock=True)
        before = await _live_trigger(conn, workflow_id, trigger_id)
        await store.delete_trigger(conn, trigger_id)
        await record_change(
            conn, principal, "trigger.delete", workflow_id, trigger_id, before=public(before)
        )
        specs = await config_sync.bump(conn, workflow_id)
    done = Response(status_code=204)
    await push_config(request, done, principal.account_id, specs)
    return done


@router.get("/audit", response_model=AuditPage)
async def trigger_audit(
    workflow_id: uuid.UUID,
    principal: Reader,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Any:
    """Every change to the workflow and its trigger: who (API key), when, before and after.

    Still readable after the workflow is deleted."""
    await owned_workflow(pool, principal, workflow_id, deleted=True)
    after_id = cursors.decode_id(cursor) if cursor else 0
    rows = await audit.for_workflow(pool, principal.account_id, workflow_id, limit, after_id)
    return cursors.id_page(rows, limit)
