"""The FastAPI application: wiring of pool, Redis, routers, problem handlers and limits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import problems, relay
from api.deps import ConfigSync
from api.limits import BodyLimit
from api.routes import account, catalog, dry_run, events, logs, triggers, workflows
from hairtrigger import __version__
from hairtrigger.config import Settings
from hairtrigger.meta import publish_shards_async
from hairtrigger.redis_clients import async_client
from store import db
from store.migrate import migrate

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
        app.state.redis = async_client(redis_url)
        app.state.shards = await publish_shards_async(app.state.redis, settings.shards)
        relaying = asyncio.create_task(relay.run(app.state.pool, app.state.redis))
        try:
            yield
        finally:
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
            await app.state.redis.aclose()
            await app.state.pool.close()

    app = FastAPI(
        title="Hairtrigger",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.sync = sync
    for module in (workflows, triggers, dry_run, logs, account, catalog, events):
        app.include_router(module.router, prefix=PREFIX)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
