"""Session fixtures: real Postgres and Redis (from DATABASE_URL / REDIS_URL, else embedded),
a fresh database per session, the API served over real HTTP, tenant factories, and Ray with
the partition actors (once per session, for the tests that ask). Fixtures only: what they do
is in tests/support/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors.client import Partitions
from api.app import create_app
from hairtrigger import embedded
from pipelines.config import Settings
from tests.support import engine, servers
from tests.support.db import Db
from tests.support.factories import Tenant, tenant_factory
from tests.support.proxy import TcpProxy, proxied
from tests.support.streams import Streams
from tests.support.tls import Pki, make_pki

pytest_plugins = ("tests.support.ordering",)


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded.Services]:
    with servers.found_services(tmp_path_factory.mktemp("embedded")) as urls:
        yield urls


@pytest.fixture(scope="session")
def database_url(services: embedded.Services) -> Iterator[str]:
    """A database made for this session and dropped after it: migrations run from scratch."""
    with servers.session_database(services) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(services: embedded.Services) -> str:
    """A Redis database of the tests' own, emptied at the start of the session."""
    return servers.session_redis(services)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return servers.session_settings(database_url, redis_url)


@pytest.fixture(scope="session")
def db_sync(database_url: str) -> Db:
    return Db(database_url)


@pytest.fixture(scope="session")
def api_url(settings: Settings) -> Iterator[str]:
    """The config API alone (no partition actors behind it)."""
    with servers.serve(create_app(settings)) as url:
        yield url


@pytest.fixture
def tenant(db_sync: Db, api_url: str) -> Iterator[Callable[..., Tenant]]:
    """Factory: a new account with an API key (all scopes unless told) and an HTTP client."""
    yield from tenant_factory(db_sync, api_url)


@pytest.fixture
def proxy(settings: Settings) -> Iterator[TcpProxy]:
    """A TcpProxy in front of the session's Redis: cut() makes it unreachable for whoever
    connects through it (proxy.through), while everyone else keeps using it."""
    assert settings.redis_url is not None
    with proxied(settings.redis_url, 6379) as found:
        yield found


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A self-signed certificate for localhost / 127.0.0.1 and some unusable key files."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    with engine.local_ray():
        yield


@pytest.fixture(scope="session")
def partitions(ray_session: None, settings: Settings) -> Iterator[Partitions]:
    with engine.partition_actors(settings) as group:
        yield group


@pytest.fixture(scope="session")
def live_api_url(settings: Settings, partitions: Partitions) -> Iterator[str]:
    with servers.serve(create_app(settings, sync=partitions)) as url:
        yield url


@pytest.fixture
def live_tenant(db_sync: Db, live_api_url: str) -> Iterator[Callable[..., Tenant]]:
    """Like `tenant`, against the API whose changes reach the partition actors."""
    yield from tenant_factory(db_sync, live_api_url)


@pytest.fixture(scope="session")
def scheduler(ray_session: None, settings: Settings, partitions: Partitions) -> Iterator[Any]:
    """The scheduler actor with no clock of its own: tests call tick(now) with the time."""
    with engine.clockless_scheduler(settings, partitions) as handle:
        yield handle


@pytest.fixture
def streams(redis_url: str, partitions: Partitions) -> Iterator[Streams]:
    """Redis streams as a test sees them, with the partition actors running."""
    s = Streams(redis_url)
    yield s
    s.close()
