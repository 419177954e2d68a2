"""Synchronous access to a test database, and the reads many tests make."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from store import db


class Db:
    """Synchronous access to the test database for setting up and checking state."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, work: Callable[[Any], Any]) -> Any:
        async def go() -> Any:
            conn = await db.connect(self.url)
            try:
                return await work(conn)
            finally:
                await conn.close()

        return asyncio.run(go())

    def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.run(lambda c: _fetch(c, sql, args))

    def value(self, sql: str, *args: Any) -> Any:
        return self.run(lambda c: c.fetchval(sql, *args))


async def _fetch(conn: Any, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


def enrollments(db: Db, account_id: uuid.UUID) -> list[dict[str, Any]]:
    return db.fetch(
        "SELECT * FROM workflow_enrollments WHERE account_id = $1 ORDER BY enrolled_at",
        account_id,
    )


def logs(db: Db, account_id: uuid.UUID) -> list[dict[str, Any]]:
    return db.fetch(
        "SELECT * FROM trigger_execution_logs WHERE account_id = $1 ORDER BY id", account_id
    )


@contextmanager
def refused_contact(db: Db, contact_id: uuid.UUID) -> Iterator[str]:
    """Postgres refuses every write of this contact's state (a row trigger that raises): a
    failure that no check before the write can foresee, the same on every try."""
    message = f"contact {contact_id} is refused by the test"
    db.run(
        lambda c: c.execute(
            "CREATE OR REPLACE FUNCTION ht_test_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$BEGIN RAISE EXCEPTION '{message}'; END$$;"
            "CREATE TRIGGER ht_test_refuse BEFORE INSERT OR UPDATE ON contacts FOR EACH ROW"
            f" WHEN (NEW.contact_id = '{contact_id}') EXECUTE FUNCTION ht_test_refuse()"
        )
    )
    try:
        yield message
    finally:
        db.run(
            lambda c: c.execute(
                "DROP TRIGGER ht_test_refuse ON contacts; DROP FUNCTION ht_test_refuse()"
            )
        )
