"""Hundreds of slow clients, holding TLS connections without a key, do not hold up anyone else."""

from __future__ import annotations

import time

import pytest

from api.settings import Settings
from tests.api.served import pinned_context, served, with_certificate
from tests.api.slow_clients import HALF_LINE, SLOW_BODY, held, hold, latency, release

pytestmark = pytest.mark.slow

HEADS = 200  # connections that send half a request line
BODIES = 50  # connections that send a head and one byte of a 100 kB body
SILENT = 50  # TCP connections that never start TLS
BOUND = 1.0  # seconds: a normal client's median latency while they are held
HEADER_SECONDS = 10  # the default FACEWARDEN_REQUEST_HEADER_TIMEOUT_SECONDS
BODY_SECONDS = 12


def test_slow_clients_are_held_cheaply_then_cut(app: object, settings: Settings) -> None:
    tls = with_certificate(settings)
    context = pinned_context(tls)
    env = {"FACEWARDEN_REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_SECONDS)}
    with served(tls, env=env) as port:
        url = f"https://127.0.0.1:{port}/healthz"
        started = time.monotonic()
        heads = hold(port, context, HEADS, HALF_LINE)
        bodies = hold(port, context, BODIES, SLOW_BODY)
        silent = hold(port, None, SILENT, b"")
        try:
            opened = time.monotonic() - started
            assert opened < HEADER_SECONDS / 2, f"opening the slow clients took {opened:.1f} s"
            assert held(heads)[0] == HEADS
            assert held(bodies)[0] == BODIES
            assert held(silent)[0] == SILENT
            assert latency(url, context) < BOUND

            # (2) the heads are cut at their deadline, counted from each one's handshake, and
            # a handshake has the same deadline
            time.sleep(max(0.0, started + HEADER_SECONDS + 2 - time.monotonic()))
            assert held(heads)[0] == 0
            assert held(silent)[0] == 0
            assert held(bodies)[0] == BODIES  # a body has a deadline of its own

            # (3) and the bodies at theirs, with a 408 problem
            time.sleep(max(0.0, started + BODY_SECONDS + 2 - time.monotonic()))
            still, said = held(bodies)
            assert still == 0
            assert all(reply.startswith(b"HTTP/1.1 408") for reply in said), said[:1]
            assert latency(url, context) < BOUND
        finally:
            release(heads + bodies + silent)
