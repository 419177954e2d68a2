"""The FastAPI application: wiring of pool, Redis, routers, problem handlers and limits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from api import idempotency, problems, ratelimit, relay
from api.deps import ConfigSync
from api.limits import BodyLimit
from api.metrics import RequestMetrics, gateway_registry
from api.routes import (
    account,
    backtest,
    catalog,
    dry_run,
    events,
    logs,
    preview,
    templates,
    trigger_stats,
    triggers,
    workflows,
)
from api.routes import problems as problem_types
from api.routes import stats as stats_routes
from pipelines.config import Settings
from store import db
from store.migrate import migrate
from streams.clients import gateway_client
from streams.events import Router
from streams.meta import publish_shards_async

PREFIX = "/api/v1"
DESCRIPTION = """
The configuration API of Hairtrigger, the workflow-trigger engine.

Authenticate with `Authorization: Bearer <api key>` (create keys with
`hairtrigger keys create --account ID --scopes workflow:read,workflow:edit,events:write`).
Every error is an RFC 9457 problem document (`application/problem+json`).
"""


def create_app(settings: Settings, sync: ConfigSync | None = None) -> FastAPI:
    database_url, redis_url = settings.database_url, settings.redis_url
    assert database_url is not None, "resolve the service URLs first"
    assert redis_url is not None, "resolve the service URLs first"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conn = await db.connect(database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        app.state.pool = await db.create_pool(database_url)
        app.state.api_pool = await db.create_pool(database_url, api_role=True)
        app.state.redis = gateway_client(redis_url)
        app.state.shards = await publish_shards_async(app.state.redis, settings.shards)
        app.state.router = Router(app.state.shards)
        app.state.limiter = ratelimit.RateLimiter(redis_url)
        relaying = asyncio.create_task(relay.run(app.state.pool, app.state.redis, app.state.router))
        try:
            yield
        finally:
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
            await app.state.limiter.aclose()
            await app.state.redis.aclose()
            await app.state.api_pool.close()
            await app.state.pool.close()

    app = FastAPI(
        title="Hairtrigger",
        version=version("hairtrigger"),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.sync = sync
    routers = (
        workflows,
        backtest,
        triggers,
        trigger_stats,
        dry_run,
        preview,
        logs,
        templates,
        account,
    )
    for module in routers:
        app.include_router(module.router, prefix=PREFIX, **ratelimit.PER_KEY)
    app.include_router(events.router, prefix=PREFIX, **ratelimit.PER_ACCOUNT_EVENTS)
    app.include_router(catalog.router, prefix=PREFIX)  # public: no key, no budget
    app.include_router(problem_types.router, prefix=PREFIX)  # public too
    app.include_router(stats_routes.router, prefix=PREFIX, **ratelimit.PER_KEY)
    app.state.metrics = gateway_registry(sync)  # actors: Ray is up here

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    problems.install(app)
    idempotency.document(app)
    # Outermost last: body limit, then idempotency keys, then the rate-limit headers.
    app.add_middleware(ratelimit.RateLimitHeaders)
    app.add_middleware(idempotency.Idempotency)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, registry=app.state.metrics)  # last added: outermost
    return app
