"""Ray (once per session), the partition actors, and the scheduler, for the fixtures that run
the engine in the test process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import ray

from actors.client import Partitions
from actors.scheduler import SchedulerConfig
from hairtrigger.runtime import init_local, start_scheduler
from pipelines.config import Settings
from streams.meta import publish_shards

PARTITIONS = 2


@contextlib.contextmanager
def local_ray() -> Iterator[None]:
    init_local(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024)
    yield
    ray.shutdown()


@contextlib.contextmanager
def partition_actors(settings: Settings) -> Iterator[Partitions]:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    shards = publish_shards(settings.redis_url, settings.shards)
    group = Partitions.start(
        PARTITIONS,
        shards,
        settings.database_url,
        settings.redis_url,
        block_ms=50,
        housekeeping_s=0.5,
        claim_idle_ms=5_000,
        max_deliveries=3,
        auto_spread_events_s=0,  # the session's accounts stay where tests put them
    )
    yield group
    group.stop()


@contextlib.contextmanager
def clockless_scheduler(settings: Settings, partitions: Partitions) -> Iterator[Any]:
    """The scheduler actor with no clock of its own: tests call tick(now) with the time."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    config = SchedulerConfig(
        partitions.shards, settings.database_url, settings.redis_url, batch=10, autorun=False
    )
    handle = start_scheduler(config)
    yield handle
    ray.get(handle.stop.remote())
    ray.kill(handle, no_restart=True)
