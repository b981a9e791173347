"""What witnesses cost a search, and how long a search waits to be covered by a cosigned checkpoint.

Two real witness processes (``facewarden-verify witness serve``), quorum 2, rounds every
``FACEWARDEN_WITNESS_INTERVAL_MS`` (1,000 ms, the default), on the embedded default (SQLite,
milvus-lite, the starter pack), searches run in-process through the Flask test client:

1. **Latency.** ``--rounds`` rounds of two phases, one without witnesses and one with both,
   in alternating order, each in a fresh process that runs ``--searches`` searches after five
   warm-up ones. Prints each phase's median and, per configuration, the median of its phases'
   medians and the ratio witnessed / none (the issue's bound: p50 within 2%).
2. **Cosigning delay.** Searches at ``--rate`` per second for ``--duration`` seconds, from
   two threads, with the witnesses on; a poller reads the newest quorum-cosigned checkpoint
   every 20 ms. The delay of a search is the time from its answer until a cosigned checkpoint
   covers its entry. Prints p50, p99 and max.

    python bench/witness.py [--searches 150] [--rounds 3] [--rate 10] [--duration 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flask import Flask  # noqa: E402

from ledger.cosigned import latest_cosigned  # noqa: E402
from tests.api.bases import approved, make_team  # noqa: E402
from tests.api.faces import dev_photos, enroll, variant  # noqa: E402
from tests.api.helpers import make_staff, runtime_of  # noqa: E402
from tests.api.test_searches import search  # noqa: E402
from tests.conftest import shared_path  # noqa: E402
from tests.outages.test_database import embedded_app  # noqa: E402
from tests.witnesses import keygen, start_witness  # noqa: E402

PEOPLE = ("Orlando_Bloom", "Ryan_Reynolds", "Sally_Field", "Samuel_L_Jackson", "Karl_Urban")


PER_BASIS = 50  # the most searches one basis may allow


def _setup(home: Path, searches: int) -> dict[str, Any]:
    """A gallery of a few people, a team, and bases with room for ``searches`` searches."""
    app = embedded_app(home, log_level="WARNING")
    client = app.test_client()
    team = make_team(app)
    curator = make_staff(client, team.admin, "curator")
    photos = dev_photos(shared_path())
    probes = []
    for name in PEOPLE:
        for i, path in enumerate(photos[name][:3]):
            if i < 2:
                url = f"https://people.example.org/{name}/{i}.jpg"
                assert enroll(client, curator, variant(path), url=url).status_code == 201
            else:
                probes.append(str(path))
    bases = [
        approved(client, app, team, max_searches=PER_BASIS)["id"]
        for _ in range(searches // PER_BASIS + 1)
    ]
    return {
        "token": team.inv.token,
        "bases": bases,
        "probes": probes,
        "log_key": runtime_of(app).signer.verifier_key,
    }


def _app(home: Path, setup: dict[str, Any], witnessed: bool) -> Flask:
    if not witnessed:
        return embedded_app(home, log_level="WARNING")
    pairs = ", ".join(f"{w['vkey']} {w['url']}" for w in setup["witnesses"])
    return embedded_app(home, witnesses=pairs, witness_quorum="2", log_level="WARNING")


def _one_search(app: Flask, setup: dict[str, Any], n: int) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {setup['token']}"}
    probe = Path(setup["probes"][n % len(setup["probes"])]).read_bytes()
    started = time.perf_counter()
    basis = setup["bases"][n // PER_BASIS]
    response = search(app.test_client(), _Bearer(headers), basis, probe)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.get_json()
    return elapsed, int(response.get_json()["receipt"]["seq"])


class _Bearer:
    """What ``tests.api.test_searches.search`` reads of an agent: its headers."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def _phase(home: Path, mode: str, searches: int, first: int) -> None:
    setup = json.loads((home / "setup.json").read_text())
    app = _app(home, setup, witnessed=mode == "witnessed")
    for n in range(first, first + 5):
        _one_search(app, setup, n)
    times = [_one_search(app, setup, n)[0] for n in range(first + 5, first + 5 + searches)]
    print(json.dumps({"mode": mode, "times": times}))


