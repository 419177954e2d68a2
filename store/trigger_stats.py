"""Reading per-trigger analytics back: a workflow's hourly rows in a window."""

from __future__ import annotations

import uuid
from datetime import datetime

from pipelines.reasons import Blocked
from pipelines.trigger_stats import Tally
from store.db import Executor


async def hourly(
    conn: Executor,
    account_id: uuid.UUID,
    workflow_id: uuid.UUID,
    since: datetime,
    until: datetime,
    trigger_id: uuid.UUID | None = None,
) -> list[tuple[datetime, Tally]]:
    rows = await conn.fetch(
        "SELECT hour, evaluated, matched, enrolled, errors, already_enrolled, cooldown,"
        " contact_deleted, loop_depth, latency_ms FROM trigger_stats"
        " WHERE account_id = $1 AND workflow_id = $2 AND hour >= $3 AND hour < $4"
        " AND ($5::uuid IS NULL OR trigger_id = $5) ORDER BY hour",
        account_id,
        workflow_id,
        since,
        until,
        trigger_id,
    )
    return [
        (
            r["hour"],
            Tally(
                evaluated=r["evaluated"],
                matched=r["matched"],
                enrolled=r["enrolled"],
                errors=r["errors"],
                blocked={
                    Blocked.ALREADY_ENROLLED: r["already_enrolled"],
                    Blocked.COOLDOWN: r["cooldown"],
                    Blocked.CONTACT_DELETED: r["contact_deleted"],
                    Blocked.LOOP_DEPTH_EXCEEDED: r["loop_depth"],
                },
                latency=list(r["latency_ms"]),
            ),
        )
        for r in rows
    ]
