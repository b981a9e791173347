"""Bulk enrolment from a manifest (CSV or JSON lines), in batches, resumable, with progress.

Rows name a file (relative to the manifest), its source URL, when and on what basis it was
collected. Faces of a batch are embedded together; each photo is then enrolled in its own unit
of work, so one bad row never loses the others, and a rerun skips what is already enrolled.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from api.context import build_engines, loaded_signing_keys
from api.settings import Settings
from biometrics.errors import BiometricsError
from biometrics.packs import load_pack
from governance import wiring
from governance.core.db import make_engine, make_session_factory
from governance.core.errors import GovernanceError
from governance.core.work import Units
from governance.gallery.photos import (
    FaceEngines,
    PreparedPhoto,
    Provenance,
    enroll_photo,
    is_enrolled,
    prepare_photos,
)
from ledger.entry import Actor

__all__ = ["IngestSummary", "ManifestRow", "ingest_manifest", "read_manifest"]

REQUIRED = ("path", "source_url", "collected_at", "collection_basis")


class ManifestError(ValueError):
    """The manifest itself cannot be read (not a bad row: those are rejected one by one)."""


@dataclass(frozen=True, slots=True)
class ManifestRow:
    line: int
    path: Path
    provenance: Provenance | None
    problem: str | None = None


@dataclass(slots=True)
class IngestSummary:
    enrolled: int = 0
    faces: int = 0
    skipped: int = 0
    rejects: list[tuple[str, str]] = field(default_factory=list)


def read_manifest(manifest: Path) -> Iterator[ManifestRow]:
    """The rows of a CSV (with a header) or JSON-lines manifest.

    Raises ManifestError when the file lacks a required column.
    """
    base = manifest.parent
    with manifest.open(newline="", encoding="utf-8") as fh:
        if manifest.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            records: Iterator[tuple[int, dict[str, str]]] = (
                (n, _json_row(text, n)) for n, text in enumerate(fh, start=1) if text.strip()
            )
        else:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ManifestError(f"{manifest}: missing column(s) {', '.join(missing)}")
            records = ((n, row) for n, row in enumerate(reader, start=2))
        for line, raw in records:
            yield _row(base, line, raw)


def _json_row(text: str, line: int) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"_problem": f"line {line} is not JSON"}
    return value if isinstance(value, dict) else {"_problem": f"line {line} is not an object"}


def _row(base: Path, line: int, raw: dict[str, str]) -> ManifestRow:
    path = base / str(raw.get("path") or "")
    if "_problem" in raw:
        return ManifestRow(line, path, None, raw["_problem"])
    missing = [c for c in REQUIRED if not raw.get(c)]
    if missing:
        return ManifestRow(line, path, None, f"missing {', '.join(missing)}")
    text = str(raw["collected_at"]).strip()
    try:
        collected = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return ManifestRow(line, path, None, "collected_at is not an ISO 8601 date-time")
    if collected.tzinfo is None:
        # A date is its midnight UTC; a time of day without a zone would be a guess.
        if len(text) > len("YYYY-MM-DD"):
            return ManifestRow(
                line, path, None, "collected_at has no offset: add an offset such as Z or +02:00"
            )
        collected = collected.replace(tzinfo=UTC)
    return ManifestRow(
        line,
        path,
        Provenance(
            source_url=str(raw["source_url"]),
            collected_at=collected,
            collection_basis=str(raw["collection_basis"]),
            subject_ref=raw.get("subject_ref") or None,
        ),
    )


def ingest_manifest(settings: Settings, manifest: Path, *, batch_size: int = 16) -> IngestSummary:
    """Enrol every row of ``manifest``; returns what was enrolled, skipped and rejected.

    Raises ManifestError, PackError, ConfigError, IndexUnavailable.
    """
    rows = list(read_manifest(manifest))
    keys = loaded_signing_keys(settings)
    engines = build_engines(
        settings, model_pack=load_pack(settings.models_dir / settings.model_pack)
    )
    engine = make_engine(settings.database_url)
    units = Units(make_session_factory(engine), keys, datetime.now(UTC), wiring.hooks())
    actor = Actor(kind="operator", id=getpass.getuser(), agency=None)
    summary = IngestSummary()
    try:
        with tqdm(total=len(rows), unit="photo", desc="ingest", disable=None) as bar:
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                todo = _readable(units, batch, summary)
                prepared = prepare_photos(engines, [data for _, data in todo])
                for (row, _data), result in zip(todo, prepared, strict=True):
                    # A long run: each photo is dated when it is enrolled.
                    _enroll_one(units.at(datetime.now(UTC)), engines, row, result, actor, summary)
                bar.update(len(batch))
    finally:
        engines.index.close()
        engine.dispose()
    return summary


def _readable(
    units: Units, batch: list[ManifestRow], summary: IngestSummary
) -> list[tuple[ManifestRow, bytes]]:
    """The rows of ``batch`` to enrol, with their bytes; the others go to ``summary``."""
    todo: list[tuple[ManifestRow, bytes]] = []
    for row in batch:
        if row.problem or row.provenance is None:
            summary.rejects.append((_label(row), row.problem or "invalid row"))
            continue
        try:
            data = row.path.read_bytes()
        except OSError as exc:
            summary.rejects.append((_label(row), f"cannot read the file ({exc.strerror})"))
            continue
        with units() as work:
            if is_enrolled(work.session, hashlib.sha256(data).hexdigest()):
                summary.skipped += 1
                continue
        todo.append((row, data))
    return todo


def _label(row: ManifestRow) -> str:
    return f"line {row.line} ({row.path.name})"


def _enroll_one(
    units: Units,
    engines: FaceEngines,
    row: ManifestRow,
    result: PreparedPhoto | BiometricsError,
    actor: Actor,
    summary: IngestSummary,
) -> None:
    if isinstance(result, BiometricsError):
        summary.rejects.append((_label(row), str(result)))
        return
    assert row.provenance is not None
    try:
        with units() as work:
            enroll_photo(work, engines, prepared=result, provenance=row.provenance, actor=actor)
    except GovernanceError as exc:
        summary.rejects.append((_label(row), exc.detail))
        return
    summary.enrolled += 1
    summary.faces += len(result.faces)
