"""Load and soak: searches, enrolments, reads and reviews against the production deployment.

Starts ``deploy/run start`` into a temporary directory with the test model pack, as
tests/deploy/test_deployment.py does: nginx (TLS) in front of ``serve --http --workers N``,
PostgreSQL, a Milvus standalone server (HNSW), Redis and the S3 photo store (moto). Through
nginx, with the CA certificate pinned, it provisions an agency as tests/crash/harness.py does
(two supervisors, an investigator, a curator; then ``--users`` investigators and a curator per
four of them) and a gallery of faces/dev photos, and measures the baselines: GET /healthz and
one search at a time from a single client.

Then locust (headless, as a library) runs ``--users`` clients, each with its own investigator
and source address, cycling through 4 searches (each under a legal basis that a second
supervisor approved; a spent pool is refilled by the clients), 4 reads, 2 reviews and 1
enrolment. ``--find-rate`` steps the search rate up (``--step-seconds`` each) to the highest
one whose every kind keeps p95 under 1 s without errors, then runs ``--duration`` seconds at
it, with ``--slow-clients`` slow clients (half request heads, slow bodies, silent TLS) held
against nginx and a probe of GET /healthz on new connections meanwhile. Prints throughput,
p50/p95/p99 per kind, every error (0 required), each process's RSS at the start and end of
the run (growth under 10% required), the CPU each part spent per search, and the database and
index sizes.

    python bench/load.py [--duration 600] [--find-rate | --rate 4 [--warmup 120]] [--users 32]
                         [--workers 2] [--slow-clients 500] [--step-seconds 30] [--factor 1.25]
"""

# ruff: noqa: E402  (gevent patches the standard library before anything else imports it)
from __future__ import annotations

if __name__ == "__main__":
    # locust's clients are greenlets: ssl, socket and threading must be gevent's before any
    # module takes them (locust patches too, on import, but requests would be imported first).
    from gevent import monkey

    monkey.patch_all()

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.deploy.deployment import MISSING, Deployment, deployed
from tests.load.clients import (
    BASIS_SEARCHES,
    MAX_SEARCHES_PER_CLIENT,
    Bases,
    Shared,
    Target,
    approve_basis,
    baseline_searches,
    client_class,
    enrol_gallery,
    provision,
    unrecorded,
)
from tests.load.figures import (
    P95_LIMIT,
    Recorder,
    Sample,
    Step,
    growth,
    kinds_table,
    megabytes,
    milliseconds,
    next_rate,
    percentile,
    period_for,
    sustained_rate,
    table,
)
from tests.load.watch import (
    PARTS,
    Probe,
    SlowClients,
    Usage,
    healthz_latency,
    keepalive_healthz,
    sizes,
    usage,
)

RSS_GROWTH_LIMIT = 10.0  # percent, per process, from the start of the run to its end
GROWTH_FLOOR = 2 * 2**20  # bytes: less is not counted as growth


def step_up(
    shared: Shared, clients: int, *, start: float, factor: float, seconds: float
) -> list[Step]:
    """Raise the search rate step by step until one step does not keep it (``next_rate``)."""
    steps: list[Step] = []
    ceiling = MAX_SEARCHES_PER_CLIENT * clients
    while (rate := next_rate(steps, start=start, factor=factor, ceiling=ceiling)) is not None:
        # Not counted: the change from the last step, which lasts a client's longest wait.
        settle = max(seconds / 5, shared.period)
        shared.period = period_for(rate, clients)
        shared.bases.low = max(BASIS_SEARCHES, math.ceil(rate * 15))
        begun = time.monotonic()
        time.sleep(settle + seconds)
        window = shared.recorder.window(begun + settle)
        measured = time.monotonic() - begun - settle
        _, worst, errors = kinds_table(window, measured)
        searches = sum(1 for s in window if s.kind == "search" and s.ok)
        steps.append(Step(rate, searches / measured, worst, errors))
        last = steps[-1]
        print(
            f"step: {rate:.2f} searches/s offered, {last.achieved:.2f} answered, worst p95 "
            f"{last.p95 * 1000:.0f} ms, {errors} errors: {'kept' if last.kept() else 'not kept'}",
            file=sys.stderr,
            flush=True,
        )
    return steps


