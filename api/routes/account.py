"""Account settings: timezone and business hours."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Editor, PoolDep, Reader
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES
from api.schemas import AccountSettings, AccountSettingsIn
from pipelines.account import DEFAULT_BUSINESS_HOURS, check_business_hours, check_timezone
from store import accounts

router = APIRouter(
    prefix="/account", tags=["account"], route_class=GuardedRoute, responses=PROBLEM_RESPONSES
)


@router.get("/settings", response_model=AccountSettings)
async def get_settings(principal: Reader, pool: PoolDep) -> Any:
    """The caller's account: name, timezone and business hours."""
    return await accounts.get_settings(pool, principal.account_id)


@router.put("/settings", response_model=AccountSettings)
async def put_settings(body: AccountSettingsIn, principal: Editor, pool: PoolDep) -> Any:
    """Set the account timezone (IANA) and business hours (days, start, end in that zone)."""
    timezone = check_timezone(body.timezone)
    hours = body.business_hours.model_dump() if body.business_hours else DEFAULT_BUSINESS_HOURS
    return await accounts.put_settings(
        pool, principal.account_id, timezone, check_business_hours(hours)
    )
