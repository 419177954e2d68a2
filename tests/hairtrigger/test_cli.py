"""The `hairtrigger` CLI: scripts depend on these JSON shapes (docs/contract.md §2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from pipelines import errors, scopes
from store import accounts
from store.migrate import migration_files
from streams import names
from tests.support.db import Db
from tests.support.factories import Tenant, keyed
from tests.support.problems import problem


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


def test_keys_list_shows_every_key_but_no_secret_and_revoke_is_401_at_once(
    cli: Any, tenant: Callable[..., Tenant]
) -> None:
    """Issue 21 item 9, over real HTTP: the gateway looks the key up on every request."""
    t = tenant()
    made = cli("keys", "create", "--account", str(t.account_id), "--scopes", "workflow:read")
    second = json.loads(made.stdout)
    assert t.client.get("/workflows").status_code == 200
    listed = cli("keys", "list", "--account", str(t.account_id))
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [k["key_id"] for k in lines] == [str(t.key_id), second["key_id"]]
    first = lines[0]
    assert set(first) == {"key_id", "prefix", "account_id", "scopes", "created_at", "revoked_at"}
    assert t.key.startswith(first["prefix"])
    assert (first["account_id"], first["revoked_at"]) == (str(t.account_id), None)
    assert lines[1]["scopes"] == ["workflow:read"]
    for key in (t.key, second["api_key"]):
        assert key.rsplit("_", 1)[1] not in listed.stdout
    revoked = cli("keys", "revoke", str(t.key_id))
    assert revoked.returncode == 0, revoked.stderr
    shown = json.loads(revoked.stdout)
    assert shown == {**first, "revoked_at": shown["revoked_at"]}
    assert shown["revoked_at"] is not None
    problem(t.client.get("/workflows"), 401, errors.UNAUTHORIZED)  # the very next request
    with keyed(t, second["api_key"]) as other:
        assert other.get("/workflows").status_code == 200
    again = json.loads(cli("keys", "revoke", str(t.key_id)).stdout)
    assert again["revoked_at"] == shown["revoked_at"]  # the first revocation stands
    relisted = cli("keys", "list", "--account", str(t.account_id)).stdout.splitlines()
    assert json.loads(relisted[0])["revoked_at"] == shown["revoked_at"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("accounts", "create", "X", "--timezone", "Nowhere/Land"), "IANA"),
        (("keys", "create", "--account", "not-a-uuid"), "not a UUID"),
        (("keys", "create", "--account", str(uuid.uuid4())), "no account"),
        (("keys", "create", "--account", str(uuid.uuid4()), "--scopes", "root"), "unknown scope"),
        (("keys", "list", "--account", "not-a-uuid"), "not a UUID"),
        (("keys", "list", "--account", str(uuid.uuid4())), "no account"),
        (("keys", "revoke", "not-a-uuid"), "not a UUID"),
        (("keys", "revoke", str(uuid.uuid4())), "no key"),
        (("accounts", "spread", "not-a-uuid", "2"), "not a UUID"),
        (("accounts", "spread", str(uuid.uuid4()), "2"), "no account"),
        (("accounts", "spread", str(uuid.uuid4()), "wide"), "whole number or 'auto'"),
    ],
)
def test_cli_mistakes_exit_2_with_a_message(cli: Any, args: tuple[str, ...], message: str) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_accounts_spread_sets_pins_and_unpins(cli: Any, db_sync: Db, settings: Any) -> None:
    """`accounts spread ID N` prints {account_id, spread} and pins the factor; `auto` unpins
    it; a factor beyond the shard count is refused (docs/contract.md §3)."""
    made = json.loads(cli("accounts", "create", "Spread Co").stdout)
    account = made["account_id"]
    client = redis.Redis.from_url(settings.redis_url)
    try:
        done = cli("accounts", "spread", account, "2")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"account_id": account, "spread": 2}
        assert client.hget(names.SPREAD_KEY, account) == b"2"
        assert client.sismember(names.SPREAD_PINNED_KEY, account)
        shards = int(client.hget(names.META_KEY, names.META_SHARDS_FIELD))  # type: ignore[arg-type]
        too_wide = cli("accounts", "spread", account, str(shards + 1))
        assert too_wide.returncode == 2
        assert "between 1 and the shard count" in too_wide.stderr
        settling = cli("accounts", "spread", account, "1")  # the move to 2 has not settled
        assert settling.returncode == 2
        assert "try again shortly" in settling.stderr
        back = cli("accounts", "spread", account, "auto")
        assert back.returncode == 0, back.stderr
        assert json.loads(back.stdout) == {"account_id": account, "spread": 2}
        assert not client.sismember(names.SPREAD_PINNED_KEY, account)
    finally:
        client.hdel(names.SPREAD_KEY, account)
        client.hdel(names.SPREAD_MOVES_KEY, account)
        client.srem(names.SPREAD_PINNED_KEY, account)
        client.close()
        db_sync.run(lambda c: c.execute("DELETE FROM accounts WHERE id = $1", uuid.UUID(account)))
