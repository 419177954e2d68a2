"""The `hairtrigger` command: migrate, accounts (create, spread), keys (create, list, revoke), up,
demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import ssl
import sys
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import asyncpg

from actors import logs
from hairtrigger import embedded, serving
from pipelines import scopes
from pipelines.account import check_timezone
from pipelines.config import Settings
from pipelines.errors import ConfigError
from store import accounts, db, stream
from store.migrate import migrate
from streams import spread
from streams.clients import async_client
from streams.meta import publish_shards_async

log = logging.getLogger("hairtrigger")


class CliError(Exception):
    """A user mistake: printed to stderr, exit status 2."""


class JsonLines(list[dict[str, Any]]):
    """A result printed as one JSON object a line (an empty list prints nothing)."""


class _Stopped(Exception):
    """SIGINT or SIGTERM arrived: leave through the context managers that stop services."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


async def _with_db(database_url: str, work: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
    conn = await db.connect(database_url)
    try:
        await migrate(conn)
        return await work(conn)
    finally:
        await conn.close()


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> Any:
    async def work(conn: Any) -> Any:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return {"applied": [r["version"] for r in rows]}

    assert settings.database_url is not None
    return asyncio.run(_with_db(settings.database_url, work))


def _cmd_accounts_create(settings: Settings, args: argparse.Namespace) -> Any:
    timezone = check_timezone(args.timezone)

    async def work(conn: Any) -> Any:
        account_id = await accounts.create_account(conn, args.name, timezone)
        return {"account_id": str(account_id), "name": args.name, "timezone": timezone}

    assert settings.database_url is not None
    return asyncio.run(_with_db(settings.database_url, work))


def _cmd_keys_create(settings: Settings, args: argparse.Namespace) -> Any:
    wanted = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in scopes.SCOPES]
    if not wanted or unknown:
        raise CliError(f"unknown scope(s) {unknown}; choose from {', '.join(scopes.SCOPES)}")
    account_id = _uuid(args.account, "--account")

    async def work(conn: Any) -> Any:
        try:
            key, key_id = await accounts.create_key(conn, account_id, wanted)
        except asyncpg.ForeignKeyViolationError:
            raise CliError(f"no account {account_id}") from None
        return {
            "api_key": key,
            "key_id": str(key_id),
            "account_id": str(account_id),
            "scopes": wanted,
        }

    assert settings.database_url is not None
    return asyncio.run(_with_db(settings.database_url, work))


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CliError(f"{what} {value!r} is not a UUID") from None


def _key_json(row: dict[str, Any]) -> dict[str, Any]:
    """A key as `keys list` and `keys revoke` print it: never the secret."""
    revoked = row["revoked_at"]
    return {
        "key_id": str(row["key_id"]),
        "prefix": accounts.key_prefix(row["key_id"]),
        "account_id": str(row["account_id"]),
        "scopes": list(row["scopes"]),
        "created_at": row["created_at"].isoformat(),
        "revoked_at": revoked.isoformat() if revoked else None,
    }


def _cmd_keys_list(settings: Settings, args: argparse.Namespace) -> Any:
    account_id = _uuid(args.account, "--account")

    async def work(conn: Any) -> Any:
        if account_id not in await stream.known_accounts(conn, [account_id]):
            raise CliError(f"no account {account_id}")
        return JsonLines(_key_json(r) for r in await accounts.list_keys(conn, account_id))

    assert settings.database_url is not None
    return asyncio.run(_with_db(settings.database_url, work))


def _cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> Any:
    key_id = _uuid(args.key_id, "key id")

    async def work(conn: Any) -> Any:
        row = await accounts.revoke_key(conn, key_id)
        if row is None:
            raise CliError(f"no key {key_id}")
        return _key_json(row)

    assert settings.database_url is not None
    return asyncio.run(_with_db(settings.database_url, work))


def _cmd_accounts_spread(settings: Settings, args: argparse.Namespace) -> Any:
    """Set (and pin) an account's spread factor, or `auto` to let the partitions choose."""
    try:
        account_id = uuid.UUID(args.account)
    except ValueError:
        raise CliError(f"{args.account!r} is not a UUID") from None
    how = "unpin" if args.spread == "auto" else "pin"
    try:
        wanted = 0 if how == "unpin" else int(args.spread)
    except ValueError:
        raise CliError(f"spread must be a whole number or 'auto', not {args.spread!r}") from None

    async def exists(conn: Any) -> bool:
        return account_id in await stream.known_accounts(conn, [account_id])

    assert settings.database_url is not None
    assert settings.redis_url is not None
    if not asyncio.run(_with_db(settings.database_url, exists)):
        raise CliError(f"no account {account_id}")
    return asyncio.run(_set_spread(settings.redis_url, settings.shards, account_id, wanted, how))


