"""Backup and restore of a data directory, taken while the service serves.

A backup directory holds the database (a SQLite copy made with SQLite's backup API, or a
``pg_dump`` in custom format), the photo store's files, optionally the signing keys sealed with
a passphrase, and ``manifest.json``: what was backed up, when, by which version, and the
SHA-256 of every file. The vector index is not copied: every face row keeps its embedding
(``GalleryFace.embedding``), so a restore indexes the faces again from the database.

It lives with the gallery because a restore rebuilds the gallery's index from its rows; the
database and the keys travel as opaque files.

Consistency while serving: the database copy is one snapshot. The photo store is copied before
it (everything present) and again after it (what an enrolment wrote in between), so every
file a row of the snapshot names is in the backup unless a removal committed after the
snapshot deleted it first; such files are listed in the manifest as ``missing_files``.
Restoring never appends to the restored ledger: it is the backup's, byte for byte.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from biometrics.index import VectorIndex, collection_name
from biometrics.packs import file_sha256
from governance.core.errors import GovernanceError, NotFound
from governance.gallery.blobs import BlobStore, FileBlobStore, sha256_hex
from governance.gallery.effects import index_entries
from governance.gallery.models import GalleryFace, GalleryPhoto
from ledger.storage import tree_size

__all__ = [
    "Backed",
    "BackupError",
    "KeyFiles",
    "Restored",
    "backup",
    "open_keys",
    "read_manifest",
    "restore",
    "seal_keys",
]

MANIFEST = "manifest.json"
FORMAT = 1
_KEYS_FILE = "keys.sealed"
_MAGIC = b"FACEWARDEN-SEALED-1\n"
# scrypt at n=2**15, r=8, p=1: about 32 MiB and a tenth of a second per attempt.
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_BATCH = 500

Progress = Callable[[str, int, int], None]


def _silent(_step: str, _done: int, _total: int) -> None:
    return None


class BackupError(GovernanceError):
    """A backup or restore cannot go ahead, or its files do not match their manifest.

    Only the command line raises it (no API answers it), so it has no problem code of its own.
    """


@dataclass(frozen=True, slots=True)
class KeyFiles:
    """Where the signing key and the ledger's digest secret live (the configured paths)."""

    ledger_key: Path
    ledger_secret: Path

    def named(self) -> dict[str, Path]:
        return {"ledger_key": self.ledger_key, "ledger_secret": self.ledger_secret}


@dataclass(frozen=True, slots=True)
class Backed:
    """What ``backup`` wrote."""

    directory: Path
    manifest: dict[str, object]


@dataclass(frozen=True, slots=True)
class Restored:
    """What ``restore`` put back."""

    database: str
    photos: int
    faces_indexed: int
    ledger_entries: int
    collection: str
    keys: tuple[str, ...]


# The sealed keys: a magic line, a JSON header (the KDF, its parameters and salt, the nonce),
# then AES-256-GCM over the key files, with the header as associated data.


