"""The `hairtrigger` CLI: scripts depend on these JSON shapes (docs/contract.md §2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from pipelines import scopes
from store import accounts
from store.migrate import migration_files
from tests.support.db import Db


def run_cli(database_url: str, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", "hairtrigger.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli(database_url: str, settings: Any) -> Any:
    return lambda *args: run_cli(database_url, settings.redis_url, *args)


def test_migrate_prints_applied_versions(cli: Any) -> None:
    done = cli("migrate")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"applied": [v for v, _ in migration_files()]}


def test_accounts_and_keys_create_print_json(cli: Any, db_sync: Db) -> None:
    made = cli("accounts", "create", "Acme Inc", "--timezone", "Europe/Berlin")
    assert made.returncode == 0, made.stderr
    account = json.loads(made.stdout)
    account_id = uuid.UUID(account["account_id"])
    assert account["timezone"] == "Europe/Berlin"
    try:
        keyed = cli(
            "keys", "create", "--account", str(account_id), "--scopes", "workflow:read,events:write"
        )
        assert keyed.returncode == 0, keyed.stderr
        key = json.loads(keyed.stdout)
        assert set(key) >= {"api_key", "key_id", "scopes"}
        assert key["scopes"] == ["workflow:read", "events:write"]
        found = db_sync.run(lambda c: accounts.find_key(c, key["api_key"]))
        assert found.account_id == account_id
        assert found.key_id == uuid.UUID(key["key_id"])
        stored = db_sync.value("SELECT key_hash FROM api_keys WHERE id = $1", found.key_id)
        assert key["api_key"].encode() not in bytes(stored)
        default = json.loads(cli("keys", "create", "--account", str(account_id)).stdout)
        assert default["scopes"] == list(scopes.TENANT_SCOPES)  # stats:read only when asked
        operator = cli("keys", "create", "--account", str(account_id), "--scopes", "stats:read")
        assert json.loads(operator.stdout)["scopes"] == ["stats:read"]
    finally:
        db_sync.run(lambda c: c.execute("DELETE FROM accounts WHERE id = $1", account_id))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("accounts", "create", "X", "--timezone", "Nowhere/Land"), "IANA"),
        (("keys", "create", "--account", "not-a-uuid"), "not a UUID"),
        (("keys", "create", "--account", str(uuid.uuid4())), "no account"),
        (("keys", "create", "--account", str(uuid.uuid4()), "--scopes", "root"), "unknown scope"),
    ],
)
def test_cli_mistakes_exit_2_with_a_message(cli: Any, args: tuple[str, ...], message: str) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
