"""Accounts and API keys. A key is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from store.db import Conn, Executor

KEY_PREFIX = "ht"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: uuid.UUID
    account_id: uuid.UUID
    scopes: frozenset[str]


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create_account(
    conn: Conn, name: str, timezone: str = "UTC", account_id: uuid.UUID | None = None
) -> uuid.UUID:
    """A new account (`account_id`: a chosen id, as benchmarks use for a repeatable layout)."""
    account_id = account_id or uuid.uuid4()
    await conn.execute(
        "INSERT INTO accounts (id, name, timezone) VALUES ($1, $2, $3)", account_id, name, timezone
    )
    return account_id


async def create_key(conn: Conn, account_id: uuid.UUID, scopes: list[str]) -> tuple[str, uuid.UUID]:
    """A new key for the account: (the key itself, its id)."""
    key_id = uuid.uuid4()
    key = f"{KEY_PREFIX}_{key_id.hex}_{secrets.token_urlsafe(32)}"
    await conn.execute(
        "INSERT INTO api_keys (id, account_id, key_hash, scopes) VALUES ($1, $2, $3, $4)",
        key_id,
        account_id,
        _hash(key),
        scopes,
    )
    return key, key_id


def key_prefix(key_id: uuid.UUID) -> str:
    """How every key with this id begins: what lists show in place of the key."""
    return f"{KEY_PREFIX}_{key_id.hex}_"


_KEY_COLUMNS = "id AS key_id, account_id, scopes, created_at, revoked_at"


async def list_keys(conn: Executor, account_id: uuid.UUID) -> list[dict[str, Any]]:
    """The account's keys, oldest first, revoked ones too; never the key or its hash."""
    rows = await conn.fetch(
        f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at, id",
        account_id,
    )
    return [dict(r) for r in rows]


async def revoke_key(conn: Executor, key_id: uuid.UUID) -> dict[str, Any] | None:
    """Revoke the key: the next request with it is refused, since the gateway looks every key
    up here and caches none (find_key). Revoking again keeps the first time. None: no such
    key."""
    row = await conn.fetchrow(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
        f" RETURNING {_KEY_COLUMNS}",
        key_id,
    )
    return dict(row) if row else None


async def find_key(conn: Executor, key: str) -> KeyRecord | None:
    """The live key record for a presented key, or None."""
    prefix, _, rest = key.partition("_")
    hex_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not secret:
        return None
    try:
        key_id = uuid.UUID(hex=hex_id)
    except ValueError:
        return None
    row = await conn.fetchrow(
        "SELECT account_id, key_hash, scopes FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
        key_id,
    )
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), _hash(key)):
        return None
    return KeyRecord(key_id, row["account_id"], frozenset(row["scopes"]))


async def get_settings(
    conn: Executor, account_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The account's settings; `for_update` locks its row until the transaction ends."""
    row = await conn.fetchrow(
        "SELECT id AS account_id, name, timezone, business_hours FROM accounts WHERE id = $1"
        + (" FOR UPDATE" if for_update else ""),
        account_id,
    )
    return dict(row) if row else None


async def put_settings(
    conn: Executor,
    account_id: uuid.UUID,
    timezone: str,
    business_hours: dict[str, Any],
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE accounts SET timezone = $2, business_hours = $3, updated_at = now()"
        " WHERE id = $1 RETURNING id AS account_id, name, timezone, business_hours",
        account_id,
        timezone,
        business_hours,
    )
    assert row is not None
    return dict(row)
