"""System-wide figures for GET /api/v1/stats and the scheduler's gauges (no per-account data)."""

from __future__ import annotations

from store.db import Executor


async def queued_enrollments(conn: Executor) -> int:
    """Enrollments waiting for business hours (a count over the partial index on queued)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM workflow_enrollments WHERE status = 'queued'"
    )
    return count
