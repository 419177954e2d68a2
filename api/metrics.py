"""Request metrics of the gateway: count and milliseconds per route template and status."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipelines.metrics import MetricDef, Registry, Sink
from pipelines.stream_metrics import GATEWAY_METRICS, HTTP_MS, HTTP_REQUESTS

UNMATCHED = "unmatched"


@runtime_checkable
class SinkSource(Protocol):
    """Whatever can export metrics where the gateway runs (actors.client.Partitions: Ray)."""

    def metrics_sink(self, defs: tuple[MetricDef, ...]) -> Sink: ...


def gateway_registry(source: object | None) -> Registry:
    """The gateway's metrics, also exported to Ray when the gateway runs beside the actors."""
    sink = source.metrics_sink(GATEWAY_METRICS) if isinstance(source, SinkSource) else None
    return Registry(GATEWAY_METRICS, sink)


def route_label(scope: Scope) -> str:
    """'GET /api/v1/workflows/{workflow_id}': the path with its parameters put back as their
    names (the route template), never the ids in it. A path no route matched: 'unmatched'."""
    if scope.get("route") is None:
        return UNMATCHED
    names = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    path = "/".join(f"{{{names[p]}}}" if p in names else p for p in scope["path"].split("/"))
    return f"{scope['method']} {path}"


class RequestMetrics:
    """Outermost ASGI middleware: sees every response, the problem documents included."""

    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app, self.registry = app, registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_label(scope)
            self.registry.inc(HTTP_REQUESTS, route=route, status=status)
            self.registry.observe(HTTP_MS, (time.perf_counter() - started) * 1000, route=route)
