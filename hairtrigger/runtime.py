"""Ray and the partition actors for `hairtrigger up` and `hairtrigger demo`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ray

from actors.client import Partitions
from actors.partition import NAMESPACE
from actors.scheduler import SCHEDULER_NAME, SchedulerActor, SchedulerConfig
from pipelines.config import Settings
from store.ageout import Retention
from streams.meta import publish_shards

log = logging.getLogger(__name__)
LOCAL_OBJECT_STORE_BYTES = 300 * 1024 * 1024
LOCAL_START_TRIES = 3


def init_local(**options: Any) -> Any:
    """A fresh local Ray instance (`ray.init(address="local", ...)`), tried again when it fails
    to come up: on a busy machine the raylet can miss Ray's 30 s registration deadline once."""
    for attempt in range(1, LOCAL_START_TRIES + 1):
        try:
            return ray.init(
                address="local", namespace=NAMESPACE, configure_logging=False, **options
            )
        except Exception as exc:  # Ray raises a bare Exception for a startup timeout
            ray.shutdown()
            if attempt == LOCAL_START_TRIES:
                raise
            log.warning(
                "Ray did not start (%s); trying again (%d/%d)", exc, attempt + 1, LOCAL_START_TRIES
            )
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Engine:
    partitions: Partitions
    scheduler: Any  # the SchedulerActor handle
    shards: int
    dashboard_url: str | None
    metrics_urls: tuple[str, ...] = ()  # each live node's Prometheus endpoint


def start_scheduler(config: SchedulerConfig) -> Any:
    """The one scheduler of the deployment (a named actor: found again if already running)."""
    return SchedulerActor.options(  # type: ignore[attr-defined]
        name=SCHEDULER_NAME, namespace=NAMESPACE, get_if_exists=True
    ).remote(config)


def metrics_endpoints() -> tuple[str, ...]:
    """The Prometheus text endpoint of every live node of the Ray cluster (application metrics
    of the actors and the gateway included, prefixed `ray_hairtrigger_`)."""
    return tuple(
        f"http://{n['NodeManagerAddress']}:{n['MetricsExportPort']}/metrics"
        for n in ray.nodes()  # type: ignore[no-untyped-call]
        if n.get("Alive") and n.get("MetricsExportPort")
    )


@contextlib.contextmanager
def engine(
    settings: Settings,
    partitions: int,
    address: str | None = None,
    *,
    dashboard: bool = True,
    scheduler_clock: bool = True,
    metrics_port: int | None = None,
    **worker_options: Any,
) -> Iterator[Engine]:
    """Start or join Ray, start the partition actors; on exit drain them and leave Ray.

    `worker_options` go to every partition's WorkerConfig (batch_size, block_ms, ...). Without
    `scheduler_clock` the scheduler only acts when its tick(now) is called (benchmarks).
    `metrics_port`: where a local Ray serves Prometheus metrics (None: a free port)."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    shards = publish_shards(settings.redis_url, settings.shards)
    if address is None:
        context = init_local(  # a fresh instance, never a `ray start` one found nearby
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=dashboard,
            _metrics_export_port=metrics_port,
        )
    else:
        context = ray.init(address=address, namespace=NAMESPACE, configure_logging=False)
    try:
        retention = {
            "retention_s": settings.stream_retention_hours * 3600.0,
            "stream_max_len": settings.stream_max_len,
        }
        group = Partitions.start(
            partitions,
            shards,
            settings.database_url,
            settings.redis_url,
            **{**retention, **worker_options},
        )
        url = context.dashboard_url
        scheduler = start_scheduler(
            SchedulerConfig(
                shards,
                settings.database_url,
                settings.redis_url,
                autorun=scheduler_clock,
                retention=Retention(
                    settings.log_retention_days,
                    settings.enrollment_retention_days,
                    settings.live_hours,
                ),
            )
        )
        try:
            dashboard_url = f"http://{url}" if url else None
            yield Engine(group, scheduler, shards, dashboard_url, metrics_endpoints())
        finally:
            log.info("stopping the scheduler, draining partition actors")
            ray.get(scheduler.stop.remote(), timeout=120)
            ray.kill(scheduler, no_restart=True)
            group.stop()
    finally:
        ray.shutdown()
