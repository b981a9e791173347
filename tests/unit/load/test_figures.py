"""The load profile's figures: percentiles, the step-up's rates, the per-kind table."""

from __future__ import annotations

import math

import pytest

from tests.load.figures import (
    CYCLE,
    Sample,
    Step,
    growth,
    kinds_table,
    next_rate,
    percentile,
    period_for,
    sustained_rate,
)


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(50, 50.0), (95, 95.0), (99, 99.0), (100, 100.0), (0, 1.0), (0.5, 1.0)],
)
def test_percentile_is_the_nearest_rank(percent: float, expected: float) -> None:
    samples = [float(n) for n in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(samples, percent) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 95))


def kept(rate: float) -> Step:
    return Step(rate=rate, achieved=rate, p95=0.4, errors=0)


@pytest.mark.parametrize(
    ("step", "is_kept"),
    [
        (Step(4.0, 4.0, 0.99, 0), True),
        (Step(4.0, 4.0, 1.0, 0), False),  # p95 must stay under 1 s
        (Step(4.0, 4.0, 0.5, 1), False),  # one error
        (Step(4.0, 3.1, 0.5, 0), False),  # fewer than 80% of the searches answered
        (Step(4.0, 3.2, 0.5, 0), True),
    ],
)
def test_a_step_keeps_its_rate_under_1_s_without_errors(step: Step, is_kept: bool) -> None:
    assert step.kept() is is_kept


def test_the_step_up_multiplies_until_a_step_fails() -> None:
    assert next_rate([], start=1.0, factor=1.5, ceiling=12.8) == 1.0
    assert next_rate([kept(1.0)], start=1.0, factor=1.5, ceiling=12.8) == 1.5
    assert next_rate([kept(1.0), kept(1.5)], start=1.0, factor=1.5, ceiling=12.8) == 2.25
    failed = Step(3.38, 3.38, 1.4, 0)
    assert next_rate([kept(2.25), failed], start=1.0, factor=1.5, ceiling=12.8) is None


def test_the_step_up_stops_at_the_ceiling_the_clients_can_offer() -> None:
    assert next_rate([kept(10.0)], start=1.0, factor=1.5, ceiling=12.8) == 12.8
    assert next_rate([kept(12.8)], start=1.0, factor=1.5, ceiling=12.8) is None
    assert next_rate([], start=20.0, factor=1.5, ceiling=12.8) == 12.8


def test_the_sustained_rate_is_the_last_kept_before_the_first_failure() -> None:
    failed = Step(3.38, 2.0, 0.5, 0)  # too few answered
    assert sustained_rate([kept(1.0), kept(1.5), kept(2.25), failed]) == 2.25
    assert sustained_rate([failed, kept(5.0)]) is None
    assert sustained_rate([]) is None


def test_the_period_gives_the_searches_per_second_asked_for() -> None:
    searches_per_act = CYCLE.count("search") / len(CYCLE)
    clients, rate = 32, 4.0
    assert clients / period_for(rate, clients) * searches_per_act == pytest.approx(rate)


def test_growth_is_in_percent() -> None:
    assert growth(200, 210) == pytest.approx(5.0)
    assert growth(200, 180) == pytest.approx(-10.0)
    assert math.isnan(growth(0, 10))


def test_the_kinds_table_gives_throughput_percentiles_and_errors() -> None:
    samples = [Sample("search", 0.0, n / 100, ok=True) for n in range(1, 101)]
    samples += [Sample("read", 0.0, 0.01, ok=True), Sample("read", 0.0, 5.0, ok=False)]
    text, worst, errors = kinds_table(samples, seconds=10.0, baseline=0.25)
    assert worst == 0.95  # the searches' p95; the failed read's 5 s is an error, not a time
    assert errors == 1
    lines = text.splitlines()
    assert lines[0].split() == [
        "kind", "requests", "per", "s", "p50", "ms", "p95", "ms", "p99", "ms", "p50/base", "errors"
    ]  # fmt: skip
    assert lines[1].split() == ["read", "2", "0.20", "10", "10", "10", "1"]
    assert lines[2].split() == ["search", "100", "10.00", "500", "950", "990", "2.0x", "0"]
    assert lines[3].split() == ["all", "102", "10.20", "500", "950", "990", "1"]
