"""Locust load test of a running `hairtrigger up`: events in through Redis and HTTP, config API
calls alongside, and at the end a check that every event enrolled its contact exactly once and
fast enough (exit code 1 otherwise).

    hairtrigger up                                  # another shell, same DATABASE_URL/REDIS_URL
    locust -f loadtest/locustfile.py --headless -u 6 -r 6 -t 60s --ht-xadd-rate 225

That is 1,000 events/s for a minute: 6 users are 4 RedisEventUsers x 225 XADDs/s, one
HttpEventUser x 10 POSTs/s x 10 events, and one ConfigApiUser. Rates are per user and open loop
(a late task is made up for, up to 1 s behind); the check logs the rate actually achieved.

Run it from the repository root, in one process (not --master/--worker/--processes: the check
needs the id of every event sent). `locust -f loadtest/locustfile.py --help` lists the `--ht-*`
options; each also reads an environment variable.

Setup (locust's `init`, before the users start): one fresh account per shard stream (so the load
spreads over every shard and partition actor), each with an API key and, for each of the 22
event types the demo generates, an active workflow whose trigger has no conditions and
`enrollment_limit: multiple`. So every event enrolls its contact exactly once, into the workflow
of its account and type. The accounts stay in the database afterwards.

Users (weights 4:1:1):
- RedisEventUser: XADDs realistic events (pipelines.demo) to their account's shard stream with
  the sync Redis client; each XADD is a locust request `XADD hairtrigger:events:{shard}`.
- HttpEventUser: POST /api/v1/events with `--ht-http-batch` events per request.
- ConfigApiUser: lists and reads workflows and triggers; now and then PUTs a trigger back
  unchanged, which pushes the configuration to the partition actors while events flow.

At quit: waits up to `--ht-drain-timeout` s for the enrollments, reads them from Postgres, and
fails the run if one is missing, duplicated or wrong, or if XADD -> enrollment latency
(enrolled_at - ingested_at) averages over `--ht-max-avg-latency-ms` (200).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson
from locust import User, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest.check import Sent, Thresholds, judge, wait_and_read
from pipelines import scopes
from pipelines.catalog import BY_EVENT_TYPE
from pipelines.demo import DATA, envelope
from pipelines.sharding import shard_for
from store import accounts, db
from streams import names
from streams.clients import sync_client
from streams.errors import StreamError
from streams.events import Router

log = logging.getLogger("hairtrigger.locust")
DEFAULT_API = "http://127.0.0.1:8000"
EVENT_TYPES = sorted(DATA)
API = "/api/v1"


class SetupError(Exception):
    """The system under test is not there or refused the setup."""


@dataclass(frozen=True, slots=True)
class Options:
    database_url: str
    redis_url: str
    accounts: int
    contacts: int
    xadd_rate: float
    xadd_batch: int
    http_rate: float
    http_batch: int
    config_rate: float
    drain_timeout: float
    thresholds: Thresholds

    @classmethod
    def parse(cls, o: Namespace) -> Options:
        if not o.ht_database_url or not o.ht_redis_url:
            raise SetupError(
                "set DATABASE_URL and REDIS_URL (or --ht-database-url, "
                "--ht-redis-url) to the servers `hairtrigger up` uses"
            )
        positive = (
            "ht_contacts",
            "ht_xadd_rate",
            "ht_xadd_batch",
            "ht_http_rate",
            "ht_http_batch",
            "ht_config_rate",
        )
        for name in positive:
            if getattr(o, name) <= 0:
                raise SetupError(f"--{name.replace('_', '-')} must be above 0")
        return cls(
            database_url=o.ht_database_url,
            redis_url=o.ht_redis_url,
            accounts=o.ht_accounts,
            contacts=o.ht_contacts,
            xadd_rate=o.ht_xadd_rate,
            xadd_batch=o.ht_xadd_batch,
            http_rate=o.ht_http_rate,
            http_batch=o.ht_http_batch,
            config_rate=o.ht_config_rate,
            drain_timeout=o.ht_drain_timeout,
            thresholds=Thresholds(o.ht_max_avg_latency_ms, o.ht_max_p95_latency_ms or None),
        )


@dataclass(slots=True)
class Account:
    account_id: uuid.UUID
    key: str
    stream: str
    contacts: list[str]
    workflows: dict[str, str] = field(default_factory=dict)  # event type -> workflow id
    triggers: dict[str, str] = field(default_factory=dict)  # workflow id -> trigger id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass(slots=True)
class Run:
    options: Options
    accounts: list[Account]
    sent: dict[str, Sent] = field(default_factory=dict)  # event id -> what it must enroll
    first_sent: float = 0.0  # time.monotonic() of the first and last accepted event
    last_sent: float = 0.0

    def event(
        self, rng: random.Random, account: Account | None = None
    ) -> tuple[Account, dict[str, Any]]:
        """A realistic event of a random type for a known contact; its account."""
        account = account or rng.choice(self.accounts)
        event_type = rng.choice(EVENT_TYPES)
        contact = rng.choice(account.contacts)
        body = envelope(account.account_id, contact, event_type, rng)
        body["metadata"]["source"] = "locust"
        return account, body

    def record(self, account: Account, body: dict[str, Any]) -> None:
        workflow = account.workflows[body["event_type"]]
        self.sent[body["event_id"]] = Sent(workflow, body["data"]["contact_id"])
        self.last_sent = time.monotonic()
        self.first_sent = self.first_sent or self.last_sent

    def rate(self) -> str:
        seconds = self.last_sent - self.first_sent
        per_second = f" = {len(self.sent) / seconds:,.0f} events/s" if seconds > 0 else ""
        return f"{len(self.sent):,} events accepted over {seconds:.1f} s{per_second}"


RUN: Run | None = None


def _run() -> Run:
    assert RUN is not None, "the locust init event sets the run up"
    return RUN


def trigger_body(event_type: str) -> dict[str, Any]:
    """Every event of this type matches; each one enrolls its contact again."""
    spec = BY_EVENT_TYPE[event_type]
    return {
        "trigger_type": spec.category,
        "trigger_event": spec.name,
        "filters": None,
        "settings": {"enrollment_limit": "multiple"},
    }


def published_shards(redis_url: str) -> int:
    with sync_client(redis_url) as client:
        shards = client.hget(names.META_KEY, names.META_SHARDS_FIELD)
    if shards is None:
        raise SetupError(
            f"no shard count in {names.META_KEY} at {redis_url}:"
            " is `hairtrigger up` running against this Redis?"
        )
    return int(shards)


async def _create_accounts(url: str, count: int, shards: int) -> list[tuple[uuid.UUID, str]]:
    """`count` accounts spread evenly over the shards (candidates on a full shard are dropped)."""
    per_shard = math.ceil(count / shards)
    taken = [0] * shards
    made: list[tuple[uuid.UUID, str]] = []
    name = f"Load test {time.strftime('%Y-%m-%d %H:%M:%S')}"
    conn = await db.connect(url)
    try:
        while len(made) < count:
            candidate = conn.transaction()
            await candidate.start()
            account_id = await accounts.create_account(conn, name)
            shard = shard_for(account_id, shards)
            if taken[shard] >= per_shard:
                await candidate.rollback()
                continue
            key, _ = await accounts.create_key(conn, account_id, list(scopes.SCOPES))
            await candidate.commit()
            taken[shard] += 1
            made.append((account_id, key))
    finally:
        await conn.close()
    return made


def _call(client: httpx.Client, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = client.request(method, path, json=body)
    if not response.is_success:
        raise SetupError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    result: dict[str, Any] = response.json()
    return result


def _create_workflows(api: str, account: Account) -> None:
    with httpx.Client(base_url=f"{api}{API}", headers=account.headers, timeout=60) as client:
        for event_type in EVENT_TYPES:
            workflow = _call(client, "POST", "/workflows", {"name": f"Load test: {event_type}"})
            trigger = _call(
                client, "POST", f"/workflows/{workflow['id']}/trigger", trigger_body(event_type)
            )
            _call(client, "PATCH", f"/workflows/{workflow['id']}", {"status": "active"})
            account.workflows[event_type] = workflow["id"]
            account.triggers[workflow["id"]] = trigger["id"]


def set_up(options: Options, api: str) -> Run:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per setup request
    shards = published_shards(options.redis_url)
    count = options.accounts or shards
    try:
        made = asyncio.run(_create_accounts(options.database_url, count, shards))
    except (OSError, asyncpg.PostgresError) as exc:
        raise SetupError(f"cannot use Postgres at {options.database_url}: {exc}") from exc
    rng = random.Random()
    run = Run(
        options,
        [
            Account(
                account_id,
                key,
                names.events_stream(shard_for(account_id, shards)),
                [
                    str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    for _ in range(options.contacts)
                ],
            )
            for account_id, key in made
        ],
    )
    try:
        for account in run.accounts:
            _create_workflows(api, account)
    except httpx.TransportError as exc:
        raise SetupError(f"cannot reach the Hairtrigger API at {api}: {exc}") from exc
    used = sorted({a.stream for a in run.accounts})
    log.info(
        "hairtrigger setup: %d accounts x %d active workflows on %s, %d contacts each",
        len(run.accounts),
        len(EVENT_TYPES),
        ", ".join(used),
        options.contacts,
    )
    return run


def _options(parser: Any, **_: Any) -> None:
    def add(name: str, env: str, default: Any, kind: Callable[[str], Any], help: str) -> None:
        parser.add_argument(name, env_var=env, default=default, type=kind, help=help)

    add("--ht-database-url", "DATABASE_URL", None, str, "Postgres of `hairtrigger up`")
    add("--ht-redis-url", "REDIS_URL", None, str, "Redis of `hairtrigger up`")
    add("--ht-accounts", "HT_LOCUST_ACCOUNTS", 0, int, "accounts to create (0: one per shard)")
    add("--ht-contacts", "HT_LOCUST_CONTACTS", 1000, int, "known contacts per account")
    add("--ht-xadd-rate", "HT_LOCUST_XADD_RATE", 250.0, float, "XADDs/s per RedisEventUser")
    add("--ht-xadd-batch", "HT_LOCUST_XADD_BATCH", 1, int, "XADDs per Redis round trip")
    add("--ht-http-rate", "HT_LOCUST_HTTP_RATE", 10.0, float, "POSTs/s per HttpEventUser")
    add("--ht-http-batch", "HT_LOCUST_HTTP_BATCH", 10, int, "events per POST /api/v1/events")
    add("--ht-config-rate", "HT_LOCUST_CONFIG_RATE", 2.0, float, "calls/s per ConfigApiUser")
    add(
        "--ht-drain-timeout",
        "HT_LOCUST_DRAIN_TIMEOUT",
        60.0,
        float,
        "seconds to wait at quit for the enrollments",
    )
    add(
        "--ht-max-avg-latency-ms",
        "HT_LOCUST_MAX_AVG_LATENCY_MS",
        200.0,
        float,
        "fail if the average XADD -> enrollment latency is higher",
    )
    add(
        "--ht-max-p95-latency-ms",
        "HT_LOCUST_MAX_P95_LATENCY_MS",
        0.0,
        float,
        "fail if the p95 latency is higher (0: no limit)",
    )


def _set_up(environment: Environment, **_: Any) -> None:
    global RUN
    try:
        if isinstance(environment.runner, MasterRunner | WorkerRunner):
            raise SetupError("run in one process: the check needs every event id sent")
        assert environment.parsed_options is not None
        RUN = set_up(Options.parse(environment.parsed_options), environment.host or DEFAULT_API)
    except SetupError as exc:
        log.error("hairtrigger setup failed: %s", exc)
        raise SystemExit(1) from None


def _check(environment: Environment, **_: Any) -> None:
    if RUN is None:
        return
    o = RUN.options
    log.info(
        "hairtrigger check: %s; waiting up to %g s for their enrollments",
        RUN.rate(),
        o.drain_timeout,
    )
    try:
        rows = wait_and_read(
            o.database_url,
            [str(a.account_id) for a in RUN.accounts],
            [w for a in RUN.accounts for w in a.workflows.values()],
            RUN.sent,
            o.drain_timeout,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        log.error("hairtrigger check: FAIL: cannot read the enrollments: %s", exc)
        environment.process_exit_code = 1
        return
    verdict = judge(RUN.sent, rows, o.thresholds)
    for line in verdict.lines():
        (log.info if verdict.ok else log.error)("hairtrigger check: %s", line)
    if not verdict.ok:
        environment.process_exit_code = 1


events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_set_up)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_check)  # type: ignore[no-untyped-call]


class Pace:
    """Wait times that hold `rate` task runs per second: a run that starts late is made up for
    by shorter waits after it (open loop), where locust's constant_throughput would lose it."""

    def __init__(self, rate: float) -> None:
        self.interval = 1 / rate
        self.due = 0.0

    def __call__(self) -> float:
        now = time.monotonic()
        self.due = max(self.due or now, now - 1.0) + self.interval  # at most 1 s of backlog
        return max(0.0, self.due - now)


