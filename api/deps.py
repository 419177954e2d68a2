"""Dependencies: the pool, the Redis client, the caller's key and its scopes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ApiError
from pipelines import errors, scopes
from pipelines.config import Settings
from pipelines.index import InvalidSpec, Spec, TriggerSpec
from pipelines.quotas import Quotas
from store import accounts, audit, config_sync
from store import workflows as store
from store.db import Conn, Executor, TenantPool
from streams.clients import AsyncRedis

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="An API key from `hairtrigger keys create`.")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    account_id: uuid.UUID
    scopes: frozenset[str]


def get_pool(request: Request) -> TenantPool:
    """The caller's view of the database: row-level security limits it to the account of the
    key (set by the scope check); before that, it sees no tenant rows at all."""
    return TenantPool(request.app.state.api_pool, lambda: getattr(request.state, "account", None))


def get_system_pool(request: Request) -> asyncpg.Pool:
    """Across accounts, for what must be: finding an API key by its hash, system-wide stats."""
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def get_redis(request: Request) -> AsyncRedis:
    redis: AsyncRedis = request.app.state.redis
    return redis


def get_quotas(request: Request) -> Quotas:
    settings: Settings = request.app.state.settings
    return settings.quotas


PoolDep = Annotated[TenantPool, Depends(get_pool)]
QuotasDep = Annotated[Quotas, Depends(get_quotas)]
SystemPoolDep = Annotated[asyncpg.Pool, Depends(get_system_pool)]
RedisDep = Annotated[AsyncRedis, Depends(get_redis)]


async def _principal(
    request: Request,
    pool: SystemPoolDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise ApiError(401, errors.UNAUTHORIZED, "send 'Authorization: Bearer <api key>'")
    found = await accounts.find_key(pool, credentials.credentials)
    if found is None:
        raise ApiError(401, errors.UNAUTHORIZED, "the API key is not valid")
    request.state.account = found.account_id  # what get_pool's connections are limited to
    return Principal(found.key_id, found.account_id, found.scopes)


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise ApiError(403, errors.FORBIDDEN, f"the API key lacks the scope '{scope}'")
        return principal

    return check


Caller = Annotated[Principal, Depends(_principal)]  # any valid key, whatever its scopes
Reader = Annotated[Principal, Depends(require(scopes.SCOPE_WORKFLOW_READ))]
Editor = Annotated[Principal, Depends(require(scopes.SCOPE_WORKFLOW_EDIT))]
EventWriter = Annotated[Principal, Depends(require(scopes.SCOPE_EVENTS_WRITE))]
Operator = Annotated[Principal, Depends(require(scopes.SCOPE_STATS_READ))]


async def owned_workflow(
    conn: Executor,
    principal: Principal,
    workflow_id: uuid.UUID,
    *,
    lock: bool = False,
    deleted: bool = False,
) -> dict[str, Any]:
    """The caller's live workflow (or deleted too, if asked): 404 when there is none, 403 when
    another account owns it."""
    row = await store.get_workflow(conn, workflow_id, lock=lock, deleted=deleted)
    if row is None and await store.workflow_elsewhere(conn, workflow_id, deleted=deleted):
        raise ApiError(403, errors.FORBIDDEN, "the workflow belongs to another account")
    if row is None:
        raise ApiError(404, errors.NOT_FOUND, f"no workflow {workflow_id}")
    if row["account_id"] != principal.account_id:
        raise ApiError(403, errors.FORBIDDEN, "the workflow belongs to another account")
    return row


async def saved_spec(conn: Executor, workflow_id: uuid.UUID, trigger_id: uuid.UUID) -> TriggerSpec:
    """The workflow's live trigger as the partitions match it: 404 when there is none, 409 when
    its stored configuration no longer validates (they skip it)."""
    spec = await config_sync.live_spec(conn, trigger_id)
    if spec is None or spec.workflow_id != workflow_id:
        raise ApiError(404, errors.NOT_FOUND, f"workflow {workflow_id} has no trigger {trigger_id}")
    if isinstance(spec, InvalidSpec):
        raise ApiError(409, errors.INVALID_STORED_TRIGGER, spec.reason)
    return spec


async def record_change(
    conn: Conn,
    principal: Principal,
    action: str,
    workflow_id: uuid.UUID | None,
    trigger_id: uuid.UUID | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """One audit row for a change the caller made (REQ-U-003); account-level changes have no
    workflow."""
    await audit.record(
        conn,
        account_id=principal.account_id,
        workflow_id=workflow_id,
        trigger_id=trigger_id,
        action=action,
        actor_key_id=principal.key_id,
        before=before,
        after=after,
    )


class ConfigSync(Protocol):
    """Where committed trigger changes go: the partition actors."""

    async def push(self, account_id: uuid.UUID, specs: list[Spec]) -> bool: ...


Push = Literal["applied", "pending"]
PUSH_HEADER = "Config-Push"


def push_documented(status: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry that documents the Config-Push header of a change."""
    header = {
        "description": "`applied`: every partition applied the change before this answer, so "
        "events accepted from now on meet it. `pending`: one did not answer within "
        "HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S; the change has committed and reaches it within a "
        "few seconds by reconciliation (docs/contract.md §4).",
        "schema": {"type": "string", "enum": ["applied", "pending"]},
    }
    return {status: {"headers": {PUSH_HEADER: header}}}


async def push_config(
    request: Request, response: Response, account_id: uuid.UUID, specs: list[Spec]
) -> Push:
    """After the change has committed, before the reply: read-your-writes for events. The wait
    is bounded (HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S): a partition that does not answer must not
    hold the write, which has committed; the partitions' reconciliation then delivers it.
    Sets the Config-Push header (docs/contract.md §4, "Read-your-writes")."""
    outcome = await _push(request, account_id, specs)
    response.headers[PUSH_HEADER] = outcome
    return outcome


async def _push(request: Request, account_id: uuid.UUID, specs: list[Spec]) -> Push:
    if not specs:
        return "applied"  # nothing the partitions match changed
    sync: ConfigSync | None = request.app.state.sync
    if sync is None:
        return "pending"  # no actors in this process: they reconcile from Postgres
    timeout_s: float = request.app.state.settings.config_push_timeout_s
    try:
        applied = await asyncio.wait_for(sync.push(account_id, specs), timeout_s)
    except TimeoutError:
        log.warning("config push for account %s: no answer within %g s", account_id, timeout_s)
        return "pending"
    return "applied" if applied else "pending"
