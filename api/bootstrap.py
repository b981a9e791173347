"""``facewarden init``: the data directory, migrations, the ledger key and a TLS certificate.

Each step is idempotent: running ``init`` again keeps existing keys and certificates and only
migrates the database forward.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import make_url

from api.settings import Settings
from governance.core.db import make_engine
from governance.core.migrate import upgrade
from ledger.keys import generate_key, generate_log_secret

__all__ = [
    "InitReport",
    "certificate_fingerprint",
    "ensure_sqlite_directory",
    "initialize",
    "write_self_signed_certificate",
]

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class InitReport:
    """What ``init`` prepared: the data directory, and its TLS certificate's fingerprint.

    ``certificate_fingerprint`` is None when ``init`` ran without TLS.
    """

    data_dir: Path
    certificate_fingerprint: str | None


def initialize(settings: Settings, *, tls: bool = True, progress: Progress = print) -> InitReport:
    """Create what the embedded defaults need; keep whatever already exists.

    Raises OSError when a directory or file cannot be written, and the database driver's errors
    when the database cannot be reached.
    """
    # Owner-only, whatever the umask: the directory holds faces, keys and the database.
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.data_dir.chmod(0o700)
    for directory in (settings.models_dir, settings.photos_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if settings.milvus_is_local:
        Path(settings.milvus_uri).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    ensure_sqlite_directory(settings.database_url)

    progress(f"database: migrating {_redact(settings.database_url)}")
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()

    if settings.ledger_key_path.exists():
        progress(f"ledger key: keeping {settings.ledger_key_path}")
    else:
        settings.ledger_key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        generate_key(
            settings.ledger_key_path,
            name=settings.ledger_origin,
            passphrase=settings.ledger_key_passphrase,
        )
        progress(f"ledger key: created {settings.ledger_key_path} (owner-only)")

    if settings.ledger_secret_path.exists():
        progress(f"ledger hash secret: keeping {settings.ledger_secret_path}")
    else:
        settings.ledger_secret_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        generate_log_secret(settings.ledger_secret_path)
        progress(f"ledger hash secret: created {settings.ledger_secret_path} (owner-only)")

    fingerprint = None
    if tls:
        if settings.tls_cert_path.exists() and settings.tls_key_path.exists():
            progress(f"TLS: keeping {settings.tls_cert_path}")
        else:
            write_self_signed_certificate(settings.tls_cert_path, settings.tls_key_path)
            progress(
                f"TLS: created a self-signed certificate for localhost at {settings.tls_cert_path}"
            )
        fingerprint = certificate_fingerprint(settings.tls_cert_path)
    return InitReport(settings.data_dir, fingerprint)


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the directory of a SQLite database file; other databases are left alone."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def write_self_signed_certificate(
    cert_path: Path, key_path: Path, *, days: int = 397, hostname: str = "localhost"
) -> None:
    """Write an ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1 (key mode 0600).

    Raises OSError when the files cannot be written.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(hostname),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def certificate_fingerprint(cert_path: Path) -> str:
    """The SHA-256 fingerprint of a PEM certificate, as colon-separated hex.

    Raises OSError or ValueError when the file is missing or not a certificate.
    """
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
