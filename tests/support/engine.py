"""Ray (once per session), the partition actors, and the API wired to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import ray

from actors.client import Partitions
from actors.scheduler import SchedulerConfig
from api.app import create_app
from hairtrigger.config import Settings
from hairtrigger.meta import publish_shards
from hairtrigger.runtime import init_local, start_scheduler
from tests.conftest import Db, Tenant, serve, tenant_factory
from tests.streaming.helpers import Streams

PARTITIONS = 2


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    init_local(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def partitions(ray_session: None, settings: Settings) -> Iterator[Partitions]:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    shards = publish_shards(settings.redis_url, settings.shards)
    group = Partitions.start(
        PARTITIONS, shards, settings.database_url, settings.redis_url,
        block_ms=50, housekeeping_s=0.5, claim_idle_ms=5_000, max_deliveries=3,
    )  # fmt: skip
    yield group
    group.stop()


@pytest.fixture(scope="session")
def live_api_url(settings: Settings, partitions: Partitions) -> Iterator[str]:
    with serve(create_app(settings, sync=partitions)) as url:
        yield url


@pytest.fixture
def live_tenant(db_sync: Db, live_api_url: str) -> Iterator[Callable[..., Tenant]]:
    """Like `tenant`, against the API whose changes reach the partition actors."""
    yield from tenant_factory(db_sync, live_api_url)


@pytest.fixture(scope="session")
def scheduler(ray_session: None, settings: Settings, partitions: Partitions) -> Iterator[Any]:
    """The scheduler actor with no clock of its own: tests call tick(now) with the time."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    config = SchedulerConfig(partitions.shards, settings.database_url, settings.redis_url,
                             batch=10, autorun=False)  # fmt: skip
    handle = start_scheduler(config)
    yield handle
    ray.get(handle.stop.remote())
    ray.kill(handle, no_restart=True)


@pytest.fixture
def streams(redis_url: str, partitions: Partitions) -> Iterator[Streams]:
    """Redis streams as a test sees them, with the partition actors running."""
    s = Streams(redis_url)
    yield s
    s.close()