class RedisEventUser(User):
    """Realistic events XADDed straight into their account's shard stream."""

    weight = 4

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.load = _run()
        self.rng = random.Random()
        self.redis = sync_client(self.load.options.redis_url)
        self.router = Router(published_shards(self.load.options.redis_url))
        self.batch = self.load.options.xadd_batch
        self.pace = Pace(self.load.options.xadd_rate / self.batch)

    def wait_time(self) -> float:
        return self.pace()

    def on_stop(self) -> None:
        self.redis.close()

    @task
    def xadd(self) -> None:
        batch = [self.load.event(self.rng) for _ in range(self.batch)]
        payloads = [orjson.dumps(body) for _, body in batch]
        start = time.perf_counter()
        try:  # routed as every producer routes (docs/contract.md §3): spread accounts too
            keys = [(account.account_id, body["data"]["contact_id"]) for account, body in batch]
            streams = self.router.streams_sync(self.redis, keys)
            pipe = self.redis.pipeline(transaction=False)
            for stream, payload in zip(streams, payloads, strict=True):
                pipe.xadd(stream, {names.EVENT_FIELD: payload})
            results: list[Any] = pipe.execute(raise_on_error=False)
        except StreamError as exc:
            results = [exc] * len(batch)
        elapsed_ms = (time.perf_counter() - start) * 1000
        for (account, body), payload, result in zip(batch, payloads, results, strict=True):
            error = result if isinstance(result, Exception) else None
            if error is None:
                self.load.record(account, body)
            self.environment.events.request.fire(
                request_type="XADD",
                name=account.stream,
                response_time=elapsed_ms,
                response_length=len(payload),
                exception=error,
                context={},
            )