@dataclass
class Run:
    """What the measured run saw."""

    rate: float
    seconds: float
    samples: list[Sample]
    before: dict[int, Usage]
    after: dict[int, Usage]
    sizes_before: dict[str, str]
    sizes_after: dict[str, str]
    machine_busy: float  # cores busy on average, the whole machine
    load: tuple[float, float]  # the machine's 1-minute load average at the start and the end
    generator_cpu: float  # seconds, this process (the clients, the slow clients, the probe)
    slow: SlowClients
    probe: Probe


def measure(
    shared: Shared, args: argparse.Namespace, rate: float, slow: SlowClients, settle: float
) -> Run:
    """``args.duration`` seconds at ``rate``, slow clients held, memory and CPU around it,
    after ``settle`` seconds at that rate (at least 10 s, or a client's period)."""
    import psutil

    deployment = shared.deployment
    shared.period = period_for(rate, args.users)
    shared.bases.low = max(BASIS_SEARCHES, math.ceil(rate * 15))
    probe = Probe(deployment.url, deployment.cert)
    time.sleep(max(10, shared.period, settle))  # the change of rate settles
    probe.start()
    sizes_before = sizes(deployment)
    load = os.getloadavg()[0]
    before, machine, me = usage(deployment.directory), psutil.cpu_times(), psutil.Process()
    generator = me.cpu_times()
    begun = time.monotonic()
    while (left := begun + args.duration - time.monotonic()) > 0:
        time.sleep(min(5.0, left))
        slow.sample()
    ended = time.monotonic()
    after = usage(deployment.directory)
    machine_after, generator_after = psutil.cpu_times(), me.cpu_times()
    seconds = ended - begun
    probe.stop()
    busy = _busy(machine_after) - _busy(machine)
    return Run(
        rate=rate,
        seconds=seconds,
        samples=shared.recorder.window(begun, ended),
        before=before,
        after=after,
        sizes_before=sizes_before,
        sizes_after=sizes(deployment),
        machine_busy=busy / seconds,
        load=(load, os.getloadavg()[0]),
        generator_cpu=sum(generator_after[:2]) - sum(generator[:2]),
        slow=slow,
        probe=probe,
    )


def _busy(times: Any) -> float:
    """CPU seconds the machine spent on anything (guest time is already in user)."""
    return float(times.user + times.nice + times.system + times.irq + times.softirq + times.steal)


def memory_rows(run: Run) -> tuple[list[list[object]], list[str]]:
    """Each process's RSS and anonymous memory at the start and end of the run, and the parts'
    sums; also the processes that lived through the run and grew (``_grew``) in both: RSS
    alone also grows as a process touches shared memory (PostgreSQL's backends and its
    checkpointer, the shared buffers), which is not a leak. moto, which stands in for S3,
    keeps the bucket in memory: it grows by the photos stored and is not counted."""
    rows: list[list[object]] = []
    grew: list[str] = []
    seen = run.before | run.after
    for part in PARTS:
        pids = sorted(pid for pid, u in seen.items() if u.part == part)
        for pid in pids:
            start, end = run.before.get(pid), run.after.get(pid)
            label = f"{part} {pid} {seen[pid].name}"
            if start and end:
                if part != "s3" and _grew(start.rss, end.rss) and _grew(start.anon, end.anon):
                    rss, anon = growth(start.rss, end.rss), growth(start.anon, end.anon)
                    grew.append(f"{label}: RSS {rss:+.1f}%, anonymous {anon:+.1f}%")
                rows.append([label, *_memory(start, end)])
            else:
                rows.append([label, *_memory(start, end), "started" if end else "exited"])
        total = [
            Usage(part, 0, "", sum(u.rss for u in side), sum(u.anon for u in side), 0.0)
            for side in (
                [u for u in run.before.values() if u.part == part],
                [u for u in run.after.values() if u.part == part],
            )
        ]
        if pids:
            count = sum(u.part == part for u in run.after.values())
            rows.append([f"{part}: all {count} processes", *_memory(*total)])
    return rows, grew


