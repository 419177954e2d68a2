"""The Postgres side of a partition, as its batch step sees it (docs/architecture.md): the reads a
batch needs, its one write transaction, the enrollment outbox and the config it rebuilds from."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

import asyncpg

from pipelines.enrollment import BusinessHours, ContactKey, Enrollment, Last, LogEntry, PairKey
from pipelines.index import Spec
from pipelines.projection import Contact
from pipelines.trigger_stats import TriggerKey
from store import config_sync, db, stream


class PartitionStore:
    """Every call takes a pool connection of its own and gives it back: a batch never holds
    one connection while it waits for another."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, database_url: str) -> PartitionStore:
        return cls(await db.create_pool(database_url, 1, 4))

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def all_specs(self) -> list[Spec]:
        return await config_sync.all_specs(self.pool)

    async def account_specs(self, account_ids: list[uuid.UUID]) -> list[Spec]:
        return await config_sync.account_specs(self.pool, account_ids)

    async def specs_since(self, version: int) -> list[Spec]:
        return await config_sync.specs_since(self.pool, version)

    async def known_accounts(self, among: Iterable[uuid.UUID] | None) -> set[uuid.UUID]:
        return await stream.known_accounts(self.pool, among)

    async def contacts(self, keys: Iterable[ContactKey]) -> dict[ContactKey, Contact]:
        return await stream.load_contacts(self.pool, keys)

    async def history(self, pairs: Iterable[PairKey]) -> dict[PairKey, Last]:
        return await stream.load_history(self.pool, pairs)

    async def business_hours(self, accounts: Iterable[uuid.UUID]) -> dict[uuid.UUID, BusinessHours]:
        return await stream.load_business_hours(self.pool, accounts)

    async def write_batch(
        self,
        contacts: dict[ContactKey, Contact],
        enrollments: list[Enrollment],
        logs: list[LogEntry],
        evaluated: Mapping[TriggerKey, int],
    ) -> list[Enrollment]:
        async with self.pool.acquire() as conn:
            return await stream.write_batch(conn, contacts, enrollments, logs, evaluated)

    async def unpublished(self, shards: list[int], limit: int) -> list[tuple[uuid.UUID, bytes]]:
        return await stream.unpublished(self.pool, shards, limit)

    async def hold_unpublished(self, items: list[tuple[uuid.UUID, int]]) -> None:
        await stream.hold_unpublished(self.pool, items)

    async def committed_entries(
        self, ids: list[uuid.UUID]
    ) -> list[tuple[uuid.UUID, uuid.UUID, bytes]]:
        return await stream.committed_entries(self.pool, ids)

    async def mark_published(self, ids: list[uuid.UUID]) -> None:
        await stream.mark_published(self.pool, ids)