class _ApiUser(FastHttpUser):
    """An HTTP user of the run's accounts, paced at `rate(options)` tasks per second."""

    abstract = True
    weight = 1
    host = DEFAULT_API

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.load = _run()
        self.rng = random.Random()
        self.pace = Pace(self.rate(self.load.options))

    def rate(self, options: Options) -> float:
        raise NotImplementedError

    def wait_time(self) -> float:
        return self.pace()


class HttpEventUser(_ApiUser):
    """Events through the API's front door: POST /api/v1/events, a batch per request."""

    def rate(self, options: Options) -> float:
        return options.http_rate

    @task
    def post_events(self) -> None:
        account = self.rng.choice(self.load.accounts)
        bodies = [
            self.load.event(self.rng, account)[1] for _ in range(self.load.options.http_batch)
        ]
        response = self.client.post(f"{API}/events", json=bodies, headers=account.headers)
        if response.status_code == 202:
            for body in bodies:
                self.load.record(account, body)


class ConfigApiUser(_ApiUser):
    """An account user looking at workflows and triggers, and now and then saving one."""

    def rate(self, options: Options) -> float:
        return options.config_rate

    def _pick(self) -> tuple[Account, str, str]:
        account = self.rng.choice(self.load.accounts)
        event_type = self.rng.choice(EVENT_TYPES)
        return account, event_type, account.workflows[event_type]

    @task(4)
    def list_workflows(self) -> None:
        account = self.rng.choice(self.load.accounts)
        self.client.get(
            f"{API}/workflows?limit=50", headers=account.headers, name=f"{API}/workflows"
        )

    @task(4)
    def get_workflow(self) -> None:
        account, _, workflow = self._pick()
        self.client.get(
            f"{API}/workflows/{workflow}", headers=account.headers, name=f"{API}/workflows/{{id}}"
        )

    @task(4)
    def get_trigger(self) -> None:
        account, _, workflow = self._pick()
        self.client.get(
            f"{API}/workflows/{workflow}/trigger",
            headers=account.headers,
            name=f"{API}/workflows/{{id}}/trigger",
        )

    @task(1)
    def put_trigger(self) -> None:
        """Save the trigger unchanged: its events must keep enrolling through the update."""
        account, event_type, workflow = self._pick()
        trigger = account.triggers[workflow]
        self.client.put(
            f"{API}/workflows/{workflow}/trigger/{trigger}",
            json=trigger_body(event_type),
            headers=account.headers,
            name=f"{API}/workflows/{{id}}/trigger/{{trigger_id}}",
        )
