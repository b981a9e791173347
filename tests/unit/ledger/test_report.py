"""``ledger.report``: the accountability figures, their period filter, CSV and the SVG chart."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from ledger.report import build_report, normalize_bound, report_csv, report_svg
from tests.unit.ledger.test_audit import AGENCY, INV, History, lawful


def test_figures_of_the_lawful_history() -> None:
    report = build_report(lawful().records)
    searches = report["searches"]
    assert searches["total"] == 5
    assert searches["per_agency"] == {AGENCY: 5}
    assert searches["per_offence_category"] == {"kidnapping_hostage_taking": 5}
    assert searches["per_authorisation_kind"] == {"judicial": 5}
    assert searches["per_month"] == {"2026-11": 5}
    assert report["refused"] == {"total": 1, "by_reason": {"no-face": 1}, "without_face": 1}
    assert report["candidates_returned"] == 5
    assert report["confirmed_leads"] == 1
    assert report["urgent_bases"] == {"ratified": 1, "refused": 0, "lapsed": 1}
    assert report["erasures"] == {"runs": 1, "faces": 1}
    assert report["opt_out_purges"] == {"runs": 1, "faces": 3}
    assert report["model_packs"] == [{"name": "starter", "version": "1.0.0", "searches": 5}]


def test_the_period_filters_by_entry_time() -> None:
    h = lawful()
    h.later(timedelta(days=40))
    h.search("lb-1")
    records = h.records
    december = build_report(records, start="2026-12-01", end="2027-01-01")
    assert december["searches"]["total"] == 1 and december["entries"] == 1
    assert december["period"] == {
        "from": "2026-12-01T00:00:00.000000Z",
        "to": "2027-01-01T00:00:00.000000Z",
    }
    november = build_report(records, end="2026-12-01T00:00:00+00:00")
    assert november["searches"]["total"] == 5
    everything = build_report(records)
    assert everything["searches"]["per_month"] == {"2026-11": 5, "2026-12": 1}
    assert everything["entries"] == len(records)


def test_bounds_are_normalized_or_refused() -> None:
    assert normalize_bound("2026-11-02") == "2026-11-02T00:00:00.000000Z"
    assert normalize_bound("2026-11-02T10:00:00+02:00") == "2026-11-02T08:00:00.000000Z"
    assert normalize_bound(None) is None
    with pytest.raises(ValueError, match="add an offset such as Z"):
        normalize_bound("2026-11-02T10:00:00")
    with pytest.raises(ValueError):
        normalize_bound("last tuesday")


def test_csv_has_one_row_per_figure() -> None:
    rows = list(csv.reader(io.StringIO(report_csv(build_report(lawful().records)))))
    assert rows[0] == ["section", "key", "value"]
    table = {(s, k): v for s, k, v in rows[1:]}
    assert table[("searches", "total")] == "5"
    assert table[("searches.per_agency", AGENCY)] == "5"
    assert table[("refused.by_reason", "no-face")] == "1"
    assert table[("model_packs", "starter 1.0.0")] == "5"


def test_svg_chart_is_well_formed_with_a_bar_per_month() -> None:
    h: History = lawful()
    h.later(timedelta(days=40))
    h.search("lb-1", by=INV)
    svg = report_svg(build_report(h.records))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert [b.find(f"{ns}title").text for b in bars] == ["2026-11: 5", "2026-12: 1"]  # type: ignore[union-attr]
    assert float(bars[0].get("height", 0)) == 5 * float(bars[1].get("height", 0))
    empty = ET.fromstring(report_svg(build_report([])))
    assert "no searches" in ET.tostring(empty, encoding="unicode")


def test_counted_refusals_are_in_the_figures_of_their_window() -> None:
    h = lawful()
    first = next(r.seq for r in h.records if r.type == "search:refuse")
    h.later(timedelta(days=40))  # recorded in December, for a window of November
    h.add(
        "search:refuse_repeats",
        "facewarden",
        credential_id="cred-inv",
        account_id=INV,
        agency_id=AGENCY,
        window={"start": "2026-11-30T23:59:00.000000Z", "end": "2026-12-01T00:00:00.000000Z"},
        refusals=[{"reason": "no-face", "first_seq": first, "repeats": 9}],
    )
    november = build_report(h.records, end="2026-12-01")
    assert november["refused"] == {"total": 10, "by_reason": {"no-face": 10}, "without_face": 10}
    assert build_report(h.records, start="2026-12-01")["refused"]["total"] == 0
