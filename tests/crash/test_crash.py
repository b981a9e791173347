"""Crash consistency of the served API: SIGKILL under load, restart, and nothing acknowledged lost.

See ``tests.crash.harness``; ``bench/crash.py`` runs the same trials longer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.crash.harness import run_trials

pytestmark = [
    pytest.mark.crash,
    pytest.mark.slow,
    pytest.mark.models,
    # 30 trials take 6 to 7 minutes on a 2-core machine (each restart costs 5 to 8 s even when
    # idle), which the CI run's 45 minutes cannot hold yet beside the rest of the suite.
    pytest.mark.skipif(
        not os.environ.get("FACEWARDEN_TEST_CRASH"),
        reason="set FACEWARDEN_TEST_CRASH=1 to run the 30 crash trials (about 7 minutes), "
        "or run bench/crash.py",
    ),
]

TRIALS = 30


def test_kills_under_load_lose_nothing_acknowledged(tmp_path: Path, shared_dir: Path) -> None:
    started = time.monotonic()
    report = run_trials(
        tmp_path,
        shared_dir,
        trials=TRIALS,
        database_url=os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or None,
        traffic_seconds=(0.3, 1.2),
    )
    table = "\n".join(f"{what:<40} {value}" for what, value in report.rows())
    print(f"\n{table}\nin {time.monotonic() - started:.0f} s")
    assert report.trials == TRIALS
    assert report.violations == [], "\n".join(report.violations)
    # The load was real: searches and enrolments were acknowledged and then checked.
    assert report.acknowledged["search"] >= TRIALS // 2, table
    assert report.acknowledged["enrolment"] >= TRIALS // 4, table
    assert set(report.kills) == {"worker", "server"}, table
