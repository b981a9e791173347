"""The runtime a request works with: database, signing key, clock, mail — and its unit of work.

``Runtime`` is built once by ``create_app``; views reach it through ``runtime()``. ``units()`` is
the request's units of work, all at the one ``now`` read when the request first asks, and a view
opens one with ``work()``, so a governed change and its ledger entry commit together or not at
all. Mail a unit of work queued is delivered once it has committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.settings import ConfigError, Settings
from biometrics.index import MilvusIndex
from biometrics.packs import Pack
from governance.core import mail
from governance.core.effects import Handler
from governance.core.recording import SigningKeys
from governance.core.witnessing import Witnessing
from governance.core.work import Hooks, Units, Work
from governance.gallery import effects as gallery_effects
from governance.gallery.blobs import BlobStore, FileBlobStore
from governance.gallery.photos import FaceEngines
from governance.identity.claims import ClaimPolicy
from governance.identity.passkeys import PasskeyPolicy
from ledger.keys import KeyFileError, Signer

__all__ = [
    "Runtime",
    "build_engines",
    "build_mailer",
    "build_photo_store",
    "claim_policy",
    "effect_handlers",
    "engines",
    "loaded_signing_keys",
    "pack",
    "passkey_policy",
    "runtime",
    "signing_keys",
    "units",
    "utcnow",
    "work",
]

EXTENSION = "facewarden"


def utcnow() -> datetime:
    """The wall clock, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(slots=True)
