"""``ledger.audit``: a lawful history passes; each kind of violation is caught at its seq."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.audit import RULES, AuditError, Record, audit_entries, audit_records, load_records

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
AGENCY, OTHER = "agency-g", "agency-h"
ADMIN, SUP, SUP2, INV, INV_B = "acct-admin", "acct-sup", "acct-sup2", "acct-inv", "acct-inv-b"
CRED = {SUP: "cred-sup", SUP2: "cred-sup2", INV: "cred-inv", INV_B: "cred-inv-b"}
ADMIN2, OVERSIGHT, TWIN = "acct-admin2", "acct-oversight", "acct-twin"


def person(account: str) -> str:
    """The keyed person reference the ledger records for an account (a stand-in)."""
    return hashlib.sha256(f"person:{account}".encode()).hexdigest()


def ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class History:
    """Builds ledger records the way the services write their payloads."""

    records: list[Record] = field(default_factory=list)
    now: datetime = T0
    searches: int = 0

    def add(self, type_: str, actor: str, **payload: Any) -> int:
        self.now += timedelta(minutes=1)
        seq = len(self.records)
        self.records.append(Record(seq, ts(self.now), type_, actor, payload))
        return seq

    def later(self, delta: timedelta) -> None:
        self.now += delta

    def basis(
        self, basis: str, *, author: str = INV, max_searches: int = 5, urgent: bool = False
    ) -> int:
        return self.add(
            "legal_basis:create",
            author,
            legal_basis=basis,
            agency=AGENCY,
            case_number="PJ-1",
            offence_category="kidnapping_hostage_taking",
            authorisation_kind="urgent" if urgent else "judicial",
            expires_at=ts(self.now + timedelta(days=10)),
            ratification_deadline=ts(self.now + timedelta(hours=48)) if urgent else None,
            max_searches=max_searches,
        )

    def approve(self, basis: str, *, by: str = SUP, author: str = INV) -> int:
        return self.add("legal_basis:approve", by, legal_basis=basis, agency=AGENCY, author=author)

    def search(
        self,
        basis: str,
        *,
        by: str = INV,
        faces: tuple[str, ...] = ("face-1",),
        site: str = "a.example",
        agency: str = AGENCY,
        credential: str | None = None,
        threshold: str = "0.3500",
        pack: dict[str, str] | None = None,
    ) -> int:
        self.searches += 1
        return self.add(
            "search:run",
            by,
            search_id=f"search-{self.searches}",
            agency_id=agency,
            account_id=by,
            credential_id=credential or CRED.get(by, "cred-?"),
            legal_basis_id=basis,
            offence_category="kidnapping_hostage_taking",
            authorisation={"kind": "judicial", "reference": "JLD-1"},
            pack=pack or {"name": "starter", "version": "1.0.0", "match_threshold": "0.3500"},
            threshold=threshold,
            candidates=[{"face_id": f, "score": "0.61", "source_site": site} for f in faces],
        )

    def review(self, search: int, by: str, face: str, *, confirmed: bool = False) -> int:
        return self.add(
            "review:record",
            by,
            search_id=f"search-{search}",
            searcher_id=INV,
            reviewer_id=by,
            reviews=[{"face_id": face, "verdict": "possible_match"}],
            confirmed_leads=[face] if confirmed else [],
        )


def lawful() -> History:
    """Agencies, accounts, keys, bases (judicial, urgent ratified, urgent lapsed), searches,
    a confirmed lead, an erasure and an opt-out: every act within the rules."""
    h = History()
    h.add("admin:create", "cli", account=ADMIN, role="admin", person=person(ADMIN))
    h.add("admin:create", "cli", account=ADMIN2, role="admin", person=person(ADMIN2))
    h.add(
        "registration:approve",
        ADMIN,
        account=SUP,
        agency=AGENCY,
        role="supervisor",
        person=person(SUP),
    )
    h.add("registration:claim", "claimant", account=SUP, person=person(SUP))
    h.add("registration:approve", ADMIN, account="acct-o", agency=OTHER, role="supervisor")
    for account in (INV, SUP2, INV_B):
        agency = OTHER if account == INV_B else AGENCY
        h.add("account:request", SUP, request=f"req-{account}", person=person(account))
        h.add(
            "account:approve",
            ADMIN,
            request=f"req-{account}",
            account=account,
            agency=agency,
            role="investigator",
            person=person(account),
            requested_by=SUP,
        )
        h.add("account:claim", "claimant", account=account, person=person(account))
    # An oversight body, proposed by one admin and approved by another; an agency suspended
    # by a proposal of one admin that another confirmed.
    h.add("account:request", ADMIN, request="req-o", role="oversight", person=person(OVERSIGHT))
    h.add(
        "oversight:create",
        ADMIN2,
        request="req-o",
        account=OVERSIGHT,
        role="oversight",
        person=person(OVERSIGHT),
        requested_by=ADMIN,
    )
    h.add("proposal:create", ADMIN, proposal="prop-1", action="agency:suspend", target=OTHER)
    h.add("agency:suspend", ADMIN2, agency=OTHER, proposal="prop-1")
    h.add("agency:reinstate", ADMIN, agency=OTHER)
    for account, credential in CRED.items():
        h.add(
            "credential:issue",
            account,
            credential=credential,
            account=account,
            expires_at=ts(T0 + timedelta(days=90)),
        )
    h.basis("lb-1")
    h.approve("lb-1")
    h.search("lb-1")  # search-1
    h.review(1, SUP, "face-1")
    h.review(1, SUP2, "face-1", confirmed=True)
    h.basis("lb-u1", urgent=True)
    h.approve("lb-u1")
    h.search("lb-u1")  # search-2
    h.add(
        "legal_basis:ratify",
        SUP,
        legal_basis="lb-u1",
        agency=AGENCY,
        outcome="granted",
        expires_at=ts(h.now + timedelta(days=30)),
    )
    h.basis("lb-u2", urgent=True)
    h.approve("lb-u2")
    h.search("lb-u2")  # search-3
    h.later(timedelta(hours=49))
    h.add("legal_basis:lapse", "system", legal_basis="lb-u2", agency=AGENCY, cause="deadline")
    h.add("search:results_delete", "system", legal_basis_id="lb-u2", search_ids=["search-3"])
    h.search("lb-u1")  # search-4: ratified, so past the deadline is fine
    h.add("search:refuse", INV, reason="no-face", credential_id=CRED[INV], account_id=INV)
    erased = hashlib.sha256(b"face-9").hexdigest()
    h.add("erasure:run", ADMIN, kind="photo", faces=1, photos=1, face_id_sha256=[erased])
    h.add("source_policy:set", ADMIN, site="b.example", status="blocked", reference="r")
    h.add("source:purge", "system", site="b.example", photos=2, faces=3)
    h.add("source_policy:set", ADMIN, site="c.example", status="blocked", reference="r")
    h.add("source_policy:set", ADMIN, site="c.example", status="allowed", reference="r")
    h.search("lb-1", faces=("face-2",), site="c.example")  # search-5
    return h


def test_a_lawful_history_has_no_violation() -> None:
    report = audit_records(lawful().records)
    assert report.violations == ()
    assert report.ok and report.searches == 5
    assert report.to_json()["ok"] is True


def _suspended(h: History) -> int:
    h.add("account:suspend", ADMIN, account=INV, agency=AGENCY)
    return h.search("lb-1")


def _agency_suspended(h: History) -> int:
    h.add("agency:suspend", ADMIN, agency=AGENCY)
    return h.search("lb-1")


def _unapproved(h: History) -> int:
    h.basis("lb-9")
    return h.search("lb-9")


def _four_eyes(h: History) -> int:
    h.basis("lb-9", author=SUP)
    h.approve("lb-9", by=SUP, author=SUP)
    return h.search("lb-9")


def _over_quota(h: History) -> int:
    h.basis("lb-9", max_searches=2)
    h.approve("lb-9")
    h.search("lb-9")
    h.search("lb-9")
    return h.search("lb-9")


def _expired(h: History) -> int:
    h.later(timedelta(days=11))
    return h.search("lb-1")


def _revoked_basis(h: History) -> int:
    h.add("legal_basis:revoke", SUP, legal_basis="lb-1", agency=AGENCY)
    return h.search("lb-1")


def _other_agency(h: History) -> int:
    return h.search("lb-1", by=INV_B, agency=OTHER)


def _revoked_credential(h: History) -> int:
    h.add("credential:revoke", INV, credential=CRED[INV], account=INV)
    return h.search("lb-1")


def _foreign_credential(h: History) -> int:
    return h.search("lb-1", credential=CRED[SUP])


def _unknown_account(h: History) -> int:
    return h.search("lb-1", by="acct-ghost", credential=CRED[INV])


def _one_reviewer(h: History) -> int:
    search = h.searches + 1
    h.search("lb-1", faces=("face-7",))
    return h.review(search, SUP, "face-7", confirmed=True)


def _self_review(h: History) -> int:
    search = h.searches + 1
    h.search("lb-1", faces=("face-7",))
    return h.review(search, INV, "face-7")


def _erased_face(h: History) -> int:
    return h.search("lb-1", faces=("face-9",))


def _blocked_site(h: History) -> int:
    return h.search("lb-1", site="b.example")


def _unratified_use(h: History) -> int:
    h.basis("lb-9", urgent=True)
    h.approve("lb-9")
    h.later(timedelta(hours=49))
    return h.search("lb-9")


def _never_lapsed(h: History) -> int:
    seq = h.basis("lb-9", urgent=True)
    h.approve("lb-9")
    h.later(timedelta(hours=52))
    h.add("thumbnail:view", INV, search_id="search-1", face_id="face-1", kind="thumbnail")
    return seq


def _late_ratification(h: History) -> int:
    h.basis("lb-9", urgent=True)
    h.approve("lb-9")
    h.later(timedelta(hours=49))
    return h.add("legal_basis:ratify", SUP, legal_basis="lb-9", agency=AGENCY, outcome="granted")


def _results_kept(h: History) -> int:
    h.basis("lb-9", urgent=True)
    h.approve("lb-9")
    h.search("lb-9")
    h.later(timedelta(hours=49))
    return h.add("legal_basis:lapse", "system", legal_basis="lb-9", agency=AGENCY)


def _second_account(h: History, of: str) -> None:
    """Another account, TWIN, held by the person of ``of`` (one person, two accounts)."""
    h.add("account:request", SUP2, request="req-twin", person=person(of))
    h.add(
        "account:approve",
        ADMIN,
        request="req-twin",
        account=TWIN,
        agency=AGENCY,
        role="supervisor",
        person=person(of),
        requested_by=SUP2,
    )
    h.add(
        "credential:issue",
        TWIN,
        credential="cred-twin",
        account=TWIN,
        expires_at=ts(T0 + timedelta(days=90)),
    )


def _same_person_basis(h: History) -> int:
    _second_account(h, INV)
    h.basis("lb-9")
    return h.approve("lb-9", by=TWIN)


def _same_person_lead(h: History) -> int:
    _second_account(h, SUP)
    search = h.searches + 1
    h.search("lb-1", faces=("face-7",))
    h.review(search, SUP, "face-7")
    return h.review(search, TWIN, "face-7", confirmed=True)


def _self_review_by_person(h: History) -> int:
    _second_account(h, INV)
    search = h.searches + 1
    h.search("lb-1", faces=("face-7",))
    return h.review(search, TWIN, "face-7")


def _self_claimed(h: History) -> int:
    h.add("account:request", SUP, request="req-self", person=person(SUP))
    h.add(
        "account:approve",
        ADMIN,
        request="req-self",
        account=TWIN,
        agency=AGENCY,
        role="investigator",
        person=person(SUP),
        requested_by=SUP,
    )
    return h.add("account:claim", "claimant", account=TWIN, person=person(SUP))


def _one_admin_oversight(h: History) -> int:
    h.add("account:request", ADMIN, request="req-o2", role="oversight", person=person(TWIN))
    return h.add(
        "oversight:create",
        ADMIN,
        request="req-o2",
        account=TWIN,
        role="oversight",
        person=person(TWIN),
        requested_by=ADMIN,
    )


def _one_admin_suspension(h: History) -> int:
    h.add("proposal:create", ADMIN, proposal="prop-2", action="account:suspend", target=OVERSIGHT)
    return h.add("account:suspend", ADMIN, account=OVERSIGHT, proposal="prop-2")


def _below_floor(h: History) -> int:
    return h.search("lb-1", threshold="-1.0000")


def _floor_lowered_by_the_entry(h: History) -> int:
    # A server that declares a lower floor for a recognizer calibrated at 0.35 is still caught.
    pack = {
        "name": "starter",
        "version": "1",
        "recognizer_sha256": "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
        "match_threshold": "0.1000",
    }
    return h.search("lb-1", threshold="0.2000", pack=pack)


def _no_floor(h: History) -> int:
    return h.search("lb-1", pack={"name": "other", "version": "1"})


def _nan_threshold(h: History) -> int:
    return h.search("lb-1", threshold="nan")


INJECTIONS: dict[str, Callable[[History], int]] = {
    "basis-same-person": _same_person_basis,
    "lead-same-person": _same_person_lead,
    "account-self-claimed": _self_claimed,
    "oversight-four-eyes": _one_admin_oversight,
    "account-suspended": _suspended,
    "agency-suspended": _agency_suspended,
    "basis-not-approved": _unapproved,
    "basis-four-eyes": _four_eyes,
    "basis-quota": _over_quota,
    "basis-expired": _expired,
    "basis-ended": _revoked_basis,
    "basis-other-agency": _other_agency,
    "credential-revoked": _revoked_credential,
    "credential-not-owned": _foreign_credential,
    "account-unknown": _unknown_account,
    "lead-reviewers": _one_reviewer,
    "self-review": _self_review,
    "erased-face-returned": _erased_face,
    "blocked-site-returned": _blocked_site,
    "basis-unratified": _unratified_use,
    "urgent-not-lapsed": _never_lapsed,
    "ratification-late": _late_ratification,
    "lapse-results-kept": _results_kept,
    "threshold-below-floor": _below_floor,
}

# Each breaks the same rule another way.
MORE_INJECTIONS: dict[str, tuple[str, Callable[[History], int]]] = {
    "floor-lowered-by-the-entry": ("threshold-below-floor", _floor_lowered_by_the_entry),
    "no-floor": ("threshold-below-floor", _no_floor),
    "nan-threshold": ("threshold-below-floor", _nan_threshold),
}


@pytest.mark.parametrize("rule", sorted(INJECTIONS))
def test_each_violation_is_caught_at_its_seq(rule: str) -> None:
    h = lawful()
    seq = INJECTIONS[rule](h)
    report = audit_records(h.records)
    assert (seq, rule) in {(v.seq, v.rule) for v in report.violations}, report.violations
    assert rule in RULES and not report.ok


@pytest.mark.parametrize(
    ("inject", "rule"),
    [
        (_self_review_by_person, "self-review"),
        (_one_admin_suspension, "oversight-four-eyes"),
    ],
)
def test_one_person_behind_two_accounts_is_caught(
    inject: Callable[[History], int], rule: str
) -> None:
    assert_caught(inject, rule)


def assert_caught(inject: Callable[[History], int], rule: str) -> None:
    """The lawful history plus what ``inject`` adds breaks ``rule`` at the seq it returns."""
    h = lawful()
    seq = inject(h)
    report = audit_records(h.records)
    assert (seq, rule) in {(v.seq, v.rule) for v in report.violations}, report.violations


@pytest.mark.parametrize("case", sorted(MORE_INJECTIONS))
def test_each_way_of_breaking_a_rule_is_caught(case: str) -> None:
    rule, inject = MORE_INJECTIONS[case]
    h = lawful()
    seq = inject(h)
    assert (seq, rule) in {(v.seq, v.rule) for v in audit_records(h.records).violations}


def test_a_stricter_threshold_passes() -> None:
    h = lawful()
    h.search("lb-1", threshold="0.6000")
    assert audit_records(h.records).ok


def test_a_missing_lapse_waits_for_the_grace_period() -> None:
    h = lawful()
    h.basis("lb-9", urgent=True)
    h.approve("lb-9")
    h.later(timedelta(hours=48, minutes=10))
    h.add("thumbnail:view", INV, search_id="search-1", face_id="face-1", kind="thumbnail")
    assert audit_records(h.records).ok
    assert not audit_records(h.records, grace=timedelta(0)).ok


def test_entry_lines_are_read_and_checked_for_order() -> None:
    lines = [
        json.dumps(
            {"seq": r.seq, "ts": r.ts, "type": r.type, "actor": {"id": r.actor_id}, "payload": p}
        ).encode()
        for r in lawful().records
        for p in [dict(r.payload)]
    ]
    assert audit_entries(lines).ok
    assert load_records(lines)[3].type == "registration:claim"
    with pytest.raises(AuditError, match="expected seq 0"):
        audit_entries(lines[1:])
    with pytest.raises(AuditError, match="line 1"):
        audit_entries([b"[1, 2]"])


def _repeats(h: History, first: int | None, repeats: int, *, reason: str = "no-face") -> int:
    return h.add(
        "search:refuse_repeats",
        "facewarden",
        credential_id=CRED[INV],
        account_id=INV,
        agency_id=AGENCY,
        window={"start": ts(T0), "end": ts(T0 + timedelta(minutes=1))},
        refusals=[{"reason": reason, "first_seq": first, "repeats": repeats}],
    )


def test_counted_refusals_are_added_to_the_recorded_ones() -> None:
    h = lawful()
    first = next(r.seq for r in h.records if r.type == "search:refuse")
    _repeats(h, first, 41)
    report = audit_records(h.records)
    assert report.ok and report.refusals == 42
    assert report.to_json()["refusals"] == 42


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, first: _repeats(h, first + 1, 3),  # points at no refusal
        lambda h, first: _repeats(h, first, 3, reason="legal-basis-pending"),  # another reason
        lambda h, first: (_repeats(h, first, 3), _repeats(h, first, 3))[1],  # a window twice
        lambda h, first: _repeats(h, first, 0),  # counts nothing
    ],
    ids=["wrong-entry", "wrong-reason", "window-twice", "zero"],
)
def test_a_count_that_does_not_add_up_is_flagged(tamper: Callable[[History, int], int]) -> None:
    h = lawful()
    first = next(r.seq for r in h.records if r.type == "search:refuse")
    seq = tamper(h, first)
    report = audit_records(h.records)
    assert [(v.seq, v.rule) for v in report.violations] == [(seq, "refusal-count")]


ADMIN2 = "acct-admin-2"
URL_HMAC, URL_SHA = "a1" * 32, "b2" * 32


def erasures(h: History) -> History:
    """Probe erasures as the service writes them: a preview under a data-subject request,
    confirmed by a second admin; erasures by source URL, keyed and (older) plain. Lawful: each
    injection below must be the only violation."""
    h.add("admin:create", "cli", account=ADMIN2, role="admin")
    h.add(
        "erasure:preview",
        ADMIN,
        erasure_request_id="er-1",
        request_reference_hmac="d5" * 32,
        reason_sha256="c3" * 32,
        account_id=ADMIN,
        probe_sha256="d4" * 32,
        threshold="0.4000",
        matches=[{"face_id_sha256": "e5" * 32, "score": "0.712000"}],
    )
    h.add("erasure:thumbnail_view", ADMIN2, erasure_request_id="er-1", face_id_sha256="e5" * 32)
    h.add(
        "erasure:run",
        ADMIN2,
        kind="probe",
        erasure_request_id="er-1",
        requested_by=ADMIN,
        photos=1,
        faces=1,
        face_id_sha256=["e5" * 32],
    )
    h.add("gallery:enroll", "acct-cur", photo_id="p-1", source_url_hmac=URL_HMAC, face_ids=["f"])
    h.add("erasure:run", ADMIN, kind="source_url", source_url_hmac=URL_HMAC, photos=1, faces=1)
    h.add("gallery:enroll", "acct-cur", photo_id="p-2", source_url_sha256=URL_SHA, face_ids=["g"])
    h.add("erasure:run", ADMIN, kind="source_url", target_sha256=URL_SHA, photos=1, faces=1)
    return h


def _comparison_in(type_: str, **payload: Any) -> Callable[[History], int]:
    return lambda h: h.add(type_, ADMIN, **payload)


def _legacy_probe_erasure(h: History) -> int:
    return h.add("erasure:run", ADMIN, kind="probe", target_sha256="d4" * 32, photos=1, faces=1)


def _preview_without_reference(h: History) -> int:
    return h.add(
        "erasure:preview", ADMIN, erasure_request_id="er-9", request_reference_hmac=" ", matches=[]
    )


def _self_confirmed(h: History) -> int:
    h.add("erasure:preview", ADMIN, erasure_request_id="er-9", request_reference_hmac="e6" * 32)
    return h.add("erasure:run", ADMIN, kind="probe", erasure_request_id="er-9", faces=1)


def _unknown_request(h: History) -> int:
    return h.add("erasure:run", ADMIN2, kind="probe", erasure_request_id="er-404", faces=1)


def _keyed_url_enrolled_again(h: History) -> int:
    return h.add("gallery:enroll", "acct-cur", photo_id="p-3", source_url_hmac=URL_HMAC)


def _plain_url_enrolled_again(h: History) -> int:
    return h.add("gallery:enroll", "acct-cur", photo_id="p-4", source_url_sha256=URL_SHA)


ERASURE_INJECTIONS: dict[str, tuple[str, Callable[[History], int]]] = {
    "candidates in an enrolment": (
        "comparison-ungoverned",
        _comparison_in("gallery:enroll", photo_id="p", candidates=[{"face_id": "face-1"}]),
    ),
    "matches in a thumbnail view": (
        "comparison-ungoverned",
        _comparison_in("erasure:thumbnail_view", matches=[{"face_id_sha256": "e5" * 32}]),
    ),
    "a probe in a new entry type": (
        "comparison-ungoverned",
        _comparison_in("gallery:dedupe", probe_sha256="d4" * 32),
    ),
    "results in a refusal": (
        "comparison-ungoverned",
        _comparison_in("search:refuse", probe_sha256="d4" * 32, candidates=[{"face_id": "f"}]),
    ),
    "a probe erasure without a preview": ("comparison-ungoverned", _legacy_probe_erasure),
    "a preview without its request": ("preview-no-reference", _preview_without_reference),
    "a self-confirmed erasure": ("erasure-four-eyes", _self_confirmed),
    "an erasure of no preview": ("erasure-request-unknown", _unknown_request),
    "an erased keyed URL enrolled": ("erased-url-enrolled", _keyed_url_enrolled_again),
    "an erased plain URL enrolled": ("erased-url-enrolled", _plain_url_enrolled_again),
}


@pytest.mark.parametrize("case", sorted(ERASURE_INJECTIONS))
def test_each_ungoverned_comparison_or_erasure_is_caught_at_its_seq(case: str) -> None:
    rule, inject = ERASURE_INJECTIONS[case]
    h = erasures(lawful())
    seq = inject(h)
    report = audit_records(h.records)
    assert {(v.seq, v.rule) for v in report.violations} == {(seq, rule)}, report.violations
    assert rule in RULES


def _session(
    h: History, *, hours: int = 12, by: str = INV, session: str = "session-1", enrol: bool = True
) -> str:
    """``by`` signs in to the console with a passkey: the session is its searches' credential."""
    if enrol:
        h.add("passkey:enrol", by, account=by, passkey=f"passkey-{by}", credential_sha256="00")
    h.add(
        "session:start",
        by,
        account=by,
        session=session,
        passkey=f"passkey-{by}",
        expires_at=ts(h.now + timedelta(hours=hours)),
    )
    return session


