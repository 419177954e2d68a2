"""Account settings: timezone and business hours, and the account's quotas with their use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import cursors
from api.deps import Editor, PoolDep, QuotasDep, Reader, record_change
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES
from api.quotas import quota_view
from api.schemas import AccountSettings, AccountSettingsIn, AuditPage
from pipelines.account import DEFAULT_BUSINESS_HOURS, check_business_hours, check_timezone
from store import accounts, audit

router = APIRouter(
    prefix="/account", tags=["account"], route_class=GuardedRoute, responses=PROBLEM_RESPONSES
)


@router.get("/settings", response_model=AccountSettings)
async def get_settings(principal: Reader, pool: PoolDep, quotas: QuotasDep) -> Any:
    """The caller's account: name, timezone and business hours, and its quotas, each with its
    limit and what the account uses of it now."""
    async with pool.acquire() as conn:
        found = await accounts.get_settings(conn, principal.account_id)
        return {**(found or {}), "quotas": await quota_view(conn, quotas, principal.account_id)}


@router.put("/settings", response_model=AccountSettings)
async def put_settings(
    body: AccountSettingsIn, principal: Editor, pool: PoolDep, quotas: QuotasDep
) -> Any:
    """Set the account timezone (IANA) and business hours (days, start, end in that zone)."""
    timezone = check_timezone(body.timezone)
    hours = body.business_hours.model_dump() if body.business_hours else DEFAULT_BUSINESS_HOURS
    hours = check_business_hours(hours)
    async with pool.acquire() as conn, conn.transaction():
        before = await accounts.get_settings(conn, principal.account_id, for_update=True)
        after = await accounts.put_settings(conn, principal.account_id, timezone, hours)
        await record_change(
            conn,
            principal,
            "account.settings.update",
            None,
            before=_audited(before),
            after=_audited(after),
        )
        return {**after, "quotas": await quota_view(conn, quotas, principal.account_id)}


@router.get("/settings/audit", response_model=AuditPage)
async def settings_audit(
    principal: Reader,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Any:
    """Every change to the account settings: who (API key), when, before and after; oldest
    first. Workflow and trigger changes are under `GET /workflows/{id}/trigger/audit`."""
    after_id = cursors.decode_id(cursor) if cursor else 0
    rows = await audit.for_account(pool, principal.account_id, limit, after_id)
    return cursors.id_page(rows, limit)


def _audited(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the trail keeps of the settings: the ones a user sets."""
    if settings is None:
        return None
    return {"timezone": settings["timezone"], "business_hours": settings["business_hours"]}
