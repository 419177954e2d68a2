"""How `hairtrigger up` serves the API: uvicorn over HTTP, or HTTPS with TLS 1.2 or newer."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Any

import uvicorn

MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_2
PathLike = str | os.PathLike[str]


class TlsError(ValueError):
    """A certificate or key that cannot be used; the message says which file and why."""


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    raise _EncryptedKey  # never let OpenSSL prompt on the terminal of a server


def _read(path: PathLike, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS {what} {os.fspath(path)}: {exc.strerror}") from None


def tls_context(certfile: PathLike, keyfile: PathLike) -> ssl.SSLContext:
    """A server context for a PEM certificate chain and its unencrypted PEM key: TLS 1.2 at
    least, TLS 1.3 when the client has it. Raises TlsError naming the file and the problem."""
    cert, key = _read(certfile, "certificate"), _read(keyfile, "key")
    if b"-----BEGIN CERTIFICATE-----" not in cert:
        raise TlsError(f"the TLS certificate {os.fspath(certfile)} is not a PEM certificate")
    if b"PRIVATE KEY-----" not in key:
        raise TlsError(f"the TLS key {os.fspath(keyfile)} is not a PEM private key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # negotiates the newest both sides have
    context.minimum_version = MIN_TLS_VERSION
    try:
        context.load_cert_chain(certfile, keyfile, password=_no_password)
    except _EncryptedKey:
        raise TlsError(
            f"the TLS key {os.fspath(keyfile)} is encrypted; give an unencrypted one "
            "(openssl pkey -in KEY -out PLAIN_KEY) readable only by this user"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            detail = "the key does not belong to the certificate"
        else:
            detail = exc.reason or str(exc)
        raise TlsError(
            f"cannot use the TLS certificate {os.fspath(certfile)} with the key "
            f"{os.fspath(keyfile)}: {detail}"
        ) from None
    return context


def api_server(
    app: Any, host: str, port: int, tls: ssl.SSLContext | None = None, **options: Any
) -> uvicorn.Server:
    """The uvicorn server `up` runs: HTTPS with `tls` (see tls_context), else plain HTTP."""
    options.setdefault("log_config", None)
    if tls is not None:
        options["ssl_context_factory"] = _given(tls)
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))


_Factory = Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]


def _given(tls: ssl.SSLContext) -> _Factory:
    def factory(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return tls

    return factory
