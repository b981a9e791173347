"""How long the console takes to answer its main pages, next to its cheapest answer.

Builds a deployment of its own (a throw-away data directory, SQLite, milvus-lite, the starter
pack, real photos from ``../shared/faces/dev``): an agency with two supervisors and an
investigator, a curator and an oversight account, each signed in with a passkey; a few gallery
photos, an approved legal basis and one search. It then asks for each role's main pages
``--requests`` times through Flask's test client, in this process (no TLS, no HTTP server:
what the service itself spends), and prints the median and p90 of each page next to the
baseline of the same run: a static file of the console, which pays only for the framework,
the security headers and the session check. The review page and the police file each record
a ``probe:view`` (a signed ledger entry and a durable commit) per view.

    python bench/console.py [--requests 50]
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.app import create_app  # noqa: E402
from api.bootstrap import initialize  # noqa: E402
from api.settings import Settings  # noqa: E402
from tests.api.bases import approved, make_team  # noqa: E402
from tests.api.faces import dev_photos, enroll, variant  # noqa: E402
from tests.api.helpers import make_staff  # noqa: E402
from tests.conftest import ensure_starter_pack, models_dir_for_tests, shared_path  # noqa: E402
from tests.console.conftest import Visitor, signed_in  # noqa: E402


def measure(get: Callable[[], int], requests: int) -> list[float]:
    """Milliseconds per answer of ``requests`` calls (after two to warm up); each must be 200."""
    for _ in range(2):
        assert get() == 200
    spent = []
    for _ in range(requests):
        started = time.perf_counter()
        status = get()
        spent.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return spent


def page(visitor: Visitor, path: str) -> Callable[[], int]:
    def get() -> int:
        answer = visitor.get(path)
        answer.get_data()
        return answer.status_code

    return get


def report(visitor: Visitor) -> Callable[[], int]:
    """The accountability report of the whole log, as the oversight page shows it."""

    def post() -> int:
        answer = visitor.post("/console/oversight/report", {"format": "html"})
        answer.get_data()
        return answer.status_code

    return post


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="answers timed per page")
    args = parser.parse_args()
    faces = shared_path() / "faces" / "dev"
    if not (faces / "manifest.csv").is_file():
        sys.exit(f"the labelled photos are missing: expected {faces}/manifest.csv")
    with tempfile.TemporaryDirectory(prefix="facewarden-bench-console-") as root:
        settings = Settings.from_mapping(
            {
                "data_dir": f"{root}/var",
                "database_url": f"sqlite:///{root}/facewarden.db",
                "ledger_origin": "bench.facewarden.local/ledger",
                "models_dir": str(models_dir_for_tests()),
                "search_rate_limit": "100000 per minute",
                "account_rate_limit": "100000 per minute",
            }
        )
        ensure_starter_pack(settings.models_dir)
        print("building the deployment (models, photos, accounts)…", file=sys.stderr)
        initialize(settings, tls=False, progress=lambda _msg: None)
        app = create_app(settings)
        logging.getLogger("facewarden").setLevel(logging.WARNING)  # one log line per request
        client = app.test_client()
        team = make_team(app)
        curator_agent = make_staff(client, team.admin, "curator")
        photos = dev_photos(shared_path())
        names = [name for name, paths in sorted(photos.items()) if len(paths) >= 2][:8]
        for name in names:
            answer = enroll(
                client,
                curator_agent,
                variant(photos[name][0]),
                url=f"https://press.example.org/{name}/1.jpg",
            )
            assert answer.status_code == 201, answer.get_json()
        basis = approved(client, app, team, case_number="BENCH-2026-1")
        who = {
            "admin": signed_in(app, team.admin),
            "supervisor": signed_in(app, team.sup),
            "colleague": signed_in(app, team.sup2),
            "investigator": signed_in(app, team.inv),
            "curator": signed_in(app, curator_agent),
            "oversight": signed_in(app, team.oversight),
        }
        searched = who["investigator"].post(
            "/console/searches",
            {
                "image": (io.BytesIO(photos[names[0]][1].read_bytes()), "probe.jpg"),
                "legal_basis_id": basis["id"],
                "purpose": "Identify the person in the still.",
                "top_k": "10",
            },
            content_type="multipart/form-data",
        )
        assert searched.status_code == 303, searched.get_data(as_text=True)
        search = searched.headers["Location"].split("?")[0]
        search_id = search.rsplit("/", 1)[-1]
        pages = {
            "baseline: a static file": ("investigator", "/console/static/console.css"),
            "home": ("investigator", "/console/"),
            "admin: review queue": ("admin", "/console/admin/queue"),
            "admin: agencies": ("admin", "/console/admin/agencies"),
            "supervisor: legal bases to approve": ("supervisor", "/console/agency/legal-bases"),
            "investigator: new search": ("investigator", "/console/searches/new"),
            "investigator: search results": ("investigator", search),
            "investigator: search history": ("investigator", "/console/searches"),
            "reviewer: review a search": ("colleague", f"/console/reviews/{search_id}"),
            "police file": ("investigator", f"/console/records/{search_id}"),
            "curator: gallery": ("curator", "/console/gallery/photos"),
            "oversight: ledger": ("oversight", "/console/oversight"),
            "oversight: report form": ("oversight", "/console/oversight/report"),
        }
        results = {}
        for label, (role, path) in pages.items():
            print(f"timing {label}…", file=sys.stderr)
            results[label] = measure(page(who[role], path), args.requests)
        results["oversight: the report"] = measure(report(who["oversight"]), args.requests)
        base = statistics.median(results["baseline: a static file"])
        print(f"\n{args.requests} answers per page, in-process (Flask test client), SQLite")
        print(f"{'page':38} {'p50 ms':>8} {'p90 ms':>8} {'p50 / baseline':>15}")
        for label, spent in results.items():
            p50 = statistics.median(spent)
            p90 = statistics.quantiles(spent, n=10)[-1]
            print(f"{label:38} {p50:8.2f} {p90:8.2f} {p50 / base:14.1f}x")
        main_pages = [statistics.median(s) for k, s in results.items() if not k.startswith("b")]
        overall = statistics.median(main_pages)
        print(f"\nmedian over the {len(main_pages)} main pages: {overall:.2f} ms")


if __name__ == "__main__":
    main()
