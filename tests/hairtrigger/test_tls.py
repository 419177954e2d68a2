"""`hairtrigger up --ssl-certfile F --ssl-keyfile K`: HTTPS with TLS 1.2 or newer only. The whole
`up` with the flags: tests/e2e/test_tls_up.py."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from hairtrigger import cli, serving
from pipelines.config import Settings
from store import accounts
from tests.support.db import Db
from tests.support.servers import free_port
from tests.support.tls import Pki, handshake, tls_1_1_client, trusting


@contextlib.contextmanager
def _serve_tls(app: Any, tls: ssl.SSLContext) -> Iterator[int]:
    """`app` behind the same server `up` builds (serving.api_server), on a free port."""
    port = free_port()
    server = serving.api_server(app, "127.0.0.1", port, tls, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the TLS server failed to start"
        assert time.monotonic() < deadline, "the TLS server did not start in 30 s"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def tls_port(settings: Settings, pki: Pki) -> Iterator[int]:
    with _serve_tls(create_app(settings), serving.tls_context(pki.cert, pki.key)) as port:
        yield port


@pytest.fixture
def api_key(db_sync: Db) -> Iterator[str]:
    async def make(conn: Any) -> tuple[uuid.UUID, str]:
        account_id = await accounts.create_account(conn, "tls account", "UTC")
        key, _ = await accounts.create_key(conn, account_id, ["workflow:read", "workflow:edit"])
        return account_id, key

    account_id, key = db_sync.run(make)
    yield key
    db_sync.run(lambda c: c.execute("DELETE FROM accounts WHERE id = $1", account_id))


def test_the_context_refuses_anything_older_than_tls_1_2(pki: Pki) -> None:
    context = serving.tls_context(pki.cert, pki.key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED


def test_https_round_trip_with_the_certificate_as_ca(tls_port: int, pki: Pki, api_key: str) -> None:
    base = f"https://127.0.0.1:{tls_port}"
    trust = trusting(pki)
    assert httpx.get(f"{base}/healthz", verify=trust, timeout=10).json() == {"status": "ok"}
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers, verify=trust) as client:
        workflow = client.post("/workflows", json={"name": "Over TLS"})
        assert workflow.status_code == 201, workflow.text
        created = client.post(
            f"/workflows/{workflow.json()['id']}/trigger",
            json={"template": "hot_lead_tag_added", "overrides": {"tag": "vip"}},
        )
        assert created.status_code == 201, created.text
        assert created.json()["filters"]["conditions"][0]["value"] == "vip"


def test_tls_1_3_is_preferred_and_1_2_still_served(tls_port: int, pki: Pki) -> None:
    assert handshake(tls_port, trusting(pki)) == "TLSv1.3"
    only_1_2 = trusting(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert handshake(tls_port, only_1_2) == "TLSv1.2"


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_port: int) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{tls_port}/healthz", timeout=10)


def test_a_tls_1_1_client_is_refused(tls_port: int, pki: Pki) -> None:
    # asyncio's TLS transport hangs up without an alert: the client sees EOF in the handshake
    with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|EOF"):
        handshake(tls_port, tls_1_1_client())


def test_the_tls_1_1_client_is_refused_because_of_the_minimum(pki: Pki) -> None:
    """Control: a server without the minimum (and security level 0) accepts the same client,
    so the refusal above is the minimum version's doing; ciphers do not weaken it."""
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    loose.load_cert_chain(pki.cert, pki.key)
    loose.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loose.minimum_version = ssl.TLSVersion.TLSv1_1
    assert _memory_handshake(loose, tls_1_1_client()) == "TLSv1.1"
    ours = serving.tls_context(pki.cert, pki.key)
    ours.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError, match="UNSUPPORTED_PROTOCOL"):
        _memory_handshake(ours, tls_1_1_client())


def _memory_handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> str | None:
    """Handshake two contexts through memory buffers; the version, or the server's SSLError."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, side in (("c", c), ("s", s)):
            if not done[name]:
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
                    done[name] = True
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return s.version()
    raise AssertionError("the handshake did not finish")


def test_plain_http_to_the_tls_port_fails(tls_port: int, pki: Pki) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_port}/healthz", timeout=10)
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = raw.recv(1024)
    assert not answer.startswith(b"HTTP/"), answer
    assert httpx.get(f"https://127.0.0.1:{tls_port}/healthz", verify=trusting(pki)).is_success


def test_up_flags_build_the_tls_server(pki: Pki, settings: Settings) -> None:
    args = cli._parser().parse_args(
        ["up", "--port", "8443", "--ssl-certfile", str(pki.cert), "--ssl-keyfile", str(pki.key)]
    )
    assert (args.ssl_certfile, args.ssl_keyfile) == (str(pki.cert), str(pki.key))
    tls = cli._tls(args)
    assert tls is not None
    assert tls.minimum_version == ssl.TLSVersion.TLSv1_2
    config = serving.api_server(create_app(settings), args.host, args.port, tls).config
    config.load()
    assert config.is_ssl
    assert config.ssl is tls
    plain_args = cli._parser().parse_args(["up"])
    assert cli._tls(plain_args) is None
    plain = serving.api_server(create_app(settings), "127.0.0.1", 8000, None).config
    plain.load()
    assert plain.ssl is None


def _up(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "HAIRTRIGGER_SHARDS": str(settings.shards),
    }
    return subprocess.run(
        [sys.executable, "-m", "hairtrigger.cli", "up", "--port", str(free_port()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (lambda p: ["--ssl-certfile", str(p.cert)], "--ssl-certfile and --ssl-keyfile go together"),
        (lambda p: ["--ssl-keyfile", str(p.key)], "--ssl-certfile and --ssl-keyfile go together"),
        (
            lambda p: [
                "--ssl-certfile",
                str(p.cert.parent / "nope.pem"),
                "--ssl-keyfile",
                str(p.key),
            ],
            "cannot read the TLS certificate",
        ),
        (
            lambda p: ["--ssl-certfile", str(p.cert), "--ssl-keyfile", str(p.cert.parent)],
            "cannot read the TLS key",
        ),
        (
            lambda p: ["--ssl-certfile", str(p.not_pem), "--ssl-keyfile", str(p.key)],
            "is not a PEM certificate",
        ),
        (
            lambda p: ["--ssl-certfile", str(p.cert), "--ssl-keyfile", str(p.cert)],
            "is not a PEM private key",
        ),
        (
            lambda p: ["--ssl-certfile", str(p.cert), "--ssl-keyfile", str(p.other_key)],
            "the key does not belong to the certificate",
        ),
        (
            lambda p: ["--ssl-certfile", str(p.cert), "--ssl-keyfile", str(p.encrypted_key)],
            "is encrypted",
        ),
    ],
    ids=[
        "cert only",
        "key only",
        "missing cert",
        "key is a directory",
        "cert not PEM",
        "key not PEM",
        "key of another cert",
        "encrypted key",
    ],
)
def test_up_refuses_unusable_tls_files_before_starting(
    settings: Settings, pki: Pki, flags: Any, message: str
) -> None:
    done = _up(settings, *flags(pki))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.startswith("hairtrigger: ")
    assert "Hairtrigger API" not in done.stdout
