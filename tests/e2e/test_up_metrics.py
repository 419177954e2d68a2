"""`hairtrigger up` tells where the metrics are, and the Prometheus endpoint it prints serves
the application metrics (docs/operations.md §11)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import httpx
import pytest

from hairtrigger import embedded
from tests.support.servers import UP_REDIS_DB, free_port, own_servers
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def own_env(services: embedded.Services) -> Iterator[dict[str, str]]:
    """A database and Redis db of its own: the session's partition actors are still alive."""
    with own_servers(services, "ht_metrics", UP_REDIS_DB, 4) as env:
        yield env


def test_up_prints_the_metrics_endpoint_and_it_serves_the_gateway_metrics(
    own_env: dict[str, str],
) -> None:
    port, metrics_port = free_port(), free_port()
    env = own_env
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hairtrigger.cli",
            "up",
            "--port",
            str(port),
            "--partitions",
            "1",
            "--metrics-port",
            str(metrics_port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    printed: list[str] = []
    try:
        while not any(line.startswith("Stats:") for line in printed):
            line = proc.stdout.readline()
            assert line, "up ended early:\n" + "".join(printed)
            printed.append(line)
        text = "".join(printed)
        found = re.search(r"^Metrics:\s+(\S+)", text, re.M)
        assert found, text
        endpoint = found.group(1)
        assert endpoint.endswith(f":{metrics_port}/metrics")
        assert f"http://127.0.0.1:{port}/api/v1/stats" in text
        assert "#/metrics" in text  # the dashboard's metrics view
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base), "the API", 90)
        httpx.get(f"{base}/api/v1/stats", timeout=10)  # 401: counted like any request

        def exported() -> bool:
            with urllib.request.urlopen(endpoint, timeout=10) as response:
                body = response.read().decode()
            return "ray_hairtrigger_http_requests_total{" in body and (
                'route="GET /api/v1/stats"' in body
            )

        wait_until(exported, "the gateway's request counter at the printed endpoint", 90)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(printed) + rest


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        time.sleep(0.2)
        return False