def seal_keys(files: dict[str, bytes], passphrase: str) -> bytes:
    """Encrypt named files with a key derived from ``passphrase`` (scrypt, AES-256-GCM)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header = json.dumps(
        {
            "kdf": "scrypt",
            **_SCRYPT,
            "salt": base64.b64encode(salt).decode(),
            "cipher": "AES-256-GCM",
            "nonce": base64.b64encode(nonce).decode(),
        },
        sort_keys=True,
    ).encode()
    plain = json.dumps({k: base64.b64encode(v).decode() for k, v in files.items()}).encode()
    sealed = AESGCM(_derive(passphrase, salt, _SCRYPT)).encrypt(nonce, plain, header)
    return _MAGIC + header + b"\n" + sealed


def open_keys(data: bytes, passphrase: str) -> dict[str, bytes]:
    """Decrypt what ``seal_keys`` wrote. Raises BackupError on a wrong passphrase or damage."""
    if not data.startswith(_MAGIC) or b"\n" not in data[len(_MAGIC) :]:
        raise BackupError("the sealed keys file is not one FaceWarden wrote")
    header, _, sealed = data[len(_MAGIC) :].partition(b"\n")
    try:
        params = json.loads(header)
        salt = base64.b64decode(params["salt"])
        nonce = base64.b64decode(params["nonce"])
        cost = {k: int(params[k]) for k in ("n", "r", "p")}
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError("the sealed keys file has a damaged header") from exc
    try:
        plain = AESGCM(_derive(passphrase, salt, cost)).decrypt(nonce, sealed, header)
    except InvalidTag as exc:
        raise BackupError(
            "wrong passphrase for the backup's keys (or the sealed file was altered)"
        ) from exc
    return {k: base64.b64decode(v) for k, v in json.loads(plain).items()}


def _derive(passphrase: str, salt: bytes, cost: dict[str, int]) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=cost["n"], r=cost["r"], p=cost["p"])
    return kdf.derive(passphrase.encode("utf-8"))


# Backup


def backup(
    engine: Engine,
    *,
    photos: BlobStore,
    target: Path,
    recognizer_sha256: str,
    app_version: str,
    keys: KeyFiles | None = None,
    passphrase: str | None = None,
    progress: Progress = _silent,
) -> Backed:
    """Back up the database ``engine`` reaches and the photo store into the empty ``target``.

    With ``keys`` (and a ``passphrase``) the signing key and the ledger's secret are sealed
    into the backup; without them no key material is written. Raises BackupError, OSError.
    """
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} is not an empty directory")
    if keys is not None and not passphrase:
        raise BackupError("sealing the keys needs a passphrase")
    # Read first, so a missing key file stops the backup before it writes anything.
    key_files = {n: p.read_bytes() for n, p in keys.named().items()} if keys is not None else {}
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Through the Protocol, so a bucket is backed up as the data directory's files are.
    copy = FileBlobStore(target / "photos")
    copied = _copy_files(photos, copy, _stored(photos), "photos", progress)
    with _snapshot(engine, target / "database", progress) as (kind, database, session):
        # Read from the snapshot itself, so the counts and names are those of the copy.
        named = _named_digests(session)
        counts = {
            "photos": session.scalar(select(func.count()).select_from(GalleryPhoto)) or 0,
            "faces": session.scalar(select(func.count()).select_from(GalleryFace)) or 0,
            "faces_of_recognizer": session.scalar(
                select(func.count())
                .select_from(GalleryFace)
                .where(GalleryFace.recognizer_sha256 == recognizer_sha256)
            )
            or 0,
            "ledger_entries": tree_size(session),
        }
    # Written since the first pass: an enrolment stores its files before it commits.
    late = sorted(d for d in named if d not in copied and photos.exists(d))
    copied.update(_copy_files(photos, copy, late, "photos written meanwhile", progress))
    counts["stored_files"] = len(copied)
    if keys is not None:
        assert passphrase is not None
        progress("keys: sealing", 0, 0)
        (target / _KEYS_FILE).write_bytes(seal_keys(key_files, passphrase))
    manifest: dict[str, object] = {
        "format": FORMAT,
        "app_version": app_version,
        "created": datetime.now(UTC).isoformat(),
        "database": {"kind": kind, "file": database},
        "counts": counts,
        "missing_files": sorted(named - copied.keys()),
        "vector_index": {
            "collection": collection_name(recognizer_sha256),
            "recognizer_sha256": recognizer_sha256,
            "backed_up": False,
            "restore": "indexed again from the embeddings the face rows keep",
        },
        "keys": _KEYS_FILE if keys is not None else None,
        "files": _digests(target, progress),
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return Backed(target, manifest)


@contextmanager
def _snapshot(
    engine: Engine, directory: Path, progress: Progress
) -> Iterator[tuple[str, str, Session]]:
    """One consistent copy of the database: its kind, its file (relative to the backup), and a
    session that reads exactly what the copy holds."""
    directory.mkdir(mode=0o700)
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise BackupError("an in-memory database cannot be backed up")
        copy = directory / "facewarden.db"
        progress("database: copying with the SQLite backup API", 0, 0)
        _sqlite_copy(Path(url.database), copy, progress)
        snapshot = create_engine(f"sqlite:///{copy.as_posix()}")
        try:
            with Session(snapshot) as session:
                yield "sqlite", "database/facewarden.db", session
        finally:
            snapshot.dispose()
        return
    if url.get_backend_name() == "postgresql":
        # pg_dump joins a snapshot this transaction exports and holds open meanwhile.
        conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            exported = conn.scalar(text("SELECT pg_export_snapshot()"))
            progress("database: pg_dump (custom format)", 0, 0)
            _pg(
                "pg_dump",
                url,
                [
                    "--format=custom",
                    "--no-owner",
                    f"--snapshot={exported}",
                    f"--file={directory / 'facewarden.dump'}",
                ],
            )
            with Session(bind=conn) as session:
                yield "postgresql", "database/facewarden.dump", session
        return
    raise BackupError(
        f"cannot back up a {url.get_backend_name()} database (SQLite and PostgreSQL only)"
    )


def _sqlite_copy(source: Path, target: Path, progress: Progress) -> None:
    def pages(_status: int, remaining: int, total: int) -> None:
        progress("database pages", total - remaining, total)

    origin = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        # In one step: writers go on meanwhile (WAL), whereas a copy taken in steps starts
        # again whenever another connection writes between two of them, and a busy gallery
        # may never let it finish.
        origin.backup(copy, pages=-1, progress=pages)
    finally:
        copy.close()
        origin.close()


def _pg(tool: str, url: URL, arguments: Sequence[str]) -> None:
    """Run a PostgreSQL client tool on the database ``url`` names. Raises BackupError."""
    program = shutil.which(tool)
    if program is None:
        raise BackupError(
            f"{tool} is not installed: install the PostgreSQL client tools (e.g. the "
            "postgresql-client package), the same major version as the server or newer"
        )
    # The password travels in the environment, never on a command line others can read.
    libpq = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    ).render_as_string()
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    done = subprocess.run(  # a fixed program, its arguments without a shell
        [program, *arguments, f"--dbname={libpq}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{tool} failed: {reason}")


def _stored(photos: BlobStore) -> list[str]:
    """The digests of the objects stored now (temporary files are left out)."""
    return sorted(f.name for f in photos.files() if not f.temporary)


def _copy_files(
    source: BlobStore, target: BlobStore, digests: Sequence[str], step: str, progress: Progress
) -> dict[str, None]:
    """Copy these objects; returns those copied (one removed meanwhile is skipped, and so is
    one whose bytes no longer match its name: the manifest lists it as missing)."""
    copied: dict[str, None] = {}
    for done, digest in enumerate(digests, 1):
        try:
            data = source.get(digest)
        except NotFound:
            continue
        if sha256_hex(data) != digest:
            continue
        target.put(data)
        copied[digest] = None
        if done % 1000 == 0 or done == len(digests):
            progress(step, done, len(digests))
    return copied


def _named_digests(session: Session) -> set[str]:
    named = set(session.scalars(select(GalleryPhoto.sha256)))
    named.update(session.scalars(select(GalleryFace.thumbnail_sha256)))
    return named


def _digests(root: Path, progress: Progress) -> dict[str, str]:
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)
    digests: dict[str, str] = {}
    for done, path in enumerate(paths, 1):
        digests[path.relative_to(root).as_posix()] = file_sha256(path)
        if done % 1000 == 0 or done == len(paths):
            progress("checksums", done, len(paths))
    return digests


# Restore


def read_manifest(source: Path, progress: Progress = _silent) -> dict[str, object]:
    """The backup's manifest, once every file it lists matches its SHA-256.

    Raises BackupError naming the first file that is missing, altered or unlisted.
    """
    try:
        manifest: dict[str, object] = json.loads((source / MANIFEST).read_text())
        files = dict(manifest["files"])  # type: ignore[call-overload]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(
            f"{source} holds no readable {MANIFEST}: not a FaceWarden backup"
        ) from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not {FORMAT}")
    present = _digests(source, progress)
    for name, expected in sorted(files.items()):
        if name not in present:
            raise BackupError(f"the backup lacks {name}")
        if present[name] != expected:
            raise BackupError(
                f"{name} does not match its SHA-256 in the manifest: the backup was altered or "
                "damaged"
            )
    extra = sorted(present.keys() - files.keys())
    if extra:
        raise BackupError(f"the backup holds files its manifest does not list: {extra[0]}")
    return manifest


def restore(
    source: Path,
    engine: Engine,
    *,
    photos: BlobStore,
    keys: KeyFiles,
    passphrase: Callable[[], str],
    index: Callable[[], VectorIndex],
    recognizer_sha256: str,
    dimension: int,
    progress: Progress = _silent,
) -> Restored:
    """Rebuild a data directory from the backup in ``source``.

    Every file is checked against the manifest first, before anything is written or opened.
    The database ``engine`` reaches must hold no tables (a SQLite file must not exist yet).
    Sealed keys are opened with what ``passphrase`` returns (asked only then) and written where
    ``keys`` says; the faces of ``recognizer_sha256`` are then indexed into the index ``index``
    opens, from their stored embeddings; that index must hold no vector of theirs yet. Raises
    BackupError, OSError.
    """
    manifest = read_manifest(source, progress)
    sealed = manifest.get("keys")
    opened: dict[str, bytes] = {}
    if sealed:
        for path in keys.named().values():
            if path.exists():
                raise BackupError(f"{path} exists already: not overwriting a key")
        opened = open_keys((source / str(sealed)).read_bytes(), passphrase())
    # An index that holds vectors already could keep faces erased since the backup was taken.
    vectors = index()
    vectors.ensure_collection(dimension)
    held = vectors.count()
    if held:
        raise BackupError(
            f"the vector index collection {vectors.collection} holds {held} vectors already: "
            "restore into an empty index (a new FACEWARDEN_MILVUS_URI, or drop the collection)"
        )
    database = manifest["database"]
    assert isinstance(database, dict)
    _load(engine, database["kind"], source / database["file"], progress)
    backed_up = FileBlobStore(source / "photos")
    copied = _copy_files(backed_up, photos, _stored(backed_up), "photos", progress)
    for name, data in opened.items():
        path = keys.named()[name]
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            fh.write(data)
    indexed = _index_all(engine, vectors, recognizer_sha256, progress)
    with Session(engine) as session:
        entries = tree_size(session)
    return Restored(
        database["kind"], len(copied), indexed, entries, vectors.collection, tuple(sorted(opened))
    )


def _load(engine: Engine, kind: str, dump: Path, progress: Progress) -> None:
    url = engine.url
    if url.get_backend_name() != kind:
        raise BackupError(
            f"the backup holds a {kind} database; the configured one is {url.get_backend_name()}"
        )
    if kind == "sqlite":
        path = Path(url.database or "")
        if path.exists():
            raise BackupError(
                f"{path} exists already: restore into a data directory without a database"
            )
        progress("database: copying", 0, 0)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(dump, path)
        path.chmod(0o600)
        return
    if inspect(engine).get_table_names():
        raise BackupError(
            f"the database {url.render_as_string()} holds tables already: restore into an "
            "empty database"
        )
    progress("database: pg_restore", 0, 0)
    _pg("pg_restore", url, ["--no-owner", "--exit-on-error", str(dump)])


def _index_all(engine: Engine, index: VectorIndex, recognizer: str, progress: Progress) -> int:
    with Session(engine) as session:
        face_ids = [
            str(i)
            for i in session.scalars(
                select(GalleryFace.id).where(GalleryFace.recognizer_sha256 == recognizer)
            )
        ]
    for start in range(0, len(face_ids), _BATCH):
        batch = [UUID(f) for f in face_ids[start : start + _BATCH]]
        with Session(engine) as session:
            rows = session.scalars(select(GalleryFace).where(GalleryFace.id.in_(batch))).all()
            index.upsert(index_entries(rows))
        progress("vector index", min(start + _BATCH, len(face_ids)), len(face_ids))
    index.flush()
    return len(face_ids)
