"""The load profile's figures, pure: percentiles, the step-up's choice of rate, the tables.

Used by bench/load.py; tested by tests/unit/load/test_figures.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CYCLE",
    "P95_LIMIT",
    "Recorder",
    "Sample",
    "Step",
    "growth",
    "kinds_table",
    "megabytes",
    "milliseconds",
    "next_rate",
    "percentile",
    "period_for",
    "sustained_rate",
    "table",
]

# Each client's cycle of acts: per search, one read, half a review, a quarter of an enrolment.
CYCLE = (
    *("search", "read", "review", "search", "read", "enrolment"),
    *("search", "read", "review", "search", "read"),
)
SEARCHES_PER_CYCLE = CYCLE.count("search")
P95_LIMIT = 1.0  # seconds, for every kind of request


def percentile(samples: Sequence[float], percent: float) -> float:
    """The nearest-rank ``percent`` percentile of ``samples`` (NaN when there are none)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Step:
    """One step of the step-up: the search rate offered, what it achieved and its worst p95."""

    rate: float  # searches per second offered
    achieved: float  # searches per second answered
    p95: float  # seconds, the highest of the kinds' p95
    errors: int

    def kept(self, limit: float = P95_LIMIT) -> bool:
        """p95 under ``limit``, no errors, and at least 80% of the offered searches answered.

        (Each client acts every few seconds: a step's count of searches varies by some 10%
        with the clients' phases alone.)
        """
        return self.p95 < limit and self.errors == 0 and self.achieved >= 0.8 * self.rate


def next_rate(
    steps: Sequence[Step], *, start: float, factor: float, ceiling: float
) -> float | None:
    """The rate of the next step, or None when the step-up is over.

    It is over at the first step that did not keep its rate, or once the ceiling (what the
    provisioned clients can offer within their rate limits) was tried.
    """
    if not steps:
        return min(start, ceiling)
    last = steps[-1]
    if not last.kept() or last.rate >= ceiling:
        return None
    return min(round(last.rate * factor, 2), ceiling)


def sustained_rate(steps: Sequence[Step]) -> float | None:
    """The highest rate of the steps that kept theirs, each before it having kept its own."""
    best = None
    for step in steps:
        if not step.kept():
            break
        best = step.rate
    return best


def growth(start: float, end: float) -> float:
    """Percent growth from ``start`` to ``end``."""
    return (end - start) / start * 100 if start else math.nan


def period_for(rate: float, clients: int) -> float:
    """Seconds between one client's acts for ``rate`` searches per second from ``clients``."""
    return clients * SEARCHES_PER_CYCLE / (rate * len(CYCLE))


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Right-aligned columns after a left-aligned first one."""
    lines = [[str(cell) for cell in header], *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for line in lines:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


@dataclass
class Sample:
    kind: str
    ended: float  # time.monotonic()
    seconds: float
    ok: bool


@dataclass
class Recorder:
    """Every request's kind, end, duration and outcome, and what each error said."""

    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, kind: str, seconds: float, error: str | None = None) -> None:
        self.samples.append(Sample(kind, time.monotonic(), seconds, error is None))
        if error is not None:
            self.errors.append(f"{kind}: {error}")

    def window(self, since: float, until: float = math.inf) -> list[Sample]:
        return [s for s in self.samples if since <= s.ended < until]


def kinds_table(
    samples: Sequence[Sample], seconds: float, baseline: float | None = None
) -> tuple[str, float, int]:
    """The per-kind table of ``samples`` over ``seconds``; also the worst p95 and the errors.

    With ``baseline`` (a single client's median search, in seconds), the searches' p50 is
    also given as a ratio to it.
    """
    by_kind: dict[str, list[Sample]] = {}
    for sample in samples:
        by_kind.setdefault(sample.kind, []).append(sample)
    rows, worst, errors = [], 0.0, 0
    for kind in sorted(by_kind):
        got = by_kind[kind]
        times = [s.seconds for s in got if s.ok]
        failed = sum(not s.ok for s in got)
        p50, p95, p99 = (percentile(times, q) for q in (50, 95, 99))
        worst, errors = max(worst, p95), errors + failed
        ratio = f"{p50 / baseline:.1f}x" if baseline and kind == "search" else ""
        rows.append(
            [
                kind,
                len(got),
                f"{len(got) / seconds:.2f}",
                *milliseconds(p50, p95, p99),
                ratio,
                failed,
            ]
        )
    total = [s.seconds for s in samples if s.ok]
    rows.append(
        [
            "all",
            len(samples),
            f"{len(samples) / seconds:.2f}",
            *milliseconds(*(percentile(total, q) for q in (50, 95, 99))),
            "",
            errors,
        ]
    )
    header = ["kind", "requests", "per s", "p50 ms", "p95 ms", "p99 ms", "p50/base", "errors"]
    return table(header, rows), worst, errors


def milliseconds(*seconds: float) -> list[str]:
    return [f"{s * 1000:.0f}" if not math.isnan(s) else "-" for s in seconds]


def megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
