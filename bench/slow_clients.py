"""A normal client's latency with no slow clients, then with hundreds of them held, in one run.

Starts `facewarden serve` (TLS, 1 worker x 4 threads, default deadlines) on loopback over a fresh
data directory, measures the median of --requests GETs of /healthz (a new TLS connection each),
then opens --heads connections that send half a request line, --bodies that send a head and
one byte of a 100 kB body and --silent that never start TLS, and measures again while they are
held.
    python bench/slow_clients.py [--heads 400] [--bodies 100] [--silent 100] [--requests 21]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.settings import Settings
from tests.api.served import pinned_context, served
from tests.api.slow_clients import HALF_LINE, SLOW_BODY, held, hold, latency, release


def main() -> None:
    """Run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heads", type=int, default=400)
    parser.add_argument("--bodies", type=int, default=100)
    parser.add_argument("--silent", type=int, default=100)
    parser.add_argument("--requests", type=int, default=21)
    args = parser.parse_args()
    models = os.environ.get("FACEWARDEN_TEST_MODELS_DIR") or str(
        Path.home() / ".cache" / "facewarden-test" / "models"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FACEWARDEN_DATA_DIR": f"{tmp}/var", "FACEWARDEN_MODELS_DIR": models}
        subprocess.run(
            [sys.executable, "-m", "api.cli", "init"], env=env, check=True, capture_output=True
        )
        settings = Settings.from_env(env)
        context = pinned_context(settings)
        rows = []
        with served(settings) as port:
            url = f"https://127.0.0.1:{port}/healthz"
            latency(url, context, 3)  # warm up: the first requests pay for imports and caches
            rows.append(("none", 0, latency(url, context, args.requests)))
            started = time.monotonic()
            conns = hold(port, context, args.heads, HALF_LINE)
            conns += hold(port, context, args.bodies, SLOW_BODY)
            conns += hold(port, None, args.silent, b"")
            opened = time.monotonic() - started
            still = held(conns)[0]
            rows.append(
                (
                    f"{args.heads} heads, {args.bodies} bodies, {args.silent} silent",
                    still,
                    latency(url, context, args.requests),
                )
            )
            release(conns)
    print(f"facewarden serve, TLS, 1 worker x 4 threads; {args.requests} requests per row")
    print(f"(slow clients opened in {opened:.1f} s, inside the 10 s header deadline)\n")
    print(f"{'slow clients':<40} {'held open':>10} {'median latency':>16}")
    for label, count, seconds in rows:
        print(f"{label:<40} {count:>10} {seconds * 1000:>13.1f} ms")


if __name__ == "__main__":
    main()
