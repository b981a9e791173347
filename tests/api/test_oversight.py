"""Oversight end to end: a scripted history verified live (a real HTTPS server and the CLI)
and from an export, audited clean, then each kind of violation injected straight into the
ledger and caught at its seq; the server's report equals the offline verifier's."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy.orm import Session

from api.app import create_app
from api.bootstrap import initialize, write_self_signed_certificate
from api.context import EXTENSION, engines, utcnow
from api.settings import Settings
from governance.core.db import unit_of_work
from governance.core.recording import SYSTEM, record
from ledger.audit import audit_entries
from ledger.cli import main as verify_main
from ledger.entry import EntryType
from ledger.keys import rotate_key
from ledger.storage import entry_bytes, export_bundle, tree_size
from tests.api.bases import Team, approved, create, make_team, ok
from tests.api.faces import dev_photos, enroll, variant
from tests.api.helpers import make_staff, runtime_of
from tests.api.served import start, stop
from tests.conftest import _postgres_server_url, create_test_database, drop_test_database

PURPOSE = "identify the suspect in the CCTV still of 2026-11-20"


@dataclass
class History:
    app: Flask
    client: FlaskClient
    team: Team
    settings: Settings
    clock: list[timedelta]
    pinned: str
    erased_face: str
    blocked_site: str
    search_payload: dict[str, Any]


def _search(client: FlaskClient, agent: Any, basis_id: str, image: bytes) -> Any:
    return client.post(
        "/v1/searches",
        data={
            "image": (io.BytesIO(image), "probe.png"),
            "legal_basis_id": basis_id,
            "purpose": PURPOSE,
            "top_k": "3",
        },
        content_type="multipart/form-data",
        headers=agent.headers,
    )


def _blank() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


def _lines(app: Flask) -> list[bytes]:
    with runtime_of(app).sessions() as session:
        return entry_bytes(session, 0, tree_size(session))


@pytest.fixture(scope="module")
def fresh_app(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, Settings]]:
    data = tmp_path_factory.mktemp("oversight")
    url, admin = create_test_database(_postgres_server_url(), data)
    own = Settings.from_mapping(
        {
            "data_dir": str(data),
            "database_url": url,
            "ledger_origin": "oversight.facewarden.local/ledger",
            "models_dir": str(settings.models_dir),
        }
    )
    initialize(own, tls=False, progress=lambda _m: None)
    write_self_signed_certificate(own.tls_cert_path, own.tls_key_path)
    application = create_app(own)
    yield application, own
    with application.app_context():
        engines().index.close()
    application.extensions[EXTENSION].engine.dispose()
    drop_test_database(admin, url)


@pytest.fixture(scope="module")
def history(fresh_app: tuple[Flask, Settings], shared_dir: Path) -> Iterator[History]:
    """Registrations, bases, searches, reviews, a refusal, a lapse, an erasure, an opt-out and
    a key rotation, all through the API (the rotation through ``ledger.keys``)."""
    app, settings = fresh_app
    rt = runtime_of(app)
    pinned = rt.signer.verifier_key
    offset = [timedelta(0)]
    rt.clock = lambda: utcnow() + offset[-1]
    client = app.test_client()
    team = make_team(app)
    curator = make_staff(client, team.admin, "curator")
    photos = dev_photos(shared_dir)
    names = sorted(n for n, p in photos.items() if len(p) >= 3)[:3]
    enrolled: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for i, path in enumerate(photos[name][:2]):
            url = f"https://{'optout.example.org' if i else 'people.example.com'}/{name}/{i}.jpg"
            response = enroll(client, curator, variant(path), url=url)
            assert response.status_code == 201, response.get_json()
            enrolled.setdefault(name, []).append(response.get_json())

    basis = approved(client, app, team)
    made = _search(client, team.inv, basis["id"], photos[names[0]][2].read_bytes())
    assert made.status_code == 201, made.get_json()
    face = made.get_json()["candidates"][0]["face_id"]
    for reviewer in (team.sup, team.sup2):
        reviewed = client.post(
            f"/v1/searches/{made.get_json()['id']}/reviews",
            json={"reviews": [{"face_id": face, "verdict": "possible_match", "note": "jaw"}]},
            headers=reviewer.headers,
        )
        assert reviewed.status_code == 201, reviewed.get_json()
    assert _search(client, team.inv, basis["id"], _blank()).status_code == 422  # no face

    urgent = approved(client, app, team, kind="urgent")
    assert (
        _search(client, team.inv, urgent["id"], photos[names[1]][2].read_bytes()).status_code == 201
    )
    offset.append(timedelta(hours=49))
    assert (
        ok(client.get(f"/v1/legal-bases/{urgent['id']}", headers=team.inv.headers))["status"]
        == "lapsed"
    )

    erased = enrolled[names[2]][0]
    response = client.post(
        "/v1/erasures",
        data={"kind": "photo", "photo_id": erased["id"], "reason": "data-subject request"},
        content_type="multipart/form-data",
        headers=team.admin.headers,
    )
    assert response.status_code == 201, response.get_json()
    blocked = client.post(
        "/v1/source-policies",
        json={
            "site": "optout.example.org",
            "status": "blocked",
            "reason": "opt-out",
            "reference": "letter 2026-11-02",
        },
        headers=team.admin.headers,
    )
    assert blocked.status_code == 200, blocked.get_json()
    assert blocked.get_json()["site"] == "example.org"

    with unit_of_work(rt.sessions) as session:
        rotate_key(
            session,
            key_path=settings.ledger_key_path,
            name=settings.ledger_origin,
            passphrase=None,
            now=rt.now(),
            actor=SYSTEM,
        )
    rt.keys.reload()
    after = _search(client, team.inv, basis["id"], photos[names[0]][2].read_bytes())
    assert after.status_code == 201, after.get_json()
    run = next(json.loads(line) for line in _lines(app) if json.loads(line)["type"] == "search:run")
    yield History(
        app,
        client,
        team,
        settings,
        offset,
        pinned,
        erased["faces"][0]["id"],
        "example.org",
        run["payload"],
    )
    rt.clock = utcnow


def _cli(*args: str, token: Path | None = None, env_token: str | None = None) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "FACEWARDEN_VERIFY_TOKEN"}
    if env_token:
        env["FACEWARDEN_VERIFY_TOKEN"] = env_token
    extra = ["--token-file", str(token)] if token else []
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args, *extra],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_live_witness_over_https_then_audit_and_report(history: History, tmp_path: Path) -> None:
    h = history
    token = tmp_path / "token"
    token.write_text(h.team.oversight.token + "\n")
    proc, port = start(h.settings)
    try:
        url = f"https://127.0.0.1:{port}"
        cert = str(h.settings.tls_cert_path)
        state = tmp_path / "witness.json"
        first = _cli(
            "live",
            url,
            "--key",
            h.pinned,
            "--state",
            str(state),
            "--cacert",
            cert,
            "--json",
            env_token=h.team.oversight.token,
        )
        assert first.returncode == 0, first.stderr + first.stdout
        report = json.loads(first.stdout)
        assert report["size"] == len(_lines(h.app)) and len(report["keys"]) == 2
        size = report["size"]

        h.client.post("/v1/credentials", json={}, headers=h.team.inv.headers)  # one more entry
        second = _cli(
            "live", url, "--key", h.pinned, "--state", str(state), "--cacert", cert, token=token
        )
        assert second.returncode == 0, second.stderr + second.stdout
        assert "(1 new verified" in second.stdout
        assert f"consistent with the trusted checkpoint of size {size}" in second.stdout
        assert json.loads(state.read_text())["size"] == size + 1

        unauthenticated = _cli("live", url, "--key", h.pinned, "--cacert", cert)
        assert unauthenticated.returncode == 1 and "401" in unauthenticated.stderr
        untrusted = _cli("live", url, "--key", h.pinned, token=token)
        assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr

        audit = _cli(
            "audit", "live", url, "--key", h.pinned, "--cacert", cert, "--json", token=token
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert json.loads(audit.stdout)["violations"] == []

        svg = tmp_path / "chart.svg"
        offline = _cli(
            "report",
            "live",
            url,
            "--key",
            h.pinned,
            "--cacert",
            cert,
            "--svg",
            str(svg),
            token=token,
        )
        assert offline.returncode == 0, offline.stderr
        server = h.client.get("/v1/oversight/reports", headers=h.team.oversight.headers)
        assert json.loads(offline.stdout) == server.get_json()
        assert svg.read_text().startswith("<svg")
    finally:
        stop(proc)


def test_export_verifies_audits_clean_and_reports_the_same(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = history
    with Session(runtime_of(h.app).engine) as session:
        export_bundle(session, tmp_path / "bundle")
    bundle = str(tmp_path / "bundle")
    assert verify_main(["bundle", bundle, "--key", h.pinned]) == 0
    assert verify_main(["audit", "bundle", bundle, "--key", h.pinned]) == 0
    assert "OK  0 violation(s)" in capsys.readouterr().out
    assert verify_main(["report", "bundle", bundle, "--key", h.pinned]) == 0
    offline = json.loads(capsys.readouterr().out)
    server = h.client.get("/v1/oversight/reports", headers=h.team.oversight.headers).get_json()
    assert offline == server
    assert server["searches"]["total"] == 3
    assert server["refused"]["without_face"] == 1
    assert server["confirmed_leads"] == 1
    assert server["urgent_bases"]["lapsed"] == 1
    assert server["erasures"]["faces"] == 1 and server["opt_out_purges"]["faces"] >= 2
    assert server["model_packs"][0]["searches"] == 3
    csv = h.client.get("/v1/oversight/reports?format=csv", headers=h.team.admin.headers)
    assert csv.mimetype == "text/csv" and "searches,total,3" in csv.get_data(as_text=True)
    assert verify_main(["report", "bundle", bundle, "--key", h.pinned, "--csv"]) == 0
    assert capsys.readouterr().out == csv.get_data(as_text=True)
    svg = h.client.get(
        "/v1/oversight/reports", headers={**h.team.oversight.headers, "Accept": "image/svg+xml"}
    )
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.get_data()
    future = h.client.get(
        "/v1/oversight/reports?from=2099-01-01", headers=h.team.oversight.headers
    ).get_json()
    assert future["searches"]["total"] == 0 and future["entries"] == 0
    bad = h.client.get("/v1/oversight/reports?to=soon", headers=h.team.oversight.headers)
    assert bad.status_code == 422
    naive = h.client.get(
        "/v1/oversight/reports?from=2026-11-01T00:00:00", headers=h.team.oversight.headers
    )
    assert naive.status_code == 422
    assert "add an offset such as Z" in naive.get_json()["errors"][0]["detail"]


def _append(h: History, entry_type: EntryType, payload: dict[str, Any], actor_id: str) -> int:
    """Write an entry straight into the ledger, bypassing every service rule."""
    from ledger.entry import Actor

    rt = runtime_of(h.app)
    actor = Actor(kind="account", id=actor_id, agency=payload.get("agency_id"))
    with unit_of_work(rt.sessions) as session:
        return record(
            session, keys=rt.keys, entry_type=entry_type, actor=actor, payload=payload, now=rt.now()
        ).seq


def _forged_search(h: History, **changes: Any) -> dict[str, Any]:
    candidate = {"face_id": str(uuid.uuid4()), "score": "0.650000", "source_site": "lawful.net"}
    return {
        **h.search_payload,
        "search_id": str(uuid.uuid4()),
        "candidates": [candidate],
        **changes,
    }


def test_each_injected_violation_is_caught_at_its_seq(history: History) -> None:
    h = history
    client, team = h.client, h.team
    expected: set[tuple[int, str]] = set()
    inv = str(team.inv.account_id)
    # Forged searches spend a roomy basis of their own unless a test says otherwise.
    h.search_payload["legal_basis_id"] = approved(client, h.app, team, max_searches=50)["id"]

    suspended = ok(
        client.post(
            f"/v1/accounts/{team.sup2.account_id}/suspend",
            json={"reason": "inquiry"},
            headers=team.admin.headers,
        )
    )
    assert suspended["status"] == "suspended"
    seq = _append(
        h,
        EntryType.SEARCH_RUN,
        _forged_search(
            h, account_id=str(team.sup2.account_id), credential_id=str(team.sup2.credential_id)
        ),
        str(team.sup2.account_id),
    )
    expected.add((seq, "account-suspended"))

    pending = create(client, h.app, team.inv)
    seq = _append(h, EntryType.SEARCH_RUN, _forged_search(h, legal_basis_id=pending["id"]), inv)
    expected.add((seq, "basis-not-approved"))

    small = approved(client, h.app, team, max_searches=1)
    _append(h, EntryType.SEARCH_RUN, _forged_search(h, legal_basis_id=small["id"]), inv)
    seq = _append(h, EntryType.SEARCH_RUN, _forged_search(h, legal_basis_id=small["id"]), inv)
    expected.add((seq, "basis-quota"))

    issued = client.post("/v1/credentials", json={}, headers=team.inv.headers).get_json()
    credential = issued["credential"]["id"]
    revoked = client.delete(f"/v1/credentials/{credential}", headers=team.inv.headers)
    assert revoked.status_code == 204
    seq = _append(h, EntryType.SEARCH_RUN, _forged_search(h, credential_id=credential), inv)
    expected.add((seq, "credential-revoked"))

    lead = _forged_search(h)
    _append(h, EntryType.SEARCH_RUN, lead, inv)
    face = lead["candidates"][0]["face_id"]
    seq = _append(
        h,
        EntryType.REVIEW_RECORD,
        {
            "search_id": lead["search_id"],
            "searcher_id": inv,
            "reviewer_id": str(team.sup.account_id),
            "reviews": [{"face_id": face, "verdict": "possible_match", "note_sha256": "0" * 64}],
            "confirmed_leads": [face],
        },
        str(team.sup.account_id),
    )
    expected.add((seq, "lead-reviewers"))

    seq = _append(
        h,
        EntryType.SEARCH_RUN,
        _forged_search(
            h,
            candidates=[
                {"face_id": h.erased_face, "score": "0.700000", "source_site": "example.com"}
            ],
        ),
        inv,
    )
    expected.add((seq, "erased-face-returned"))
    seq = _append(
        h,
        EntryType.SEARCH_RUN,
        _forged_search(
            h,
            candidates=[
                {"face_id": str(uuid.uuid4()), "score": "0.700000", "source_site": h.blocked_site}
            ],
        ),
        inv,
    )
    expected.add((seq, "blocked-site-returned"))
    # A gallery dump: every face, whatever its score (the server refuses it; a forged or
    # older entry is caught by the audit alone, against the floor the entry carries).
    seq = _append(h, EntryType.SEARCH_RUN, _forged_search(h, threshold="-1.0000"), inv)
    expected.add((seq, "threshold-below-floor"))

    # Last: an urgent basis whose deadline passes with no request to settle it.
    urgent = approved(client, h.app, team, kind="urgent")
    created = next(
        json.loads(line)["seq"]
        for line in _lines(h.app)
        if json.loads(line)["type"] == "legal_basis:create"
        and json.loads(line)["payload"]["legal_basis"] == urgent["id"]
    )
    h.clock.append(h.clock[-1] + timedelta(hours=50))
    _append(
        h,
        EntryType.THUMBNAIL_VIEW,
        {"search_id": lead["search_id"], "face_id": face, "kind": "thumbnail"},
        inv,
    )
    expected.add((created, "urgent-not-lapsed"))

    report = audit_entries(_lines(h.app))
    found = {(v.seq, v.rule) for v in report.violations}
    assert found == expected, report.violations
