"""Reading execution logs and enrollments back (docs/contract.md §6), and writing test-run logs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.db import Executor

_LOG_COLUMNS = (
    "id, workflow_id, trigger_id, contact_id, event_id, event_type, matched, enrolled,"
    " failure_reason, is_test, details, created_at"
)
_ENROLLMENT_COLUMNS = (
    "id, workflow_id, trigger_id, contact_id, event_id, status, run_at, enrolled_at, event_data"
)


@dataclass(frozen=True, slots=True)
class LogFilter:
    workflow_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    matched: bool | None = None
    is_test: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


class _Where:
    """AND-ed conditions with numbered parameters; values only ever travel as parameters."""

    def __init__(self, account_id: uuid.UUID) -> None:
        self.parts = ["account_id = $1"]
        self.args: list[Any] = [account_id]

    def add(self, template: str, value: Any) -> None:
        if value is not None:
            self.args.append(value)
            self.parts.append(template.format(f"${len(self.args)}"))

    def sql(self) -> str:
        return " AND ".join(self.parts)

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


async def list_logs(
    conn: Executor, account_id: uuid.UUID, where: LogFilter, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    """Newest first; `before_id` continues from a previous page."""
    w = _Where(account_id)
    w.add("workflow_id = {}", where.workflow_id)
    w.add("contact_id = {}", where.contact_id)
    w.add("matched = {}", where.matched)
    w.add("is_test = {}", where.is_test)
    w.add("created_at >= {}", where.since)
    w.add("created_at < {}", where.until)
    w.add("id < {}", before_id)
    rows = await conn.fetch(
        f"SELECT {_LOG_COLUMNS} FROM trigger_execution_logs WHERE {w.sql()}"
        f" ORDER BY id DESC LIMIT {w.param(limit)}",
        *w.args,
    )
    return [dict(r) for r in rows]


async def list_enrollments(
    conn: Executor,
    account_id: uuid.UUID,
    workflow_id: uuid.UUID,
    *,
    contact_id: uuid.UUID | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[dict[str, Any]]:
    """A workflow's enrollments, newest first; `before` (enrolled_at, id) continues a page.
    Live and ended ones alike: each table gives its newest `limit` by its own index, and one
    statement sees an enrollment moving to the history in exactly one of them."""
    w = _Where(account_id)
    w.add("workflow_id = {}", workflow_id)
    w.add("contact_id = {}", contact_id)
    w.add("status = {}", status)
    w.add("enrolled_at >= {}", since)
    w.add("enrolled_at < {}", until)
    if before is not None:
        w.parts.append(f"(enrolled_at, id) < ({w.param(before[0])}, {w.param(before[1])})")
    page = f"WHERE {w.sql()} ORDER BY enrolled_at DESC, id DESC LIMIT {w.param(limit)}"
    rows = await conn.fetch(
        f"(SELECT {_ENROLLMENT_COLUMNS} FROM workflow_enrollments {page}) UNION ALL"
        f" (SELECT {_ENROLLMENT_COLUMNS} FROM workflow_enrollment_history {page})"
        " ORDER BY enrolled_at DESC, id DESC LIMIT $" + str(len(w.args)),
        *w.args,
    )
    return [dict(r) for r in rows]


async def insert_test_log(
    conn: Executor,
    *,
    account_id: uuid.UUID,
    workflow_id: uuid.UUID,
    trigger_id: uuid.UUID,
    contact_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    matched: bool,
    failure_reason: str | None,
    details: dict[str, Any],
) -> int:
    """A test run's log row (is_test): it never counts as an enrollment or a decision."""
    log_id: int = await conn.fetchval(
        "INSERT INTO trigger_execution_logs (account_id, workflow_id, trigger_id, contact_id,"
        " event_id, event_type, matched, enrolled, failure_reason, is_test, details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8, true, $9) RETURNING id",
        account_id,
        workflow_id,
        trigger_id,
        contact_id,
        event_id,
        event_type,
        matched,
        failure_reason,
        details,
    )
    return log_id
