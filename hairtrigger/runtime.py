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
from hairtrigger.config import Settings
from hairtrigger.meta import publish_shards

log = logging.getLogger(__name__)
LOCAL_OBJECT_STORE_BYTES = 300 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Engine:
    partitions: Partitions
    shards: int
    dashboard_url: str | None


@contextlib.contextmanager
def engine(
    settings: Settings,
    partitions: int,
    address: str | None = None,
    *,
    dashboard: bool = True,
    **worker_options: Any,
) -> Iterator[Engine]:
    """Start or join Ray, start the partition actors; on exit drain them and leave Ray.

    `worker_options` go to every partition's WorkerConfig (batch_size, block_ms, ...)."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    shards = publish_shards(settings.redis_url, settings.shards)
    if address is None:
        context = ray.init(
            namespace=NAMESPACE, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=dashboard, configure_logging=False,
        )  # fmt: skip
    else:
        context = ray.init(address=address, namespace=NAMESPACE, configure_logging=False)
    try:
        group = Partitions.start(
            partitions, shards, settings.database_url, settings.redis_url, **worker_options
        )
        url = context.dashboard_url
        try:
            yield Engine(group, shards, f"http://{url}" if url else None)
        finally:
            log.info("draining partition actors")
            group.stop()
    finally:
        ray.shutdown()