def _delay(home: Path, rate: float, duration: float, first: int) -> None:
    setup = json.loads((home / "setup.json").read_text())
    app = _app(home, setup, witnessed=True)
    names = [w["name"] for w in setup["witnesses"]]
    covered: list[tuple[float, int]] = []  # (when, size) each time the cosigned size grew
    done = threading.Event()

    def poll() -> None:
        last = -1
        while not done.is_set():
            with runtime_of(app).sessions() as session:
                found = latest_cosigned(session, names, 2)
            if found is not None and found.size > last:
                last = found.size
                covered.append((time.monotonic(), found.size))
            time.sleep(0.02)

    answers: list[tuple[float, int]] = []  # (when answered, seq)
    lock = threading.Lock()
    started = time.monotonic()

    def client(offset: int) -> None:
        n = offset
        while True:
            due = started + n / rate
            if due - started >= duration:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            _, seq = _one_search(app, setup, first + n)
            with lock:
                answers.append((time.monotonic(), seq))
            n += 2

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    achieved = len(answers) / (time.monotonic() - started)
    last_seq = max(seq for _, seq in answers)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(size > last_seq for _, size in covered):
        time.sleep(0.05)
    done.set()
    poller.join()
    delays = []
    for when, seq in answers:
        cosigned_at = next((t for t, size in covered if size > seq), None)
        if cosigned_at is not None:
            delays.append(max(0.0, cosigned_at - when))
    print(
        json.dumps(
            {"achieved": achieved, "delays": delays, "uncovered": len(answers) - len(delays)}
        )
    )


def _run(home: Path, *args: str) -> dict[str, Any]:
    ran = subprocess.run(
        [sys.executable, __file__, "--home", str(home), *args],
        check=False,
        capture_output=True,
        text=True,
    )
    if ran.returncode != 0:
        raise SystemExit(f"phase {args} failed:\n{ran.stderr[-3000:]}")
    out = ran.stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--searches", type=int, default=150, help="per phase, after warm-up")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10.0, help="searches per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds at --rate")
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    phases = ("setup", "none", "witnessed", "delay")
    parser.add_argument("--phase", choices=phases, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "setup":
        return print(json.dumps(_setup(args.home, args.searches)))
    if args.phase == "delay":
        return _delay(args.home, args.rate, args.duration, args.first)
    if args.phase:
        return _phase(args.home, args.phase, args.searches, args.first)

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        print("setting up: a gallery, a team and a basis; two witnesses", flush=True)
        per_phase = args.searches + 5
        delay_first = 2 * args.rounds * per_phase
        needed = delay_first + int(args.rate * args.duration) + 2
        # In a process of its own, as every phase: the embedded index is one process's file.
        setup = _run(home, "--phase", "setup", "--searches", str(needed))
        running = []
        for n in (1, 2):
            name = f"bench.example/w{n}"
            keygen(home / f"w{n}" / "key.pem", name)
            w = start_witness(home / f"w{n}" / "key.pem", home / f"w{n}", [setup["log_key"]], name)
            running.append(w)
        setup["witnesses"] = [{"name": w.name, "vkey": w.vkey, "url": w.prefix} for w in running]
        (home / "setup.json").write_text(json.dumps(setup))
        try:
            medians: dict[str, list[float]] = {"none": [], "witnessed": []}
            for r in range(args.rounds):
                order = ("none", "witnessed") if r % 2 == 0 else ("witnessed", "none")
                for mode in order:
                    first = (2 * r + order.index(mode)) * per_phase
                    times = _run(
                        home,
                        "--phase",
                        mode,
                        "--searches",
                        str(args.searches),
                        "--first",
                        str(first),
                    )["times"]
                    medians[mode].append(statistics.median(times))
                    print(
                        f"round {r + 1} {mode:<10} p50 {medians[mode][-1] * 1000:7.1f} ms "
                        f"p95 {_pct(times, 0.95) * 1000:7.1f} ms ({len(times)} searches)",
                        flush=True,
                    )
            none, witnessed = (statistics.median(medians[m]) for m in ("none", "witnessed"))
            print(
                f"search p50, median of {args.rounds} phases: none {none * 1000:.1f} ms, "
                f"2 witnesses {witnessed * 1000:.1f} ms, ratio {witnessed / none:.3f}"
            )
            print(
                f"cosigning delay at {args.rate:g} searches/s for {args.duration:g} s:", flush=True
            )
            delay = _run(
                home,
                *("--phase", "delay", "--rate", str(args.rate), "--duration", str(args.duration)),
                *("--first", str(delay_first)),
            )
            d = delay["delays"]
            print(
                f"  achieved {delay['achieved']:.2f} searches/s; {len(d)} covered, "
                f"{delay['uncovered']} not within 30 s; delay p50 {statistics.median(d):.2f} s, "
                f"p99 {_pct(d, 0.99):.2f} s, max {max(d):.2f} s "
                "(witness round every 1.00 s)"
            )
        finally:
            for w in running:
                w.stop()


if __name__ == "__main__":
    main()
