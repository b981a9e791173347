"""No anonymous or suspended client floods the service: failed authentications lock out per key
id and (for keys that do not exist) per address, costly requests are rate-limited per credential
and per account, and refusals grow the ledger by a bounded number of entries."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image as PILImage
from sqlalchemy import select
from werkzeug.exceptions import TooManyRequests

from api import ratelimit
from api.context import utcnow
from api.settings import Settings
from governance.identity.tokens import new_api_key
from governance.search.models import RefusalCount
from governance.search.refusals import (
    MAX_FULL_REFUSALS,
    REFUSAL_WINDOW,
    record_refusal,
    summarize_refusals,
    window_start,
)
from ledger.audit import Record, audit_records, load_records
from ledger.entry import format_ts
from ledger.report import build_report
from ledger.storage import entries
from tests.api.bases import Team, approved, create, make_team, ok, principal_of
from tests.api.faces import enroll
from tests.api.helpers import (
    Agent,
    bearer,
    fresh_address,
    ledger_size,
    make_account,
    make_admin,
    make_staff,
    problem,
    runtime_of,
)

Tighten = Callable[..., Settings]


@pytest.fixture(scope="module")
def team(app: Flask) -> Team:
    return make_team(app)


@pytest.fixture
def tighten(app: Flask) -> Iterator[Tighten]:
    """Swap the running app's settings for ones with other limits; restored after the test."""
    rt = runtime_of(app)
    original = rt.settings

    def apply(**values: Any) -> Settings:
        rt.settings = replace(original, **values)
        return rt.settings

    yield apply
    rt.settings = original


def _me(client: FlaskClient, token: str, address: str) -> Any:
    return client.get(
        "/v1/accounts/me", headers=bearer(token), environ_base={"REMOTE_ADDR": address}
    )


def _limit(app: Flask) -> int:
    return int(runtime_of(app).settings.auth_failure_rate_limit.split()[0])


