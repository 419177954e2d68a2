"""TLS for the tests of `hairtrigger up --ssl-certfile/--ssl-keyfile`: a self-signed certificate
with some unusable key files, clients that trust it (or speak only TLS 1.1), a handshake."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    cert: Path
    key: Path
    other_key: Path  # belongs to no certificate here
    encrypted_key: Path
    not_pem: Path


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _self_signed(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def trusting(pki: Pki, **versions: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that trusts only our certificate, optionally pinned to TLS versions."""
    context = ssl.create_default_context(cafile=str(pki.cert))
    for attr, version in versions.items():
        setattr(context, attr, version)
    return context


def make_pki(where: Path) -> Pki:
    """A self-signed certificate for localhost / 127.0.0.1 and some unusable key files."""
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    files = {
        "cert.pem": _self_signed(key),
        "key.pem": _key_pem(key),
        "other-key.pem": _key_pem(other),
        "encrypted-key.pem": _key_pem(key, b"secret"),
        "not-pem.txt": b"this is not a certificate\n",
    }
    for name, content in files.items():
        (where / name).write_bytes(content)
    return Pki(
        where / "cert.pem",
        where / "key.pem",
        where / "other-key.pem",
        where / "encrypted-key.pem",
        where / "not-pem.txt",
    )


def tls_1_1_client() -> ssl.SSLContext:
    """A client that speaks TLS 1.1 and nothing newer (OpenSSL 3 needs security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1 itself is deprecated
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def handshake(port: int, context: ssl.SSLContext) -> str | None:
    """The TLS version a handshake with 127.0.0.1:port negotiates."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version()
