"""Crash consistency under load, for longer than CI: the trials of ``tests/crash/harness.py``.

Each trial drives searches, enrolments, reviews and legal-basis decisions against a real
``facewarden serve --http --workers 2``, SIGKILLs one worker or the whole process group at a
random moment, serves again, waits for /readyz and checks the receipts, the gallery, the
doctor, the bases' counts and the ledger. Prints the acts, the violations (0 expected) and the
recovery times next to a clean restart's (SIGTERM, no load), measured first.

    python bench/crash.py [--trials 200] [--database-url postgresql+psycopg://... | --deploy]
                          [--seed N] [--full-every 10]

``--deploy`` runs them against a whole ``deploy/run`` deployment (nginx, PostgreSQL under the
restricted role, the Milvus server, Redis, S3), killing its ``serve``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.crash.harness import run_trials  # noqa: E402  (the repository, put on the path)


def main() -> int:
    """Run the trials, print the table; exit 1 on any violation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--shared-dir", default=str(REPO.parent / "shared"))
    parser.add_argument(
        "--database-url", help="a PostgreSQL server URL (a fresh database is made on it)"
    )
    parser.add_argument(
        "--deploy", action="store_true", help="against a deploy/run production deployment"
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--full-every",
        type=int,
        default=10,
        help="re-read every acknowledged act after each Nth trial (and the last)",
    )
    parser.add_argument("--min-traffic", type=float, default=0.5, help="seconds before a kill")
    parser.add_argument("--max-traffic", type=float, default=2.0)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        report = run_trials(
            Path(tmp),
            Path(args.shared_dir),
            trials=args.trials,
            database_url=args.database_url,
            deploy=args.deploy,
            traffic_seconds=(args.min_traffic, args.max_traffic),
            seed=args.seed,
            baseline=True,
            full_every=args.full_every,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    width = max(len(what) for what, _ in report.rows())
    for what, value in report.rows():
        print(f"{what:<{width}}  {value:>10}")
    print(f"{'wall time s':<{width}}  {time.monotonic() - started:>10.0f}")
    for line in report.violations:
        print(f"VIOLATION {line}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
