"""Postgres side of the trigger preview (REQ-O-001): count and sample the live contacts of an
account that meet a compiled preview condition (pipelines/preview.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipelines.catalog import TriggerEvent
from pipelines.filters import Group
from pipelines.preview import PreviewQuery, compile_preview
from store.db import Conn

SAMPLE_SIZE = 10


@dataclass(frozen=True, slots=True)
class SampleContact:
    contact_id: uuid.UUID
    tags: list[str]
    state: dict[str, Any]
    updated_at: datetime


def preview_sql(query: PreviewQuery) -> str:
    """One statement: the count of matching live contacts of account $1 and the most recently
    updated of them, with the condition's parameters from $2 on. Matches are read once."""
    return (
        "WITH m AS MATERIALIZED (SELECT c.contact_id, c.updated_at FROM contacts c"
        " WHERE c.account_id = $1 AND NOT c.deleted AND " + query.where + "),"
        " top AS (SELECT contact_id, updated_at FROM m"
        f" ORDER BY updated_at DESC, contact_id LIMIT {SAMPLE_SIZE})"
        " SELECT n.total, c.contact_id, c.tags, c.state, c.updated_at"
        " FROM (SELECT count(*) AS total FROM m) n"
        " LEFT JOIN top ON true"
        " LEFT JOIN contacts c ON c.account_id = $1 AND c.contact_id = top.contact_id"
        " ORDER BY top.updated_at DESC, top.contact_id"
    )


TIMEOUT_MS = 10_000  # unindexed conditions over 1M contacts take about 1.5 s here


async def preview(
    conn: Conn,
    account_id: uuid.UUID,
    filters: Group,
    event: TriggerEvent,
    timeout_ms: int = TIMEOUT_MS,
) -> tuple[int, list[SampleContact], PreviewQuery]:
    """The number of the account's live contacts meeting the filter's contact conditions, up
    to SAMPLE_SIZE of them (most recently updated first), and the compiled query. Raises
    asyncpg.QueryCanceledError after `timeout_ms` (an unindexed filter over a huge account)."""
    query = compile_preview(filters, event, first_param=2)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        rows = await conn.fetch(preview_sql(query), account_id, *query.params)
    samples = [
        SampleContact(r["contact_id"], list(r["tags"]), r["state"], r["updated_at"])
        for r in rows
        if r["contact_id"] is not None
    ]
    return rows[0]["total"], samples, query
