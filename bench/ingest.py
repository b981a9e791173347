"""Bulk-ingest throughput of the dev set, next to the raw decode + detect + embed cost.

Runs `facewarden gallery ingest`'s code (ingest_manifest: resumable, batched, one unit of work
per photo with its ledger entry, blob writes and index insert) on a throw-away data directory,
and in the same run the pipeline alone over the same photos. Prints photos/s and the ratio.

    python bench/ingest.py --shared-dir ../shared [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.bootstrap import initialize  # noqa: E402
from api.ingest import ingest_manifest  # noqa: E402
from api.settings import Settings  # noqa: E402
from biometrics.images import decode_image  # noqa: E402
from biometrics.packs import build_pipeline, install_pack, load_pack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-dir", default=str(REPO.parent / "shared"))
    parser.add_argument(
        "--models-dir", default=str(Path.home() / ".cache" / "facewarden-test" / "models")
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    dev = Path(args.shared_dir) / "faces" / "dev"
    with (dev / "manifest.csv").open(newline="") as fh:
        photos = [dev / row["file"] for row in csv.DictReader(fh)]
    models = Path(args.models_dir)
    if not (models / "starter" / "pack.json").is_file():
        install_pack("starter", models)
    pipeline = build_pipeline(load_pack(models / "starter"))

    ingest_rates, raw_rates = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for path in photos:
            pipeline.analyze(decode_image(path.read_bytes()).pixels)
        raw_rates.append(len(photos) / (time.perf_counter() - started))

        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings.from_env(
                {"FACEWARDEN_DATA_DIR": f"{tmp}/var", "FACEWARDEN_MODELS_DIR": str(models)}
            )
            initialize(settings, tls=False, progress=lambda _m: None)
            manifest = Path(tmp) / "manifest.csv"
            with manifest.open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["path", "source_url", "collected_at", "collection_basis"])
                for path in photos:
                    writer.writerow(
                        [
                            path,
                            f"https://dev.example.org/{path.name}",
                            "2025-01-01T00:00:00Z",
                            "consent",
                        ]
                    )
            started = time.perf_counter()
            summary = ingest_manifest(settings, manifest, batch_size=args.batch_size)
            ingest_rates.append(summary.enrolled / (time.perf_counter() - started))

    ingest, raw = statistics.median(ingest_rates), statistics.median(raw_rates)
    print(
        f"\nIngest of the dev set ({len(photos)} photos, {summary.enrolled} enrolled, "
        f"{len(summary.rejects)} rejected), median of {args.rounds} rounds, starter pack"
    )
    print(f"{'':<34} {'photos/s':>9}")
    print(f"{'raw decode + detect + embed':<34} {raw:>9.2f}")
    print(f"{'gallery ingest (DB, ledger, files)':<34} {ingest:>9.2f}")
    print(f"{'ingest time / raw time':<34} {raw / ingest:>9.2f}")


if __name__ == "__main__":
    main()
