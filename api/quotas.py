"""Refusing writes past an account's quotas (docs/contract.md §15), and its quotas' view."""

from __future__ import annotations

import uuid
from typing import Any

from pipelines import sizes
from pipelines.quotas import Quotas, refuse_growth, refuse_large_filter, view
from pipelines.triggers import TriggerConfig
from store import quotas as store
from store.db import Executor


def check_filter(quotas: Quotas, config: TriggerConfig) -> None:
    """409 for filters larger than a trigger may be, before anything is written."""
    refuse_large_filter(quotas.filter_bytes, sizes.filter_bytes(config.filters))


async def refuse_past_quota(
    conn: Executor,
    quotas: Quotas,
    account_id: uuid.UUID,
    *,
    workflows: int = 0,
    triggers: int = 0,
    index_bytes: int = 0,
) -> None:
    """409 when the write this transaction just made, adding these, took the account past a
    quota; raising rolls the write back. The write has locked the account's usage row (the
    counts are kept by migration 0014's triggers), so concurrent writes of the account reach
    this check one at a time, each seeing the others' committed use."""
    if workflows <= 0 and triggers <= 0 and index_bytes <= 0:
        return
    use = await store.usage(conn, account_id)
    refuse_growth("workflows", quotas.workflows, use.workflows, workflows)
    refuse_growth("triggers", quotas.triggers, use.triggers, triggers)
    refuse_growth("index_bytes", quotas.index_bytes, use.index_bytes, index_bytes)


async def quota_view(conn: Executor, quotas: Quotas, account_id: uuid.UUID) -> dict[str, Any]:
    return view(quotas, await store.usage(conn, account_id))
