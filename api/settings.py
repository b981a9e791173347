"""The service's settings: one frozen value, read once from ``FACEWARDEN_*`` variables.

Every default lives under one data directory (``./var``), so the embedded setup (SQLite,
milvus-lite, a local signing key, a model pack, a self-signed certificate) runs on one machine;
production points the same settings at PostgreSQL, a Milvus server and real key files.
An optional TOML file (``FACEWARDEN_CONFIG``) holds the same keys in lower case, without the
prefix; the environment wins over the file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.witness_client import WitnessEndpoint

__all__ = ["ConfigError", "Networks", "Settings"]

PREFIX = "FACEWARDEN_"


INDEX_TYPES = ("FLAT", "IVF_FLAT", "HNSW")
CONSISTENCY_LEVELS = ("Strong", "Session", "Bounded", "Eventually")
_RATE_LIMITS = (
    "registration_rate_limit",
    "auth_failure_rate_limit",
    "search_rate_limit",
    "account_rate_limit",
)


# s3://bucket[/prefix]: an S3 bucket name (3-63 of a-z 0-9 . -, a letter or digit at each end)
# and a key prefix of printable characters without "//", "?" or "#".
_S3_URL = re.compile(
    r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])"
    r"(?:/(?P<prefix>[^/?#\s]+(?:/[^/?#\s]+)*/?)?)?$"
)
_S3_ENDPOINT = re.compile(r"^https?://[^/?#\s]+/?$")

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


class ConfigError(Exception):
    """A setting is missing, malformed, or names a file that cannot be read."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment. Build it with ``from_env``."""

    data_dir: Path = Path("var")
    database_url: str = ""
    milvus_uri: str = ""
    milvus_token: str | None = field(default=None, repr=False)
    # The vector index (docs/vector-index.md): FLAT is exact and the only choice that scales
    # nowhere; HNSW needs a Milvus server. Build parameters apply when a collection is created.
    milvus_index: str = "FLAT"
    milvus_consistency: str = "Strong"
    # How long a search, count, write or delete may wait for a Milvus server before it is
    # answered 503 vector-index-unavailable (a server that hangs would hold it for ever).
    milvus_timeout_seconds: int = 10
    milvus_nlist: int = 1024
    milvus_nprobe: int = 64
    milvus_hnsw_m: int = 16
    milvus_hnsw_ef_construction: int = 200
    milvus_hnsw_ef: int = 256
    ledger_key_path: Path = Path()
    ledger_key_passphrase: str | None = field(default=None, repr=False)
    ledger_origin: str = "facewarden.local/ledger"
    # Seals the signing keys in ``facewarden backup --include-keys`` and opens them on restore.
    backup_passphrase: str | None = field(default=None, repr=False)
    # Keys the digests the ledger keeps of personal data (URLs, e-mail addresses).
    ledger_secret_path: Path = Path()
    # The newest checkpoint this host signed (ledger.signer_state): the signer refuses to extend
    # a log that does not contain it, whatever the database says.
    ledger_state_path: Path = Path()
    # The witnesses the log submits its checkpoints to (docs/ledger.md, "Witnesses"): "VKEY URL"
    # pairs, separated by commas or newlines; and how many must cosign a checkpoint before it
    # is served as the latest.
    witnesses: str = ""
    witness_quorum: int = 1
    witness_interval_ms: int = 1000
    witness_timeout_seconds: int = 5
    models_dir: Path = Path()
    model_pack: str = "starter"
    photos_dir: Path = Path()
    # Where photos and face thumbnails are stored: "file" (``photos_dir``) or an S3 bucket,
    # "s3://bucket/optional/prefix" (docs/operations.md, "The photo store in S3"). The AWS
    # credentials and region come from boto3's own chain (AWS_* variables, ~/.aws/), never
    # from here.
    photo_store: str = "file"
    # An S3-compatible server's address (MinIO, Ceph, a test server); empty: AWS's own.
    s3_endpoint_url: str = ""
    # How long the photo store may take to connect, or between the bytes of an answer, in each
    # of boto3's three attempts; then the request gets a 503.
    s3_timeout_seconds: int = 10
    tls_cert_path: Path = Path()
    tls_key_path: Path = Path()
    max_request_bytes: int = 20 * 1024 * 1024
    # What ``facewarden serve`` grants a client before cutting it: the TLS handshake and the
    # request head (and an idle keep-alive pause), then the whole body.
    request_header_timeout_seconds: int = 10
    request_body_timeout_seconds: int = 60
    # The proxies whose X-Forwarded-* headers ``serve --http`` honours (IPs or CIDRs, commas).
    trusted_proxies: str = ""
    max_image_pixels: int = 40_000_000
    # Search probes (a CCTV still, a phone photo) need far fewer pixels than gallery photos.
    max_probe_pixels: int = 12_000_000
    credential_ttl_days: int = 90
    # Claim secrets: how long one may be claimed, and the mail that delivers it to its person.
    # Without an SMTP URL, messages are written as .eml files into mail_outbox_dir.
    claim_ttl_days: int = 7
    # A host name, not an address: browsers bind passkeys to it, and refuse an IP address.
    public_url: str = "https://localhost:8443"
    mail_from: str = "FaceWarden <facewarden@localhost>"
    mail_outbox_dir: Path = Path()
    smtp_url: str = ""
    smtp_password: str | None = field(default=None, repr=False)
    smtp_ca_file: str = ""
    # How long the service waits for PostgreSQL to answer a statement or a commit before it
    # closes the connection and answers 503 (a server that hangs never runs statement_timeout).
    database_timeout_seconds: int = 30
    ratelimit_storage_uri: str = "memory://"
    # How long a request waits for a Redis rate-limit store to connect or answer before it is
    # refused with a 503 (its limits cannot be checked, so it is not served).
    ratelimit_storage_timeout_seconds: int = 2
    registration_rate_limit: str = "10 per hour"
    # Failed authentications: per key id (wrong secret), and per address (unknown keys only).
    auth_failure_rate_limit: str = "20 per minute"
    # Costly requests (searches, enrolments, erasures and their previews) per credential and
    # per account; suspended callers are counted too.
    search_rate_limit: str = "30 per minute"
    account_rate_limit: str = "60 per minute"
    urgent_ratification_hours: int = 48
    # Legal bases: the offence allowlist (see governance.legal_basis.offences), the policy caps,
    # and how often a request may trigger the sweep of due expiries and lapses.
    offence_categories: str = "annex_ii"
    max_searches_per_basis: int = 50
    legal_basis_max_days: int = 180
    legal_basis_sweep_seconds: int = 60
    search_retention_days: int = 180
    # /readyz reports the data directory's disk as not ready below this much free space, before
    # the database (SQLite), the photo store (files) or the signer state fail to write.
    min_free_disk_mb: int = 100
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``) and the optional config file.

        Raises ConfigError naming the variable to fix.
        """
        env = dict(os.environ if environ is None else environ)
        values: dict[str, str] = {}
        config_file = env.get(PREFIX + "CONFIG")
        if config_file:
            values.update(_read_config_file(Path(config_file)))
        values.update({k[len(PREFIX) :].lower(): v for k, v in env.items() if k.startswith(PREFIX)})
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        """Build settings from lower-case keys (as in the config file).

        Raises ConfigError naming the variable to fix.
        """
        known = {f.name for f in fields(cls)}
        secrets = {"milvus_token", "ledger_key_passphrase", "smtp_password", "backup_passphrase"}
        unknown = sorted(
            k
            for k in values
            if k not in known
            and k not in {"config"}
            and k.removesuffix("_file") not in secrets
            and not k.startswith("test_")  # the test suite's own variables
        )
        if unknown:
            names = ", ".join(PREFIX + k.upper() for k in unknown)
            raise ConfigError(f"unknown setting(s): {names}")

        data_dir = Path(values.get("data_dir", "var"))
        kwargs: dict[str, Any] = {"data_dir": data_dir}
        defaults: dict[str, Any] = {
            "database_url": f"sqlite:///{(data_dir / 'facewarden.db').as_posix()}",
            "milvus_uri": str(data_dir / "milvus" / "gallery.db"),
            "ledger_key_path": data_dir / "keys" / "ledger.pem",
            "ledger_secret_path": data_dir / "keys" / "ledger-secret.key",
            "ledger_state_path": data_dir / "keys" / "ledger-signer-state.json",
            "models_dir": data_dir / "models",
            "photos_dir": data_dir / "photos",
            "mail_outbox_dir": data_dir / "mail" / "outbox",
            "tls_cert_path": data_dir / "tls" / "cert.pem",
            "tls_key_path": data_dir / "tls" / "key.pem",
        }
        for f in fields(cls):
            if f.name in ("data_dir", *secrets):
                continue
            if f.name in values:
                kwargs[f.name] = _convert(f.name, values[f.name], f.type)
            elif f.name in defaults:
                kwargs[f.name] = defaults[f.name]
        for name in sorted(secrets):
            secret = _secret(values, name)
            if secret is not None:
                kwargs[name] = secret
        settings = cls(**kwargs)
        settings._check_index()
        settings._check_rate_limits()
        settings._check_mail()
        settings._check_photo_store()
        settings._check_witnesses()
        _networks(settings.trusted_proxies)
        return settings

    def _check_index(self) -> None:
        choices = {
            "milvus_index": INDEX_TYPES,
            "milvus_consistency": CONSISTENCY_LEVELS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{PREFIX}{name.upper()}={getattr(self, name)!r} is not one of "
                    f"{', '.join(allowed)}"
                )
        if self.milvus_index == "HNSW" and self.milvus_is_local:
            raise ConfigError(
                f"{PREFIX}MILVUS_INDEX=HNSW needs a Milvus server (milvus-lite has no HNSW): set "
                f"{PREFIX}MILVUS_URI to http://host:19530, or use FLAT"
            )

    def _check_rate_limits(self) -> None:
        from limits import parse  # here, so reading settings stays free of third-party imports

        for name in _RATE_LIMITS:
            value = getattr(self, name)
            try:
                parse(value)
            except ValueError as exc:
                raise ConfigError(
                    f"{PREFIX}{name.upper()}={value!r} is not a rate limit such as '30 per minute'"
                ) from exc

    def _check_mail(self) -> None:
        from governance.core.mail import parse_smtp_url

        if self.smtp_url:
            try:
                parse_smtp_url(self.smtp_url)
            except ValueError as exc:
                raise ConfigError(f"{PREFIX}SMTP_URL {exc}") from exc
        if "@" not in self.mail_from:
            raise ConfigError(f"{PREFIX}MAIL_FROM={self.mail_from!r} is not an e-mail address")
        if not self.public_url.startswith(("https://", "http://")):
            raise ConfigError(f"{PREFIX}PUBLIC_URL={self.public_url!r} must be an http(s) URL")

    def _check_witnesses(self) -> None:
        count = len(self.witness_endpoints)
        if count and self.witness_quorum > count:
            raise ConfigError(
                f"{PREFIX}WITNESS_QUORUM={self.witness_quorum} is more than the {count} "
                f"witnesses {PREFIX}WITNESSES names: lower it, or name more witnesses"
            )

    @property
    def witness_endpoints(self) -> list[WitnessEndpoint]:
        """The witnesses ``witnesses`` names. Raises ConfigError naming FACEWARDEN_WITNESSES."""
        from ledger.witness_client import parse_witnesses

        try:
            return parse_witnesses(self.witnesses)
        except ValueError as exc:
            raise ConfigError(
                f"{PREFIX}WITNESSES: {exc}; give 'VKEY URL' pairs separated by commas, the key "
                "as `facewarden-verify witness keygen` printed it"
            ) from exc

    def _check_photo_store(self) -> None:
        if self.photo_store != "file":
            self.s3_location  # noqa: B018 (parses the URL, raising ConfigError)
        elif self.s3_endpoint_url:
            raise ConfigError(
                f"{PREFIX}S3_ENDPOINT_URL is set but {PREFIX}PHOTO_STORE is 'file': set "
                f"{PREFIX}PHOTO_STORE=s3://bucket/prefix, or unset {PREFIX}S3_ENDPOINT_URL"
            )
        if self.s3_endpoint_url and not _S3_ENDPOINT.match(self.s3_endpoint_url):
            raise ConfigError(
                f"{PREFIX}S3_ENDPOINT_URL={self.s3_endpoint_url!r} is not an http(s) URL such "
                "as https://s3.example.org or http://127.0.0.1:9000"
            )

    @property
    def s3_location(self) -> tuple[str, str] | None:
        """The bucket and key prefix ``photo_store`` names; None for the file store.

        Raises ConfigError naming FACEWARDEN_PHOTO_STORE when it is neither.
        """
        if self.photo_store == "file":
            return None
        found = _S3_URL.match(self.photo_store)
        if found is None:
            raise ConfigError(
                f"{PREFIX}PHOTO_STORE={self.photo_store!r} is neither 'file' nor an S3 URL such "
                "as s3://facewarden-photos or s3://bucket/some/prefix (a bucket name is 3-63 "
                "lower-case letters, digits, dots and hyphens)"
            )
        return found["bucket"], (found["prefix"] or "").strip("/")

    @property
    def trusted_proxy_networks(self) -> Networks:
        """``trusted_proxies`` as networks (a bare address is a /32 or /128)."""
        return _networks(self.trusted_proxies)

    @property
    def milvus_is_local(self) -> bool:
        """True when the index is a milvus-lite file rather than a server URI."""
        return not self.milvus_uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _networks(raw: str) -> Networks:
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{PREFIX}TRUSTED_PROXIES={raw!r} is not a comma-separated list of IP addresses or "
            f"networks ({exc})"
        ) from exc


def _read_config_file(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file {path} ({exc.strerror}): fix or unset {PREFIX}CONFIG"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}): fix {PREFIX}CONFIG") from exc
    return {str(k).lower(): str(v) for k, v in data.items()}


def _secret(values: Mapping[str, str], name: str) -> str | None:
    """A secret comes inline or, better, from a file named by ``<NAME>_FILE``."""
    file_key = name + "_file"
    if file_key in values:
        path = Path(values[file_key])
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read {path} ({exc.strerror}): set {PREFIX}{file_key.upper()} "
                "to a readable file"
            ) from exc
    return values.get(name)


def _convert(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    try:
        if kind == "int":
            value = int(raw)
            if value <= 0:
                raise ValueError("must be positive")
            return value
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name.upper()}={raw!r} is not a positive integer") from exc
    return raw