def _grew(start: int, end: int) -> bool:
    """Grown by RSS_GROWTH_LIMIT percent and by GROWTH_FLOOR bytes (a few pages of a 3 MiB
    process are not a trend)."""
    return growth(start, end) >= RSS_GROWTH_LIMIT and end - start >= GROWTH_FLOOR


def _memory(start: Usage | None, end: Usage | None) -> list[str]:
    if not (start and end):
        return [megabytes(start.rss) if start else "-", megabytes(end.rss) if end else "-"]
    return [
        megabytes(start.rss),
        megabytes(end.rss),
        f"{growth(start.rss, end.rss):+.1f}%",
        megabytes(start.anon),
        megabytes(end.anon),
        f"{growth(start.anon, end.anon):+.1f}%",
    ]


def cpu_rows(run: Run, searches: int) -> tuple[list[list[object]], float]:
    """Each part's CPU over the run, per search of the mix, and the cores 100 searches/s need;
    also the deployment's total core-ms per search."""
    rows: list[list[object]] = []
    for part in PARTS:
        if any(u.part == part for u in run.after.values()):
            rows.append(_cpu_row(part, spent(run.before, run.after, part), run.seconds, searches))
    total = spent(run.before, run.after)
    rows.append(_cpu_row("deployment", total, run.seconds, searches))
    rows.append(_cpu_row("load generator (not sized)", run.generator_cpu, run.seconds, searches))
    return rows, total * 1000 / searches if searches else math.nan


def spent(before: dict[int, Usage], after: dict[int, Usage], part: str | None = None) -> float:
    """CPU seconds the deployment's processes (``part``'s) spent from ``before`` to ``after``."""
    return sum(
        end.cpu - (before[pid].cpu if pid in before else 0.0)
        for pid, end in after.items()
        if part is None or end.part == part
    )


def _cpu_row(what: str, spent: float, seconds: float, searches: int) -> list[object]:
    per_search = spent * 1000 / searches if searches else math.nan
    return [
        what,
        f"{spent:.0f}",
        f"{spent / seconds:.2f}",
        f"{per_search:.1f}",
        f"{per_search / 10:.1f}",  # 100 searches/s x ms per search / 1000 ms
        f"{per_search / 10 / 0.6:.1f}",
    ]