def test_garbage_keys_from_an_address_never_lock_out_a_valid_key_from_it(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    address = fresh_address()
    for _ in range(_limit(app)):
        assert _me(client, new_api_key().token, address).status_code == 401
    assert _me(client, "not-a-key", address).status_code == 429  # malformed: per address too
    refused = problem(_me(client, new_api_key().token, address), 429)
    assert "address" in refused["detail"]
    assert int(_me(client, new_api_key().token, address).headers["Retry-After"]) >= 1
    # The valid key from the very same address keeps working while the garbage is refused.
    assert _me(client, team.sup.token, address).status_code == 200
    assert ok(_me(client, team.inv.token, address))["id"] == str(team.inv.account_id)


def test_a_key_id_under_brute_force_is_locked_whatever_the_address(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    victim = make_account(client, team.admin, team.sup, "investigator")
    lookup_id = victim.token.split("_")[1]
    for _ in range(_limit(app)):
        guess = f"fw_{lookup_id}_{new_api_key().secret}"
        assert _me(client, guess, fresh_address()).status_code == 401
    # Every address is refused for this key id now, with its right secret too ...
    locked = _me(client, victim.token, fresh_address())
    assert "this key" in problem(locked, 429)["detail"]
    assert int(locked.headers["Retry-After"]) >= 1
    # ... and no other key is.
    assert _me(client, team.inv.token, fresh_address()).status_code == 200


def _search(client: FlaskClient, agent: Agent, basis_id: str, image: bytes = b"GIF89a") -> Any:
    return client.post(
        "/v1/searches",
        data={
            "image": (io.BytesIO(image), "probe.jpg"),
            "legal_basis_id": basis_id,
            "purpose": "identify the suspect in the CCTV still of 2026-11-20",
        },
        content_type="multipart/form-data",
        headers=agent.headers,
    )


def test_searches_are_rate_limited_per_credential_before_anything_is_recorded(
    app: Flask, client: FlaskClient, team: Team, tighten: Tighten
) -> None:
    tighten(search_rate_limit="3 per minute")
    investigator = make_account(client, team.admin, team.sup, "investigator")
    pending = create(client, app, investigator)
    for _ in range(3):
        assert _search(client, investigator, pending["id"]).status_code == 403
    before = ledger_size(app)
    refused = problem(_search(client, investigator, pending["id"]), 429)
    assert "this API key" in refused["detail"] and "3 per 1 minute" in refused["detail"]
    assert int(client.post("/v1/searches", headers=investigator.headers).headers["Retry-After"]) > 0
    assert ledger_size(app) == before  # a rate-limited attempt writes nothing
    # A colleague's credential has its own budget.
    colleague = make_account(client, team.admin, team.sup, "investigator")
    assert _search(client, colleague, pending["id"]).status_code == 403


def test_searches_are_rate_limited_per_account_across_its_credentials(
    app: Flask, client: FlaskClient, team: Team, tighten: Tighten
) -> None:
    investigator = make_account(client, team.admin, team.sup, "investigator")
    issued = client.post("/v1/credentials", json={}, headers=investigator.headers)
    assert issued.status_code == 201
    second = issued.get_json()
    other_key = replace(investigator, token=second["api_key"])
    tighten(search_rate_limit="3 per minute", account_rate_limit="5 per minute")
    pending = create(client, app, investigator)
    for agent in (investigator, investigator, investigator, other_key, other_key):
        assert _search(client, agent, pending["id"]).status_code == 403
    refused = problem(_search(client, other_key, pending["id"]), 429)
    assert "this account" in refused["detail"]


def test_a_suspended_key_is_rate_limited_too(
    app: Flask, client: FlaskClient, team: Team, tighten: Tighten
) -> None:
    investigator = make_account(client, team.admin, team.sup, "investigator")
    pending = create(client, app, investigator)
    ok(
        client.post(
            f"/v1/accounts/{investigator.account_id}/suspend",
            json={"reason": "under internal investigation"},
            headers=team.admin.headers,
        )
    )
    tighten(search_rate_limit="2 per minute")
    for _ in range(2):
        assert problem(_search(client, investigator, pending["id"]), 403)["type"] == (
            "/problems/account-suspended"
        )
    before = ledger_size(app)
    problem(_search(client, investigator, pending["id"]), 429)
    assert ledger_size(app) == before


def test_enrolment_and_erasure_previews_share_the_per_credential_limit(
    app: Flask, client: FlaskClient, team: Team, tighten: Tighten
) -> None:
    tighten(search_rate_limit="1 per minute")
    curator = make_staff(client, team.admin, "curator")
    assert enroll(client, curator, b"GIF89a").status_code == 415
    problem(enroll(client, curator, b"GIF89a"), 429)

    admin = make_admin(app)
    assert _preview(client, admin).status_code == 415
    problem(_preview(client, admin), 429)


def _preview(client: FlaskClient, admin: Agent) -> Any:
    return client.post(
        "/v1/erasures/preview",
        data={
            "image": (io.BytesIO(b"GIF89a"), "p.jpg"),
            "request_reference": "DSR-2026-0001",
            "reason": "Data-subject erasure request received by post",
        },
        content_type="multipart/form-data",
        headers=admin.headers,
    )


@pytest.fixture
def pinned(app: Flask) -> Iterator[Callable[[datetime], None]]:
    """Pin the app's clock (the refusal windows follow it; the rate limiter does not)."""
    rt = runtime_of(app)

    def pin(when: datetime) -> None:
        rt.clock = lambda: when

    yield pin
    rt.clock = utcnow


def _records(app: Flask, credential_id: UUID | None, after: int = -1) -> list[Record]:
    with runtime_of(app).engine.connect() as conn:
        rows = conn.execute(
            select(entries.c.body).where(entries.c.seq > after).order_by(entries.c.seq)
        )
        records = load_records(bytes(r.body) for r in rows)
    return [
        r
        for r in records
        if credential_id is None or r.payload.get("credential_id") == str(credential_id)
    ]


def _suspended(client: FlaskClient, team: Team) -> Agent:
    investigator = make_account(client, team.admin, team.sup, "investigator")
    ok(
        client.post(
            f"/v1/accounts/{investigator.account_id}/suspend",
            json={"reason": "under internal investigation"},
            headers=team.admin.headers,
        )
    )
    return investigator


def test_a_suspended_flood_adds_two_entries_and_every_refusal_is_accounted_for(
    app: Flask,
    client: FlaskClient,
    team: Team,
    tighten: Tighten,
    pinned: Callable[[datetime], None],
) -> None:
    tighten(search_rate_limit="1000 per minute", account_rate_limit="1000 per minute")
    basis = create(client, app, team.inv)
    flooder = _suspended(client, team)
    window = window_start(utcnow() + timedelta(minutes=5))
    pinned(window + timedelta(seconds=1))
    before = ledger_size(app)
    started = time.perf_counter()
    for _ in range(200):
        assert _search(client, flooder, basis["id"]).status_code == 403
    elapsed = time.perf_counter() - started
    flood = _records(app, flooder.credential_id, after=before - 1)
    assert [r.type for r in flood] == ["search:refuse"]  # 200 refusals, one entry so far
    with runtime_of(app).engine.connect() as conn:  # the other 199 are counted, durably
        counted = conn.execute(
            select(RefusalCount.repeats).where(RefusalCount.credential_id == flooder.credential_id)
        ).scalar_one()
    assert counted == 199

    # The next window's first refusal puts the closed window's count on record first.
    pinned(window + REFUSAL_WINDOW + timedelta(seconds=1))
    assert _search(client, flooder, basis["id"]).status_code == 403
    mine = _records(app, flooder.credential_id)
    assert [r.type for r in mine] == ["search:refuse", "search:refuse_repeats", "search:refuse"]
    summary = mine[1].payload
    assert summary["refusals"] == [
        {"reason": "account-suspended", "first_seq": mine[0].seq, "repeats": 199}
    ]
    assert summary["window"]["start"] == format_ts(window)
    # The content audit and the report count all 201 refusals, and find nothing wrong.
    audit = audit_records(_records(app, None))
    assert [v for v in audit.violations if v.rule == "refusal-count"] == []
    report = build_report(mine)
    assert report["refused"] == {
        "total": 201,
        "by_reason": {"account-suspended": 201},
        "without_face": 0,
    }
    print(f"\n200 refusals in {elapsed:.2f} s: {len(flood)} entry in the window, then 1 summary")


def test_refusals_of_many_reasons_add_at_most_the_cap_then_one_summary(
    app: Flask, client: FlaskClient, team: Team
) -> None:
    agent = make_account(client, team.admin, team.sup, "investigator")
    rt = runtime_of(app)
    now = window_start(utcnow() + timedelta(minutes=10)) + timedelta(seconds=2)
    for reason in [f"reason-{i}" for i in range(12)] * 3:
        with rt.units(now)() as work:
            record_refusal(
                work,
                principal=principal_of(agent),
                legal_basis_id=None,
                reason=reason,
                probe_sha256=None,
            )
    with rt.units(now + REFUSAL_WINDOW)() as work:
        assert summarize_refusals(work) >= 1
    kinds = [r.type for r in _records(app, agent.credential_id)]
    assert kinds == ["search:refuse"] * MAX_FULL_REFUSALS + ["search:refuse_repeats"]
    assert build_report(_records(app, agent.credential_id))["refused"]["total"] == 36


def test_a_probe_over_the_probe_cap_is_refused_naming_it_and_still_rate_limited(
    app: Flask, client: FlaskClient, team: Team, tighten: Tighten
) -> None:
    probe_cap = runtime_of(app).settings.max_probe_pixels
    assert probe_cap < runtime_of(app).settings.max_image_pixels
    width = 4000
    height = probe_cap // width + 1  # just over the probe cap, far under the gallery's
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height)).save(buffer, "JPEG", quality=10)
    investigator = make_account(client, team.admin, team.sup, "investigator")
    basis = approved(client, app, team)
    tighten(search_rate_limit="1 per minute")
    refused = problem(_search(client, investigator, basis["id"], buffer.getvalue()), 413)
    assert refused["type"] == "/problems/image-too-large"
    assert "FACEWARDEN_MAX_PROBE_PIXELS" in refused["detail"]
    problem(_search(client, investigator, basis["id"], buffer.getvalue()), 429)


def test_concurrent_costly_requests_cannot_all_pass_a_test_made_before_any_spent(
    app: Flask, team: Team, tighten: Tighten, monkeypatch: pytest.MonkeyPatch
) -> None:
    tighten(search_rate_limit="3 per minute", account_rate_limit="1000 per minute")
    principal = principal_of(team.sup2)
    storage = ratelimit.limiter.limiter
    real_hit = storage.hit
    # Every request reaches its spend together, as threads of a worker can.
    together = threading.Barrier(8, timeout=10)

    def hit_together(item: Any, namespace: str, *keys: str, **kwargs: Any) -> bool:
        if namespace == ratelimit._COSTLY_PER_CREDENTIAL:
            together.wait()
        return bool(real_hit(item, namespace, *keys, **kwargs))

    monkeypatch.setattr(storage, "hit", hit_together)
    passed: list[bool] = []

    def request() -> None:
        with app.app_context():
            try:
                ratelimit.check_costly_request(principal)
            except TooManyRequests:
                passed.append(False)
            else:
                passed.append(True)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(passed) == [False] * 5 + [True] * 3