def test_a_search_from_a_console_session_is_lawful() -> None:
    h = lawful()
    h.search("lb-1", credential=_session(h))
    assert audit_records(h.records).violations == ()


def _revoked_passkey(h: History) -> int:
    session = _session(h)
    h.add("passkey:revoke", INV, account=INV, passkey=f"passkey-{INV}")
    return h.search("lb-1", credential=session)


def _suspended_then_reinstated(h: History) -> int:
    session = _session(h)
    h.add("account:suspend", ADMIN, account=INV, reason="inquiry")
    h.add("account:reinstate", ADMIN, account=INV, reason="cleared")
    return h.search("lb-1", credential=session)


def _expired_session(h: History) -> int:
    session = _session(h, hours=1)
    h.later(timedelta(hours=2))
    return h.search("lb-1", credential=session)


@pytest.mark.parametrize(
    ("inject", "rule"),
    [
        (lambda h: h.search("lb-1", credential="session-forged"), "credential-unknown"),
        (lambda h: h.search("lb-1", by=SUP, credential=_session(h)), "credential-not-owned"),
        (_expired_session, "credential-expired"),
        (_revoked_passkey, "credential-revoked"),
        (_suspended_then_reinstated, "credential-revoked"),
    ],
)
def test_a_search_from_a_session_is_checked_as_a_key_is(
    inject: Callable[[History], int], rule: str
) -> None:
    assert_caught(inject, rule)