def report(
    run: Run,
    steps: Sequence[Step],
    baselines: dict[str, list[float]],
    search_cpu: dict[str, float],
    errors: list[str],
    args: argparse.Namespace,
) -> int:
    """Print the tables; 0 when the run kept p95 under 1 s, made no error and grew no process
    by 10% or more."""
    search_base = statistics.median(baselines["search, one client"])
    print(
        f"\nLoad and soak: deploy/run, serve --http --workers {args.workers}, "
        f"{_cores()} cores; {args.users} clients"
    )
    if steps:
        print(
            "\nstep-up, searches/s offered (kept: every kind's p95 < 1 s, no errors, and 80% "
            "of the offered searches answered)"
        )
        print(
            table(
                ["offered", "answered", "worst p95 ms", "errors", "kept"],
                [
                    [
                        f"{s.rate:.2f}",
                        f"{s.achieved:.2f}",
                        f"{s.p95 * 1000:.0f}",
                        s.errors,
                        s.kept(),
                    ]
                    for s in steps
                ],
            )
        )
    print("\nbaselines (same run, before the load), median of n")
    print(
        table(
            ["what", "n", "median ms", "p95 ms"],
            [
                [what, len(times), *milliseconds(statistics.median(times), percentile(times, 95))]
                for what, times in baselines.items()
            ],
        )
    )
    print(
        "CPU per search, one client at a time (core-ms): "
        + ", ".join(f"{part} {ms:.1f}" for part, ms in search_cpu.items())
    )
    kinds, worst, failed = kinds_table(run.samples, run.seconds, search_base)
    searches = sum(1 for s in run.samples if s.kind == "search" and s.ok)
    print(
        f"\nthe run: {run.seconds:.0f} s at {run.rate:.2f} searches/s offered, "
        f"{searches / run.seconds:.2f} answered; {args.slow_clients} slow clients held meanwhile"
    )
    print(kinds)
    print(f"\nerrors: {len(errors)}")
    for line in errors[:50]:
        print(f"ERROR {line}")
    slow, probe = run.slow, run.probe
    probe_median = statistics.median(probe.times) if probe.times else math.nan
    new_conn = statistics.median(baselines["GET /healthz, new TLS connection"])
    print(
        f"\nslow clients: {args.slow_clients} wanted; held open min {min(slow.held, default=0)}, "
        f"median {statistics.median(slow.held) if slow.held else 0:.0f}; "
        f"{slow.reconnects} dropped by nginx and reopened; open failures {dict(slow.failures)}"
    )
    print(
        f"responsiveness: GET /healthz on a new connection every 2 s: {len(probe.times)} answered, "
        f"{len(probe.failures)} failed; median {probe_median * 1000:.1f} ms, max "
        f"{max(probe.times, default=math.nan) * 1000:.1f} ms "
        f"({probe_median / new_conn:.1f}x the unloaded median)"
    )
    rows, grew = memory_rows(run)
    print(
        "\nmemory at the start and the end of the run (anonymous: heap and stacks, without "
        "shared memory; s3 is moto, which keeps the bucket in memory: not counted)"
    )
    header = ["process", "RSS start", "end", "growth", "anon start", "end", "growth"]
    print(table(header, [row + [""] * (len(header) - len(row)) for row in rows]))
    for line in grew:
        print(f"GREW {line}")
    cpu, per_search = cpu_rows(run, searches)
    print(
        f"\nCPU over the run (the machine: {run.machine_busy:.2f} of {_cores()} cores busy, "
        f"load average {run.load[0]:.1f} at the start, {run.load[1]:.1f} at the end), per "
        "search of the mix, and the cores 100 searches/s of it would keep busy"
    )
    print(
        table(
            ["part", "core-s", "cores", "core-ms/search", "cores/100 s/s", "at 60%"],
            cpu,
        )
    )
    print("\nsizes at the start and the end of the run")
    print(
        table(
            ["what", "start", "end"],
            [[k, v, run.sizes_after.get(k, "-")] for k, v in run.sizes_before.items()],
        )
    )
    verdicts = [
        (f"every kind's p95 under {P95_LIMIT:.0f} s", worst < P95_LIMIT),
        ("no errors", failed == 0 and not errors),
        (
            f"no process grew by {RSS_GROWTH_LIMIT:.0f}% and {GROWTH_FLOOR >> 20} MiB or more "
            "(RSS, and anonymous memory)",
            not grew,
        ),
        ("the probe always answered", not probe.failures),
    ]
    print()
    for what, held in verdicts:
        print(f"{'OK  ' if held else 'FAIL'} {what}")
    print(f"deployment CPU per search of the mix: {per_search:.0f} core-ms")
    return 0 if all(held for _, held in verdicts) else 1


def _cores() -> int:
    return os.cpu_count() or 1