async def _set_spread(
    redis_url: str, shards: int, account_id: uuid.UUID, wanted: int, how: str
) -> dict[str, Any]:
    client = async_client(redis_url)
    try:
        shards = await publish_shards_async(client, shards)
        if how == "pin" and not 1 <= wanted <= shards:
            raise CliError(f"spread must be between 1 and the shard count ({shards})")
        if how == "unpin":
            wanted = (await spread.read_view(client, shards)).factor(account_id)
        try:
            change = await spread.set_spread(client, account_id, wanted, shards, how)
        except spread.SpreadSettling as exc:
            raise CliError(str(exc)) from None
    finally:
        await client.aclose()
    return {"account_id": str(account_id), "spread": change.spread}


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context of `up --ssl-certfile F --ssl-keyfile K`, or None for plain HTTP."""
    if args.ssl_certfile is None and args.ssl_keyfile is None:
        return None
    if args.ssl_certfile is None or args.ssl_keyfile is None:
        raise CliError("--ssl-certfile and --ssl-keyfile go together")
    try:
        return serving.tls_context(args.ssl_certfile, args.ssl_keyfile)
    except serving.TlsError as exc:
        raise CliError(str(exc)) from None


def _cmd_up(settings: Settings, args: argparse.Namespace) -> Any:
    from api.app import create_app
    from hairtrigger import runtime

    tls = _tls(args)  # before anything starts: a bad certificate fails fast
    _cmd_migrate(settings, args)
    with (
        contextlib.suppress(_Stopped),
        runtime.engine(
            settings, args.partitions, args.address, metrics_port=args.metrics_port
        ) as eng,
    ):
        # uvicorn drains requests on SIGINT/SIGTERM, then re-raises the signal to the handler
        # installed before it: ours, so the actors drain and embedded servers stop on the way out.
        _on_stop_signals(_raise_stopped)
        base = f"{'https' if tls else 'http'}://{args.host}:{args.port}"
        print(f"Hairtrigger API:  {base}  (docs: {base}/docs)", flush=True)
        print(f"Ray dashboard:    {eng.dashboard_url or 'not running'}", flush=True)
        print(_where_metrics(eng, base), flush=True)
        print(
            f"Partitions: {args.partitions} over {eng.shards} shards; scheduler running", flush=True
        )
        app = create_app(settings, sync=eng.partitions)
        serving.api_server(app, args.host, args.port, tls).run()
    return None


def _where_metrics(eng: Any, base: str) -> str:
    """Where `up` users find the numbers: Prometheus text per node, the dashboard, /stats."""
    lines = [
        f"Metrics:          {url}  (Prometheus text; scrape every node's, names ray_hairtrigger_*)"
        for url in eng.metrics_urls
    ]
    if eng.dashboard_url:
        lines.append(
            f"Metrics charts:   {eng.dashboard_url}/#/metrics  (needs Prometheus and"
            " Grafana: `ray metrics launch-prometheus`)"
        )
    lines.append(f"Stats:            {base}/api/v1/stats  (a key with stats:read)")
    return "\n".join(lines)


def _cmd_demo(settings: Settings, args: argparse.Namespace) -> Any:
    from hairtrigger import demo

    _cmd_migrate(settings, args)
    _on_stop_signals(_raise_stopped)
    with contextlib.suppress(_Stopped):
        demo.run(settings, events=args.events, partitions=args.partitions)
    return None


def _on_stop_signals(handler: Callable[[int, Any], None]) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hairtrigger", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(run=_cmd_migrate)

    acc = sub.add_parser("accounts", help="manage accounts").add_subparsers(required=True)
    create = acc.add_parser("create", help="create an account; prints {account_id, ...}")
    create.add_argument("name")
    create.add_argument("--timezone", default="UTC")
    create.set_defaults(run=_cmd_accounts_create)
    spread_cmd = acc.add_parser(
        "spread",
        help="set an account's spread factor (1 to the shard count; pinned) or 'auto';"
        " prints {account_id, spread}",
    )
    spread_cmd.add_argument("account")
    spread_cmd.add_argument("spread")
    spread_cmd.set_defaults(run=_cmd_accounts_spread)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(required=True)
    kc = keys.add_parser("create", help="create an API key; prints {api_key, key_id, scopes}")
    kc.add_argument("--account", required=True)
    kc.add_argument(
        "--scopes",
        default=",".join(scopes.TENANT_SCOPES),
        help=f"comma-separated, of {', '.join(scopes.SCOPES)} (stats:read: operators only)",
    )
    kc.set_defaults(run=_cmd_keys_create)
    kl = keys.add_parser(
        "list",
        help="the account's keys, one JSON line each: key_id, prefix, scopes, created_at,"
        " revoked_at (never the key)",
    )
    kl.add_argument("--account", required=True)
    kl.set_defaults(run=_cmd_keys_list)
    kr = keys.add_parser(
        "revoke", help="revoke a key: refused (401) from the next request on; prints the key"
    )
    kr.add_argument("key_id")
    kr.set_defaults(run=_cmd_keys_revoke)

    up = sub.add_parser("up", help="migrate and serve the API until SIGINT/SIGTERM")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--partitions", type=int, default=2, help="partition actors (default 2)")
    up.add_argument("--address", default=None, help="join a Ray cluster, e.g. 'auto'")
    up.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port of a local Ray (default: a free one)",
    )
    up.add_argument("--ssl-certfile", help="serve HTTPS (TLS 1.2+) with this PEM certificate")
    up.add_argument("--ssl-keyfile", help="the certificate's unencrypted PEM private key")
    up.set_defaults(run=_cmd_up)

    demo = sub.add_parser("demo", help="seed a demo account and stream events through it")
    demo.add_argument("--events", type=int, default=20_000)
    demo.add_argument("--partitions", type=int, default=2)
    demo.set_defaults(run=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(getattr(logging, str(args.log_level).upper(), logging.INFO))
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"hairtrigger: {exc}", file=sys.stderr)
        return 2
    try:
        with embedded.services(
            settings.database_url, settings.redis_url, settings.data_dir
        ) as found:
            resolved = replace(settings, database_url=found.database_url, redis_url=found.redis_url)
            result = args.run(resolved, args)
    except (CliError, ConfigError) as exc:
        print(f"hairtrigger: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if isinstance(result, JsonLines):
        for item in result:
            print(json.dumps(item))
    elif result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
