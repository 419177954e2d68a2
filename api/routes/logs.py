"""Execution logs and enrollments, read back per account with cursor pagination (docs/contract.md
§6)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api import cursors
from api.deps import PoolDep, Reader, owned_workflow
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from api.schemas import BoundedDatetime
from pipelines import errors
from store import logs

router = APIRouter(tags=["logs"], route_class=GuardedRoute, responses=PROBLEM_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Since = Annotated[BoundedDatetime | None, Query(alias="from", description="Inclusive lower bound.")]
Until = Annotated[BoundedDatetime | None, Query(alias="to", description="Exclusive upper bound.")]


class LogEntry(BaseModel):
    id: int
    workflow_id: uuid.UUID
    trigger_id: uuid.UUID
    contact_id: uuid.UUID | None
    event_id: uuid.UUID | None
    event_type: str
    matched: bool
    enrolled: bool
    failure_reason: str | None = Field(examples=["blocked: already_enrolled"])
    is_test: bool = Field(description="Written by the test endpoint.")
    details: dict[str, Any] | None
    created_at: datetime


class LogPage(BaseModel):
    items: list[LogEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class EnrollmentOut(BaseModel):
    id: uuid.UUID
    workflow_id: uuid.UUID
    trigger_id: uuid.UUID
    contact_id: uuid.UUID
    event_id: uuid.UUID
    status: str = Field(examples=["triggered"])
    run_at: datetime
    enrolled_at: datetime
    event_data: dict[str, Any]


class EnrollmentPage(BaseModel):
    items: list[EnrollmentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


def _window(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise ApiError(400, errors.BAD_REQUEST, "'from' must be before 'to'", pointer="/from")


@router.get("/trigger-logs", response_model=LogPage)
async def trigger_logs(
    principal: Reader,
    pool: PoolDep,
    workflow_id: uuid.UUID | None = None,
    contact_id: uuid.UUID | None = None,
    matched: bool | None = None,
    is_test: bool | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Any:
    """The caller's account's execution logs, newest first: every match (enrolled or why
    not), every test run, and opted-in non-matches."""
    _window(since, until)
    before_id = cursors.decode_id(cursor) if cursor else None
    where = logs.LogFilter(workflow_id, contact_id, matched, is_test, since, until)
    rows = await logs.list_logs(pool, principal.account_id, where, limit, before_id)
    return cursors.id_page(rows, limit)


@router.get("/workflows/{workflow_id}/enrollments", response_model=EnrollmentPage)
async def workflow_enrollments(
    workflow_id: uuid.UUID,
    principal: Reader,
    pool: PoolDep,
    contact_id: uuid.UUID | None = None,
    status: Annotated[str | None, Query(pattern="^(triggered|queued)$")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Any:
    """The workflow's enrollments, newest first; still readable after it is deleted."""
    _window(since, until)
    await owned_workflow(pool, principal, workflow_id, deleted=True)
    before = cursors.decode_keyset(cursor) if cursor else None
    rows = await logs.list_enrollments(
        pool,
        principal.account_id,
        workflow_id,
        contact_id=contact_id,
        status=status,
        since=since,
        until=until,
        limit=limit,
        before=before,
    )
    next_cursor = None
    if len(rows) == limit:
        next_cursor = cursors.encode_keyset(rows[-1]["enrolled_at"], rows[-1]["id"])
    return {"items": rows, "next_cursor": next_cursor}
