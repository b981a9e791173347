"""Bulk enrolment from a manifest (CSV or JSON lines): the CLI's files, the console's uploads.

Rows name a file (relative to the manifest, or among the uploaded files), its source URL, when
and on what basis it was collected. Reading and checking the rows is done here; enrolling them
is ``governance.gallery.batches.enroll_batch``: faces of a batch are embedded together, each
photo is then enrolled in its own unit of work, so one bad row never loses the others, and a
rerun skips what is already enrolled.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import marshmallow as ma
from tqdm import tqdm

from api.context import build_engines, loaded_signing_keys
from api.schemas.fields import Text
from api.settings import Settings
from biometrics.packs import load_pack
from governance import wiring
from governance.core.db import make_engine, make_session_factory
from governance.core.work import Units
from governance.gallery.batches import BatchItem, BatchSummary, enroll_batch
from governance.gallery.photos import Provenance
from ledger.entry import Actor

__all__ = [
    "UPLOAD_COLUMNS",
    "ManifestError",
    "ManifestRow",
    "batch_of_upload",
    "ingest_manifest",
    "parse_manifest",
    "read_manifest",
]

_PROVENANCE = ("source_url", "collected_at", "collection_basis")
UPLOAD_COLUMNS = ("file", *_PROVENANCE)
"""The required columns of an uploaded manifest: ``file`` is an uploaded file's name."""


MAX_SUBJECT_REF = 128
"""As the API's enrolment form allows (the column's width)."""
_SUBJECT_REF = Text(max_length=MAX_SUBJECT_REF)
"""The API's own field: NFC, trimmed, no control, invisible or bidirectional characters."""


class ManifestError(ValueError):
    """The manifest itself cannot be read (not a bad row: those are rejected one by one)."""


@dataclass(frozen=True, slots=True)
class ManifestRow:
    line: int
    file: str
    """The file as the row names it (a path for the CLI, a file name for an upload)."""
    provenance: Provenance | None
    problem: str | None = None

    @property
    def name(self) -> str:
        """The file's name without its directories."""
        return _base_name(self.file)

    @property
    def label(self) -> str:
        """How people find the row: its line in the manifest and its file's name."""
        return f"line {self.line} ({self.name})" if self.name else f"line {self.line}"


def _base_name(file: str) -> str:
    return re.split(r"[/\\]", file.strip())[-1]


def read_manifest(manifest: Path) -> Iterator[ManifestRow]:
    """The rows of a CSV (with a header) or JSON-lines manifest whose ``path`` column names
    each file relative to the manifest.

    Raises ManifestError when the file lacks a required column.
    """
    json_lines = manifest.suffix.lower() in (".jsonl", ".ndjson", ".json")
    with manifest.open(newline="", encoding="utf-8-sig") as fh:
        try:
            yield from parse_manifest(fh, json_lines=json_lines, file_column="path")
        except ManifestError as exc:
            raise ManifestError(f"{manifest}: {exc}") from exc


def parse_manifest(
    lines: Iterable[str], *, json_lines: bool = False, file_column: str = "path"
) -> Iterator[ManifestRow]:
    """The rows of a manifest's text: CSV with a header line, or one JSON object a line.

    Each row names its file in ``file_column``; a row with a missing field or a date that is
    not ISO 8601 comes with its problem. Raises ManifestError when a CSV lacks a required
    column or is not CSV at all.
    """
    required = (file_column, *_PROVENANCE)
    if json_lines:
        for n, text in enumerate(lines, start=1):
            if text.strip():
                yield _row(file_column, required, n, _json_row(text, n))
        return
    reader = csv.DictReader(lines)
    try:
        fields = reader.fieldnames or []
        missing = [c for c in required if c not in fields]
        if missing:
            raise ManifestError(
                f"missing column(s) {', '.join(missing)} (its first line must name the columns)"
            )
        for n, raw in enumerate(reader, start=2):
            yield _row(file_column, required, n, raw)
    except csv.Error as exc:
        raise ManifestError(f"line {reader.line_num} is not CSV ({exc})") from exc


def _json_row(text: str, line: int) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"_problem": f"line {line} is not JSON"}
    return value if isinstance(value, dict) else {"_problem": f"line {line} is not an object"}


