"""Accountability figures recomputed from ledger entries: the same code for the server's
``/v1/oversight/reports`` and for ``facewarden-verify report``, so both give the same numbers.

JSON (``build_report``), CSV (``report_csv``) and a hand-written SVG bar chart of searches per
month (``report_svg``). Imports only the standard library.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from ledger.audit import Record

__all__ = [
    "REPORT_FORMAT",
    "build_report",
    "normalize_bound",
    "report_csv",
    "report_svg",
]

REPORT_FORMAT = "facewarden-accountability-report/1"


def normalize_bound(value: str | None) -> str | None:
    """An ISO 8601 date or time as the ledger writes ``ts`` (UTC, microseconds, ``Z``).

    A date means its midnight UTC; a time needs an offset, since guessing its zone would move
    the bound by hours. Raises ValueError.
    """
    if value is None or value == "":
        return None
    text = value.strip()
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        if len(text) > len("YYYY-MM-DD"):
            raise ValueError(
                f"{text!r} has no offset: add an offset such as Z (UTC) or +02:00, or give a date"
            )
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return {key: counter[key] for key in sorted(counter)}


def build_report(
    records: Iterable[Record], *, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    """The figures over entries with ``start <= ts < end`` (either bound may be None).

    Bounds are ISO 8601 dates or times (see ``normalize_bound``). Raises ValueError for a bound
    that is not one.
    """
    lo, hi = normalize_bound(start), normalize_bound(end)
    per_agency: Counter[str] = Counter()
    per_offence: Counter[str] = Counter()
    per_authorisation: Counter[str] = Counter()
    per_month: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    packs: Counter[tuple[str, str]] = Counter()
    urgent: Counter[str] = Counter()
    leads: set[tuple[str, str]] = set()
    candidates = searches = entries = erasures = erased_faces = purges = purged_faces = 0
    for r in records:
        # Counted refusals belong to the window they happened in, not to when it was recorded.
        when = r.ts
        if r.type == "search:refuse_repeats":
            when = str((r.payload.get("window") or {}).get("start") or r.ts)
        if (lo is not None and when < lo) or (hi is not None and when >= hi):
            continue
        entries += 1
        p = r.payload
        if r.type == "search:run":
            searches += 1
            per_agency[str(p.get("agency_id"))] += 1
            per_offence[str(p.get("offence_category"))] += 1
            per_authorisation[str((p.get("authorisation") or {}).get("kind"))] += 1
            per_month[r.ts[:7]] += 1
            candidates += len(p.get("candidates") or [])
            pack = p.get("pack") or {}
            packs[(str(pack.get("name")), str(pack.get("version")))] += 1
        elif r.type == "search:refuse":
            refused[str(p.get("reason"))] += 1
        elif r.type == "search:refuse_repeats":
            for item in p.get("refusals") or []:
                refused[str(item.get("reason"))] += int(item.get("repeats") or 0)
        elif r.type == "review:record":
            leads.update((str(p.get("search_id")), str(f)) for f in p.get("confirmed_leads") or [])
        elif r.type == "legal_basis:ratify":
            urgent["ratified" if p.get("outcome") == "granted" else "refused"] += 1
        elif r.type == "legal_basis:lapse":
            urgent["lapsed"] += 1
        elif r.type == "erasure:run":
            erasures += 1
            erased_faces += int(p.get("faces") or 0)
        elif r.type == "source:purge":
            purges += 1
            purged_faces += int(p.get("faces") or 0)
    return {
        "format": REPORT_FORMAT,
        "period": {"from": lo, "to": hi},
        "entries": entries,
        "searches": {
            "total": searches,
            "per_agency": _sorted(per_agency),
            "per_offence_category": _sorted(per_offence),
            "per_authorisation_kind": _sorted(per_authorisation),
            "per_month": _sorted(per_month),
        },
        "refused": {
            "total": sum(refused.values()),
            "by_reason": _sorted(refused),
            "without_face": refused["no-face"],
        },
        "candidates_returned": candidates,
        "confirmed_leads": len(leads),
        "urgent_bases": {k: urgent[k] for k in ("ratified", "refused", "lapsed")},
        "erasures": {"runs": erasures, "faces": erased_faces},
        "opt_out_purges": {"runs": purges, "faces": purged_faces},
        "model_packs": [
            {"name": name, "version": version, "searches": n}
            for (name, version), n in sorted(packs.items())
        ],
    }


def _rows(report: Mapping[str, Any]) -> Iterable[tuple[str, str, object]]:
    period = report["period"]
    yield "period", "from", period["from"] or ""
    yield "period", "to", period["to"] or ""
    yield "entries", "", report["entries"]
    s = report["searches"]
    yield "searches", "total", s["total"]
    for section in ("per_agency", "per_offence_category", "per_authorisation_kind", "per_month"):
        for key, n in s[section].items():
            yield f"searches.{section}", key, n
    yield "refused", "total", report["refused"]["total"]
    for key, n in report["refused"]["by_reason"].items():
        yield "refused.by_reason", key, n
    yield "refused", "without_face", report["refused"]["without_face"]
    yield "candidates_returned", "", report["candidates_returned"]
    yield "confirmed_leads", "", report["confirmed_leads"]
    for key, n in report["urgent_bases"].items():
        yield "urgent_bases", key, n
    for section in ("erasures", "opt_out_purges"):
        for key, n in report[section].items():
            yield section, key, n
    for pack in report["model_packs"]:
        yield "model_packs", f"{pack['name']} {pack['version']}", pack["searches"]


def report_csv(report: Mapping[str, Any]) -> str:
    """The report as CSV: ``section,key,value`` rows, one figure each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "key", "value"))
    writer.writerows(_rows(report))
    return out.getvalue()


def report_svg(report: Mapping[str, Any], *, title: str = "Searches per month") -> str:
    """A bar chart of searches per month as a standalone SVG document."""
    months: dict[str, int] = dict(report["searches"]["per_month"])
    width, height, left, bottom, top = 640, 320, 48, 40, 36
    plot_w, plot_h = width - left - 16, height - top - bottom
    peak = max(months.values(), default=0)
    scale = max(peak, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{width // 2}" y="22" text-anchor="middle" font-family="sans-serif" '
        f'font-size="15">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-family="sans-serif" '
        f'font-size="11">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-family="sans-serif" '
        'font-size="11">0</text>',
    ]
    if not months:
        parts.append(
            f'<text x="{left + plot_w // 2}" y="{top + plot_h // 2}" text-anchor="middle" '
            'font-family="sans-serif" font-size="13" fill="#666">no searches</text>'
        )
    slot = plot_w / max(len(months), 1)
    bar = max(slot * 0.7, 1.0)
    for i, (month, n) in enumerate(months.items()):
        h = plot_h * n / scale
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="#2b6cb0">'
            f"<title>{escape(month)}: {n}</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
            f'font-family="sans-serif" font-size="11">{n}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
            f'font-family="sans-serif" font-size="11">{escape(month)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