def _start(h: History, **payload: Any) -> int:
    return h.add("session:start", str(payload.get("account", INV)), **payload)


@pytest.mark.parametrize(
    "case",
    ["takes-a-key-id", "ten-years", "no-passkey", "foreign-passkey", "no-session", "null"],
)
def test_a_sign_in_that_cannot_be_lawful_is_flagged_and_grants_nothing(case: str) -> None:
    """A forged session:start neither passes the audit nor launders the searches after it."""
    h = lawful()
    h.add("passkey:enrol", INV, account=INV, passkey="pk-inv", credential_sha256="00")
    h.add("passkey:enrol", SUP, account=SUP, passkey="pk-sup", credential_sha256="00")
    end = ts(h.now + timedelta(hours=1))
    session = {"takes-a-key-id": CRED[SUP]}.get(case, "session-x")
    payload: dict[str, Any] = {
        "account": INV,
        "session": session,
        "passkey": "pk-inv",
        "expires_at": end,
    }
    if case == "ten-years":
        payload["expires_at"] = ts(h.now + timedelta(days=3650))
    elif case == "no-passkey":
        payload["passkey"] = "pk-ghost"
    elif case == "foreign-passkey":
        payload["passkey"] = "pk-sup"
    elif case == "no-session":
        del payload["session"]
    elif case == "null":
        payload["session"] = None
        session = "None"
    started = _start(h, **payload)
    h.later(timedelta(days=3) if case == "ten-years" else timedelta(minutes=5))
    searched = h.search("lb-1", credential=session)
    found = {(v.seq, v.rule) for v in audit_records(h.records).violations}
    assert (started, "session-invalid") in found, found
    assert any(seq == searched for seq, _ in found), found
