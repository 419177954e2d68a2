"""`hairtrigger up --ssl-certfile F --ssl-keyfile K` as a whole: HTTPS, TLS 1.2 or newer only.
The TLS context and server on their own: tests/hairtrigger/test_tls.py."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from hairtrigger import embedded
from tests.support.servers import UP_REDIS_DB, free_port, own_servers
from tests.support.tls import Pki, handshake, tls_1_1_client, trusting


@pytest.mark.slow
def test_up_serves_https_end_to_end(services: embedded.Services, pki: Pki) -> None:
    """The whole `hairtrigger up` (Ray, actors, scheduler) with the TLS flags, on a database and
    Redis db of its own (the session's partition actors are still alive)."""
    port = free_port()
    with own_servers(services, "ht_tls", UP_REDIS_DB, 4) as env:
        _serve_https(env, port, pki)


def _serve_https(env: dict[str, str], port: int, pki: Pki) -> None:
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
            "--ssl-certfile",
            str(pki.cert),
            "--ssl-keyfile",
            str(pki.key),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "hairtrigger up did not answer in 120 s"
            try:
                if httpx.get(f"{base}/healthz", verify=trusting(pki), timeout=2).is_success:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|EOF"):
            handshake(port, tls_1_1_client())
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert f"{base}  (docs: {base}/docs)" in output