def run(deployment: Deployment, args: argparse.Namespace, shared_dir: Path) -> int:
    """Provision, measure the baselines, step up, run and report."""
    import locust.env

    target = Target(deployment)
    started = time.monotonic()
    cast = provision(target, args.users)
    bases = Bases(low=BASIS_SEARCHES)
    for _ in range(2):
        approve_basis(unrecorded(target), cast.investigators[0], cast.supervisors[1], bases)
    photos, probes, gallery = enrol_gallery(target, cast, shared_dir, args.identities)
    print(
        f"provisioned {len(cast.investigators)} investigators, {len(cast.curators)} curators, "
        f"{len(photos)} gallery photos in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    baselines = {
        "GET /healthz, kept-alive connection": keepalive_healthz(deployment.url, 50),
        "GET /healthz, new TLS connection": healthz_latency(deployment.url, deployment.cert, 21),
    }
    baseline_searches(target, cast, probes[:4], bases)  # warm-up: each worker's first searches
    idle, tried = usage(deployment.directory), len(probes)
    searched, probes = baseline_searches(target, cast, probes, bases)
    alone = usage(deployment.directory)
    search_cpu = {part: spent(idle, alone, part) * 1000 / tried for part in PARTS}
    search_cpu["deployment"] = spent(idle, alone) * 1000 / tried
    if not searched:
        print("no probe was searched with: see the deployment's logs", file=sys.stderr)
        return 1
    baselines["search, one client"] = searched
    recorder = Recorder()
    shared = Shared(deployment, cast, probes, gallery, recorder, bases, photos=photos)
    first = args.rate if args.rate else args.start_rate
    shared.period = period_for(first, args.users)
    environment = locust.env.Environment(user_classes=[client_class(shared)])
    environment.events.user_error.add_listener(
        lambda user_instance, exception, tb: recorder.errors.append(f"client: {exception!r}")
    )
    runner = environment.create_local_runner()
    runner.start(args.users, spawn_rate=max(1, args.users / 5))
    # Held from the step-up on: the rate it finds is the one that holds with them.
    slow = SlowClients(deployment.port, deployment.cert, args.slow_clients)
    slow.start()
    try:
        steps: list[Step] = []
        rate = args.rate
        if not rate:
            steps = step_up(
                shared,
                args.users,
                start=args.start_rate,
                factor=args.factor,
                seconds=args.step_seconds,
            )
            rate = sustained_rate(steps) or steps[0].rate
        # Without a step-up, the workers have served one client only: their memory grows as
        # the load first reaches every thread and cache, which is warm-up, not a leak.
        measured = measure(shared, args, rate, slow, settle=0 if steps else args.warmup)
    finally:
        slow.stop()
        runner.quit()
    in_run = [e for e in recorder.errors]  # every error of the step-up and the run is printed
    return report(measured, steps, baselines, search_cpu, in_run, args)


def main() -> int:
    """Start the deployment, run, print the tables; exit 1 when a requirement failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of the run")
    parser.add_argument("--rate", type=float, help="searches per second (no step-up)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=120,
        help="with --rate: seconds at the rate before the run's memory and CPU are first read",
    )
    parser.add_argument(
        "--find-rate", action="store_true", help="step up first (the default without --rate)"
    )
    parser.add_argument("--start-rate", type=float, default=2.0, help="the step-up's first")
    parser.add_argument("--factor", type=float, default=1.25, help="from one step to the next")
    parser.add_argument(
        "--step-seconds", type=float, default=30, help="measured, after the change settles"
    )
    parser.add_argument("--users", type=int, default=32, help="clients, one investigator each")
    parser.add_argument("--workers", type=int, default=2, help="serve --workers")
    parser.add_argument("--slow-clients", type=int, default=500)
    parser.add_argument("--identities", type=int, default=40, help="people in the gallery")
    parser.add_argument("--shared-dir", default=str(REPO.parent / "shared"))
    args = parser.parse_args()
    if args.rate and args.find_rate:
        parser.error("--rate and --find-rate exclude each other")
    shared_dir = Path(args.shared_dir)
    if not (shared_dir / "faces" / "dev" / "manifest.csv").is_file():
        print(f"skipped: no labelled faces under {shared_dir / 'faces' / 'dev'} (--shared-dir)")
        return 0
    if MISSING:
        print(f"skipped: the deployment needs {', '.join(MISSING)}")
        return 0
    with deployed(workers=args.workers) as deployment:
        if deployment.started.returncode != 0:
            print(deployment.started.stdout, deployment.started.stderr, file=sys.stderr)
            return 1
        os.environ["REQUESTS_CA_BUNDLE"] = deployment.cert  # the harness's helpers verify it
        try:
            return run(deployment, args, shared_dir)
        except BaseException:
            for log in sorted((deployment.directory / "logs").glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {log.name}", *tail, sep="\n", file=sys.stderr)
            raise


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
