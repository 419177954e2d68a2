"""The configuration audit trail (REQ-U-003): who changed what, before and after, when."""

from __future__ import annotations

import uuid
from typing import Any

from store.db import Conn, Executor


async def record(
    conn: Conn,
    *,
    account_id: uuid.UUID,
    workflow_id: uuid.UUID | None,
    trigger_id: uuid.UUID | None,
    action: str,
    actor_key_id: uuid.UUID | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await conn.execute(
        "INSERT INTO trigger_audit_log (account_id, workflow_id, trigger_id, action,"
        " actor_key_id, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        account_id,
        workflow_id,
        trigger_id,
        action,
        actor_key_id,
        before,
        after,
    )


_SELECT = (
    "SELECT id, workflow_id, trigger_id, action, actor_key_id, before, after, created_at"
    " FROM trigger_audit_log"
)


async def for_workflow(
    conn: Executor,
    account_id: uuid.UUID,
    workflow_id: uuid.UUID,
    limit: int,
    after_id: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"{_SELECT} WHERE account_id = $1 AND workflow_id = $2 AND id > $3 ORDER BY id LIMIT $4",
        account_id,
        workflow_id,
        after_id,
        limit,
    )
    return [dict(r) for r in rows]


async def for_account(
    conn: Executor, account_id: uuid.UUID, limit: int, after_id: int
) -> list[dict[str, Any]]:
    """The account-level changes (settings), oldest first: the rows without a workflow."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE account_id = $1 AND workflow_id IS NULL AND id > $2 ORDER BY id LIMIT $3",
        account_id,
        after_id,
        limit,
    )
    return [dict(r) for r in rows]
