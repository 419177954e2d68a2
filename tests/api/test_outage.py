"""The database unreachable from the gateway: 503 problem documents with Retry-After (keyed or
not), and service as usual once it is back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from api.app import create_app
from pipelines import errors
from pipelines.config import Settings
from tests.support.db import Db
from tests.support.factories import Tenant, tenant_factory
from tests.support.problems import problem
from tests.support.proxy import TcpProxy, proxied, through
from tests.support.servers import serve


@pytest.fixture
def cut_off(settings: Settings, db_sync: Db) -> Iterator[tuple[Tenant, TcpProxy]]:
    assert settings.database_url is not None
    with proxied(settings.database_url, 5432) as proxy:
        url = through(settings.database_url, proxy.port)
        with serve(create_app(dataclasses.replace(settings, database_url=url))) as api:
            factory = tenant_factory(db_sync, api)
            yield next(factory)(), proxy
            proxy.restore()
            next(factory, None)


def test_database_outage_is_503_then_service_resumes(cut_off: tuple[Tenant, TcpProxy]) -> None:
    t, proxy = cut_off
    assert t.client.get("/workflows").status_code == 200
    proxy.cut()
    for response in (
        t.client.get("/workflows"),
        t.client.post("/workflows", json={"name": "x"}),
        t.client.post("/workflows", json={"name": "x"}, headers={"Idempotency-Key": "k-1"}),
    ):
        problem(response, 503, errors.SERVICE_UNAVAILABLE)
        assert response.headers["retry-after"] == "1"
    proxy.restore()
    created = t.client.post("/workflows", json={"name": "x"}, headers={"Idempotency-Key": "k-1"})
    assert created.status_code == 201, created.text
