"""Where a governed search's time goes, phase by phase, on a deployment kept by bench/search.py.

Runs the app in this process (Flask's test client: no TLS, no HTTP server) against the deployment
``bench/search.py --keep DIR`` built, timing each phase of ``POST /v1/searches`` by wrapping
the functions the view calls. Prints the median of each phase and of the whole request, so the
governed work (authentication, the basis checks, the search's unit of work with its signed
ledger entry and durable commit, the HTTP framework) can be read next to the biometric work
(decode + detect + embed) and the vector-index search.

    python bench/search.py --keep /tmp/fw-bench --clients 1      # once, to build
    python bench/search_phases.py --keep /tmp/fw-bench [--requests 60]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from search import split  # noqa: E402

import api.auth  # noqa: E402
import api.resources.searches as view  # noqa: E402
import governance.search.running as running  # noqa: E402
from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402

Timings = dict[str, list[float]]


def timed(timings: Timings, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timings.setdefault(label, []).append(time.perf_counter() - started)

    return wrapper


class UnitsTimer:
    """Stands in for the request's units of work: the search flow's are timed in order (basis
    checks, then the search), commit included; ``reset`` before each request."""

    def __init__(self, timings: Timings, labels: list[str]) -> None:
        self.timings, self.labels = timings, labels
        self.calls: Iterator[str] = iter(())
        self.units: Any = None

    def reset(self) -> None:
        self.calls = iter(self.labels)

    def bind(self, units: Any) -> UnitsTimer:
        """Time the units of work ``units`` opens (the request's)."""
        self.units = units
        return self

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        label = next(self.calls, None)
        started = time.perf_counter()
        with self.units() as work:
            yield work
        if label is not None:
            self.timings.setdefault(label, []).append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", required=True, metavar="DIR", help="bench/search.py --keep DIR")
    parser.add_argument("--shared-dir", default=str(REPO.parent / "shared"))
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()

    state = Path(args.keep) / "bench-state.json"
    if not state.is_file():
        sys.exit(f"no kept deployment in {args.keep}: run bench/search.py --keep {args.keep} first")
    saved = json.loads(state.read_text())
    app = create_app(Settings.from_env(saved["env"]))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {saved['key']}"}
    _, paths = split(Path(args.shared_dir))
    probes = [p.read_bytes() for p in paths]

    def search(n: int) -> int:
        response = client.post(
            "/v1/searches",
            data={
                "legal_basis_id": saved["basis"],
                "purpose": "bench",
                "top_k": "20",
                "image": (io.BytesIO(probes[n % len(probes)]), "probe.jpg"),
            },
            headers=headers,
            content_type="multipart/form-data",
        )
        if response.status_code not in (201, 422):
            raise RuntimeError(f"{response.status_code}: {response.get_data()[:300]!r}")
        return response.status_code

    for n in range(5):  # models and index open on first use
        search(n)

    timings: Timings = {}
    api.auth.authenticate_request = timed(  # type: ignore[assignment]
        timings, "authenticate (own unit of work)", api.auth.authenticate_request
    )
    running.prepare_probe = timed(timings, "decode + detect + embed", running.prepare_probe)
    running.find_candidates = timed(timings, "vector-index search", running.find_candidates)
    units = UnitsTimer(
        timings,
        ["basis settle + check (unit of work)", "record the search (unit of work + commit)"],
    )
    request_units = view.units
    view.units = lambda: units.bind(request_units())  # type: ignore[assignment]
    total: list[float] = []
    for n in range(args.requests):
        units.reset()
        started = time.perf_counter()
        search(n)
        total.append(time.perf_counter() - started)

    whole = statistics.median(total) * 1000
    print(f"POST /v1/searches in-process, {args.requests} requests, medians:")
    named = 0.0
    for label, values in timings.items():
        ms = statistics.median(values) * 1000
        named += ms
        print(f"  {label:<44} {ms:7.2f} ms")
    rest = "framework: multipart, schemas, response, test client"
    print(f"  {rest:<44} {whole - named:7.2f} ms (the rest)")
    print(f"  {'whole request':<44} {whole:7.2f} ms")


if __name__ == "__main__":
    main()