def _row(
    file_column: str, required: tuple[str, ...], line: int, raw: dict[str, str]
) -> ManifestRow:
    file = str(raw.get(file_column) or "").strip()
    if "_problem" in raw:
        return ManifestRow(line, file, None, raw["_problem"])
    missing = [c for c in required if not str(raw.get(c) or "").strip()]
    if missing:
        return ManifestRow(line, file, None, f"missing {', '.join(missing)}")
    subject_ref: str | None = None
    if str(raw.get("subject_ref") or "").strip():
        try:
            subject_ref = _SUBJECT_REF.deserialize(str(raw["subject_ref"]))
        except ma.ValidationError as exc:
            return ManifestRow(line, file, None, f"subject_ref: {_said(exc.messages)}")
    text = str(raw["collected_at"]).strip()
    try:
        collected = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return ManifestRow(
            line,
            file,
            None,
            "collected_at is not an ISO 8601 date-time (write e.g. 2025-06-01 or "
            "2025-06-01T10:00:00Z)",
        )
    if collected.tzinfo is None:
        # A date is its midnight UTC; a time of day without a zone would be a guess.
        if len(text) > len("YYYY-MM-DD"):
            return ManifestRow(
                line, file, None, "collected_at has no offset: add an offset such as Z or +02:00"
            )
        collected = collected.replace(tzinfo=UTC)
    return ManifestRow(
        line,
        file,
        Provenance(
            source_url=str(raw["source_url"]).strip(),
            collected_at=collected,
            collection_basis=str(raw["collection_basis"]).strip(),
            subject_ref=subject_ref,
        ),
    )


def _said(messages: object) -> str:
    """marshmallow's messages of one field, as one sentence."""
    if isinstance(messages, list | tuple):
        return " ".join(map(str, messages))
    return str(messages)


def batch_of_upload(
    manifest: bytes, uploads: Sequence[tuple[str, bytes]], *, max_rows: int | None = None
) -> list[BatchItem]:
    """The items of an uploaded batch: each row of the CSV ``manifest`` with the uploaded file
    (name, bytes) its ``file`` column names, then each uploaded file no row names (a reject).

    Raises ManifestError when the manifest is not UTF-8 CSV, lacks a required column, lists
    no photo or (with ``max_rows``) more than ``max_rows`` photos.
    """
    try:
        text = manifest.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            "the manifest is not UTF-8 text (save it from the spreadsheet as CSV UTF-8)"
        ) from exc
    parsed = parse_manifest(io.StringIO(text, newline=""), file_column="file")
    # Read no further than one row past the limit: the rest is never parsed nor held.
    rows = list(parsed if max_rows is None else islice(parsed, max_rows + 1))
    if max_rows is not None and len(rows) > max_rows:
        raise ManifestError(
            f"it has more than {max_rows} lines of photos, and a batch holds at most "
            f"{max_rows} photos: split it into several batches"
        )
    if not rows:
        raise ManifestError("the manifest lists no photo: add one line for each uploaded file")
    files: dict[str, list[bytes]] = {}
    for name, data in uploads:
        files.setdefault(_base_name(name), []).append(data)
    named: dict[str, int] = {}  # file name -> the line that named it first
    items = [_item_of_upload(row, files, named) for row in rows]
    for name, copies in files.items():
        if name not in named:
            reason = "not in the manifest: add a line for it, or leave it out of the batch"
            items.extend(BatchItem(name, problem=reason) for _ in copies)
    return items


def _item_of_upload(
    row: ManifestRow, files: dict[str, list[bytes]], named: dict[str, int]
) -> BatchItem:
    if row.name in named:
        return BatchItem(row.label, problem=f"{row.name} is already on line {named[row.name]}")
    if row.name:
        named[row.name] = row.line  # its file is accounted for, even if the row is refused
    if row.problem or row.provenance is None:
        return BatchItem(row.label, problem=row.problem or "invalid row")
    copies = files.get(row.name, [])
    if not copies:
        return BatchItem(row.label, problem=f"no uploaded file is named {row.name}")
    if len(copies) > 1:
        return BatchItem(
            row.label, problem=f"{len(copies)} uploaded files are named {row.name}: rename them"
        )
    return BatchItem(row.label, data=copies[0], provenance=row.provenance)


def _item_of_file(base: Path, row: ManifestRow) -> BatchItem:
    if row.problem or row.provenance is None:
        return BatchItem(row.label, problem=row.problem or "invalid row")
    try:
        data = (base / row.file).read_bytes()
    except OSError as exc:
        return BatchItem(row.label, problem=f"cannot read the file ({exc.strerror})")
    return BatchItem(row.label, data=data, provenance=row.provenance)


def ingest_manifest(settings: Settings, manifest: Path, *, batch_size: int = 16) -> BatchSummary:
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
    summary = BatchSummary()
    try:
        with tqdm(total=len(rows), unit="photo", desc="ingest", disable=None) as bar:
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                # Only one batch's bytes are held at a time.
                items = [_item_of_file(manifest.parent, row) for row in batch]
                summary += enroll_batch(
                    units,
                    engines,
                    items,
                    actor=actor,
                    clock=lambda: datetime.now(UTC),  # a long run: each photo dated when enrolled
                    chunk=batch_size,
                )
                bar.update(len(batch))
    finally:
        engines.index.close()
        engine.dispose()
    return summary