class Runtime:
    """What ``create_app`` wires together. Mutable only where tests swap the clock."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: SigningKeys
    model_pack: Pack
    mailer: mail.Mailer
    hooks: Hooks
    clock: Callable[[], datetime] = utcnow
    # Submits the checkpoints to FACEWARDEN_WITNESSES (None without witnesses).
    witnessing: Witnessing | None = None
    lazy: dict[str, Any] = field(default_factory=dict)
    lazy_lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> datetime:
        return self.clock()

    def units(self, now: datetime | None = None) -> Units:
        """Units of work at ``now`` (by default the clock's now), delivering the mail they queue."""
        return Units(
            sessions=self.sessions,
            keys=self.keys,
            now=self.now() if now is None else now,
            hooks=self.hooks,
            deliver=self.deliver,
            clock=self.clock,
        )

    def deliver(self, ids: list[UUID]) -> None:
        """Send mail committed units of work queued (a failure is logged and kept for a retry)."""
        mail.deliver(
            self.sessions, self.mailer, clock=self.clock, ids=ids, stale_after=self.claims.ttl
        )

    @property
    def signer(self) -> Signer:
        """The current ledger signing key."""
        return self.keys.current()

    @property
    def claims(self) -> ClaimPolicy:
        """How claim secrets are issued and redeemed."""
        return claim_policy(self.settings)

    @property
    def passkeys(self) -> PasskeyPolicy:
        """The WebAuthn relying party: the public address's host and origin."""
        return passkey_policy(self.settings)


def claim_policy(settings: Settings) -> ClaimPolicy:
    """The claim TTL, first-key TTL and public address ``settings`` name."""
    return ClaimPolicy(
        ttl=timedelta(days=settings.claim_ttl_days),
        credential_ttl=timedelta(days=settings.credential_ttl_days),
        public_url=settings.public_url,
    )


def passkey_policy(settings: Settings) -> PasskeyPolicy:
    """The relying party of ``FACEWARDEN_PUBLIC_URL``: passkeys are bound to its host."""
    url = urlsplit(settings.public_url)
    return PasskeyPolicy(
        rp_id=url.hostname or "localhost",
        rp_name="FaceWarden",
        origin=f"{url.scheme}://{url.netloc}",
    )


def build_mailer(settings: Settings) -> mail.Mailer:
    """SMTP when ``FACEWARDEN_SMTP_URL`` is set, else ``.eml`` files in the outbox directory."""
    transport: mail.Transport
    if settings.smtp_url:
        transport = mail.SmtpTransport(
            mail.parse_smtp_url(settings.smtp_url),
            password=settings.smtp_password,
            ca_file=Path(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )
    else:
        transport = mail.FileTransport(settings.mail_outbox_dir)
    return mail.Mailer(transport=transport, sender=settings.mail_from)


def signing_keys(settings: Settings) -> SigningKeys:
    """The ledger's signing key and hash secret as ``settings`` name them (loaded on first use)."""
    return SigningKeys(
        settings.ledger_key_path,
        name=settings.ledger_origin,
        passphrase=settings.ledger_key_passphrase,
        secret_path=settings.ledger_secret_path,
        state_path=settings.ledger_state_path,
    )


def loaded_signing_keys(settings: Settings) -> SigningKeys:
    """The ledger's signing key and hash secret, checked now rather than on first use.

    Raises ConfigError naming the setting to fix: run where `facewarden init` made the data
    directory, or set FACEWARDEN_DATA_DIR (or the file's own path variable).
    """
    keys = signing_keys(settings)
    for path, setting, what in (
        (settings.ledger_key_path, "FACEWARDEN_LEDGER_KEY_PATH", "the ledger signing key"),
        (keys.resolved_secret_path, "FACEWARDEN_LEDGER_SECRET_PATH", "the ledger hash secret"),
    ):
        if not path.exists():
            raise ConfigError(
                f"{what} {path} does not exist (the data directory is {settings.data_dir}): run "
                "this command where `facewarden init` created the data directory, or set "
                f"FACEWARDEN_DATA_DIR to that directory (or {setting} to the file)"
            )
    try:
        keys.current()
    except KeyFileError as exc:
        raise ConfigError(
            f"{exc}: check FACEWARDEN_LEDGER_KEY_PATH and FACEWARDEN_LEDGER_KEY_PASSPHRASE_FILE"
        ) from exc
    return keys


def pack() -> Pack:
    """The model pack named in the settings (its files were checked at start-up)."""
    return runtime().model_pack


def engines() -> FaceEngines:
    """The face engines (models, vector index, photo store), built on first use in this process.

    Loading the models and opening the vector index take a second or two, so they wait for the
    first request that needs them rather than slowing every start.
    Raises PackError, ModelError, IndexUnavailable.
    """
    rt = runtime()
    built: FaceEngines | None = rt.lazy.get("engines")
    if built is not None:
        return built
    with rt.lazy_lock:
        built = rt.lazy.get("engines")
        if built is None:
            built = build_engines(rt.settings, model_pack=rt.model_pack)
            rt.lazy["engines"] = built
    return built


def effect_handlers() -> dict[str, Handler]:
    """What applies the pending effects outside the database: the gallery's, on the engines'
    vector index and photo store. Raises PackError, ModelError, IndexUnavailable."""
    built = engines()
    return gallery_effects.effect_handlers(built.index, built.blobs)


def build_engines(settings: Settings, *, model_pack: Pack) -> FaceEngines:
    """Load the pack's models and open the vector index and photo store named in ``settings``.

    Raises PackError, ModelError, IndexUnavailable.
    """
    from biometrics.packs import build_pipeline

    pipeline = build_pipeline(model_pack)
    index = open_index(settings, model_pack)
    index.ensure_collection(model_pack.dimension)
    return FaceEngines(
        analyzer=pipeline,
        index=index,
        blobs=build_photo_store(settings),
        max_bytes=settings.max_request_bytes,
        max_pixels=settings.max_image_pixels,
        max_probe_pixels=settings.max_probe_pixels,
        match_threshold=model_pack.match_threshold,
        match_far=model_pack.match_far,
    )


def build_photo_store(settings: Settings) -> BlobStore:
    """The photo store ``settings`` name: the data directory's files, or an S3 bucket.

    Nothing is contacted yet; a store that cannot be reached raises PhotoStoreUnavailable on
    first use.
    """
    location = settings.s3_location
    if location is None:
        return FileBlobStore(settings.photos_dir)
    from governance.gallery.s3 import S3BlobStore  # boto3 only where S3 is configured

    bucket, prefix = location
    return S3BlobStore(
        bucket,
        prefix,
        endpoint_url=settings.s3_endpoint_url or None,
        timeout_seconds=settings.s3_timeout_seconds,
    )


def open_index(settings: Settings, model_pack: Pack) -> MilvusIndex:
    """A connection to the pack's collection in the index ``settings`` name, tuned as they say.

    Raises IndexUnavailable.
    """
    from biometrics.index import IndexTuning
    from biometrics.index_server import shared_uri

    tuning = IndexTuning(
        index_type=settings.milvus_index,
        nlist=settings.milvus_nlist,
        nprobe=settings.milvus_nprobe,
        hnsw_m=settings.milvus_hnsw_m,
        ef_construction=settings.milvus_hnsw_ef_construction,
        ef=settings.milvus_hnsw_ef,
        consistency=settings.milvus_consistency,
    )
    uri = settings.milvus_uri
    if settings.milvus_is_local:
        # A running `facewarden serve` shares the file over a socket: use it, as its workers do.
        uri = shared_uri(Path(uri)) or uri
    return MilvusIndex(
        uri,
        recognizer_sha256=model_pack.recognizer.sha256,
        token=settings.milvus_token or "",
        tuning=tuning,
        call_timeout=settings.milvus_timeout_seconds,
    )


def runtime() -> Runtime:
    """The current application's runtime."""
    value: Runtime = current_app.extensions[EXTENSION]
    return value


def units() -> Units:
    """The current request's units of work: one ``now`` for the whole request."""
    existing: Units | None = g.get("facewarden_units")
    if existing is None:
        existing = runtime().units()
        g.facewarden_units = existing
    return existing


def work() -> AbstractContextManager[Work]:
    """One unit of work for the current request (see ``governance.core.work``)."""
    return units()()
