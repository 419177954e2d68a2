"""Idempotency keys in Postgres: claim a key, store the response, find it again, prune."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from store.db import Conn, Executor


@dataclass(frozen=True, slots=True)
class Stored:
    fingerprint: bytes
    done: bool
    lease_over: bool
    expired: bool
    status: int | None
    headers: list[list[str]] | None
    body: bytes | None


async def claim(
    conn: Executor,
    account_id: uuid.UUID,
    key: str,
    fingerprint: bytes,
    ttl_s: float,
    lease_s: float,
) -> uuid.UUID | None:
    """A claim id when this request may run: the key is new, expired, or held by a claim with
    the same fingerprint whose lease is over (its request died). Atomic under concurrency."""
    claim_id = uuid.uuid4()
    row = await conn.fetchval(
        """
        INSERT INTO idempotency_keys AS k
            (account_id, key, fingerprint, state, claim_id, lease_until)
        VALUES ($1, $2, $3, 'running', $6, now() + make_interval(secs => $5))
        ON CONFLICT (account_id, key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, state = 'running', claim_id = EXCLUDED.claim_id,
            lease_until = EXCLUDED.lease_until, status = NULL, headers = NULL, body = NULL,
            created_at = now()
        WHERE k.created_at <= now() - make_interval(secs => $4)
           OR (k.state = 'running' AND k.lease_until <= now()
               AND k.fingerprint = EXCLUDED.fingerprint)
        RETURNING true
        """,
        account_id,
        key,
        fingerprint,
        float(ttl_s),
        float(lease_s),
        claim_id,
    )
    return claim_id if row else None


async def find(conn: Executor, account_id: uuid.UUID, key: str, ttl_s: float) -> Stored | None:
    row = await conn.fetchrow(
        """
        SELECT fingerprint, state = 'done' AS done,
               coalesce(lease_until <= now(), false) AS lease_over,
               created_at <= now() - make_interval(secs => $3) AS expired,
               status, headers, body
        FROM idempotency_keys WHERE account_id = $1 AND key = $2
        """,
        account_id,
        key,
        float(ttl_s),
    )
    if row is None:
        return None
    body = row["body"]
    return Stored(
        bytes(row["fingerprint"]),
        row["done"],
        row["lease_over"],
        row["expired"],
        row["status"],
        row["headers"],
        bytes(body) if body is not None else None,
    )


async def complete(
    conn: Executor,
    account_id: uuid.UUID,
    key: str,
    claim_id: uuid.UUID,
    status: int,
    headers: list[list[str]],
    body: bytes,
) -> None:
    """Keep the response, if the claim is still this request's."""
    await conn.execute(
        "UPDATE idempotency_keys SET state = 'done', lease_until = NULL, status = $4,"
        " headers = $5, body = $6"
        " WHERE account_id = $1 AND key = $2 AND claim_id = $3 AND state = 'running'",
        account_id,
        key,
        claim_id,
        status,
        headers,
        body,
    )


async def release(conn: Executor, account_id: uuid.UUID, key: str, claim_id: uuid.UUID) -> None:
    """Give the claim up (the request had no outcome worth replaying): a retry runs afresh."""
    await conn.execute(
        "DELETE FROM idempotency_keys"
        " WHERE account_id = $1 AND key = $2 AND claim_id = $3 AND state = 'running'",
        account_id,
        key,
        claim_id,
    )


async def prune(conn: Executor, ttl_s: float, batch: int = 5000) -> int:
    """Delete up to `batch` expired keys of any account, oldest first; how many went."""
    removed: int = await conn.fetchval(
        "SELECT hairtrigger_prune_idempotency_keys($1, $2)", float(ttl_s), batch
    )
    return removed


async def name_account(conn: Conn, account_id: uuid.UUID) -> None:
    """Name the account the connection works for, as row-level security on the API's
    connections asks (migration 0009); the pool's reset on release forgets it again."""
    await conn.execute("SELECT set_config('hairtrigger.account_id', $1, false)", str(account_id))


@asynccontextmanager
async def account_connection(pool: asyncpg.Pool, account_id: uuid.UUID) -> AsyncIterator[Conn]:
    """A connection of `pool` that works for `account_id`."""
    async with pool.acquire() as conn:
        await name_account(conn, account_id)
        yield conn
