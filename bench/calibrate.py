"""The calibrated match threshold of each pack on a labelled set, at a target FAR.

Every photo of the set's manifest.csv, less those its MISLABELLED.txt lists, goes through
`decode_image` and the pack's pipeline (`biometrics.evaluation.calibrate_set`, the code of
`facewarden models calibrate`); all pairs are scored and the threshold that lets
through at most the target share of impostor pairs is rounded up to 0.01. The "pack.json"
line is what the pack records.

    python bench/calibrate.py [--packs starter,ci-pack] [--set DIR] [--far 1e-3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faces import bench_pack  # noqa: E402  (bench/faces.py, beside this script)

from biometrics.evaluation import calibrate_set, read_excluded, read_manifest  # noqa: E402
from biometrics.packs import build_pipeline  # noqa: E402


def main() -> None:
    shared = Path(os.environ.get("FACEWARDEN_TEST_SHARED_DIR", REPO.parent / "shared"))
    cache = Path.home() / ".cache" / "facewarden-test" / "models"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", default="starter,ci-pack")
    parser.add_argument("--set", type=Path, default=shared / "faces" / "dev")
    parser.add_argument("--far", type=float, default=1e-3)
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("FACEWARDEN_TEST_MODELS_DIR", cache))
    )
    args = parser.parse_args()

    photos = read_manifest(args.set)
    kept = [p for p in photos if p.path.name not in read_excluded(args.set)]
    print(
        f"calibration: {len(kept)} of {len(photos)} photos of {args.set.name} "
        f"({len(photos) - len(kept)} listed in MISLABELLED.txt excluded), target FAR {args.far:g}"
    )
    for name in args.packs.split(","):
        pipeline = build_pipeline(bench_pack(name, args.models_dir, shared))
        result = calibrate_set(pipeline, args.set, target_far=args.far)
        print(result.table(name))
        print(f"  pack.json: {json.dumps(result.manifest_fields())}")


if __name__ == "__main__":
    main()
