"""A witness goes away under a running service: nothing is refused, the published checkpoint
waits at the last one a quorum cosigned, and it catches up by itself once the witness is back.

Three witnesses, quorum 2: two run and the third is down throughout, so stopping one more
leaves the log without its quorum.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask import Flask

from ledger.checkpoint import parse_checkpoint, split_note
from ledger.cosignature import parse_cosigner_key, verify_cosignatures
from tests.api.helpers import ledger_size, registration_body
from tests.api.test_witnessing import Witnessed, witnessed_app
from tests.outages.load import Load

pytestmark = pytest.mark.slow

INTERVAL_MS = 200
WITHIN = 10  # no timeout is involved: a margin for a busy 2-core machine
RECOVERY_SECONDS = 10


def _published(app: Flask, witnessed: Witnessed) -> tuple[int, int]:
    """The published checkpoint's size and how many of the running witnesses cosigned it."""
    note = app.test_client().get("/v1/ledger/checkpoint").get_data(as_text=True)
    keys = [parse_cosigner_key(w.vkey) for w in witnessed.witnesses]
    return parse_checkpoint(split_note(note).text).size, len(verify_cosignatures(note, keys))


def _caught_up(app: Flask, witnessed: Witnessed, timeout: float) -> float:
    """Wait until the published checkpoint is cosigned by both and covers the log as it was
    when the wait began; returns how long that took."""
    started, target = time.monotonic(), ledger_size(app)
    while True:
        size, cosigned = _published(app, witnessed)
        if size >= target and cosigned == 2:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, (size, cosigned, target)
        time.sleep(0.05)


def test_a_witness_outage_refuses_nothing_and_the_log_catches_up(tmp_path: Path) -> None:
    with witnessed_app(tmp_path, interval_ms=INTERVAL_MS) as witnessed:
        app = witnessed.app
        calls = {
            "register": lambda c: c.post("/v1/registrations", json=registration_body()),
            "checkpoint": lambda c: c.get("/v1/ledger/checkpoint"),
        }
        assert (
            app.test_client().post("/v1/registrations", json=registration_body()).status_code == 202
        )
        with Load(app, calls, parts=set(), within=WITHIN) as load:
            _caught_up(app, witnessed, RECOVERY_SECONDS)
            witnessed.witnesses[0].stop()
            held, _ = _published(app, witnessed)
            grown = ledger_size(app)
            time.sleep(1.5)  # several rounds without a quorum, while acts go on
            assert ledger_size(app) > grown  # the acts went on
            assert _published(app, witnessed)[0] <= grown  # and the published one waited
            witnessed.witnesses[0] = witnessed.witnesses[0].restart()
            recovered = _caught_up(app, witnessed, RECOVERY_SECONDS)
        answers = load.check(refusals=False)
    print(
        f"witness stopped: 0 of {len(answers)} answers refused; the published checkpoint held "
        f"at {held}, then covered the log {recovered:.2f} s after the witness returned"
    )
