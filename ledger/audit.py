"""Content audit of a ledger: were the governed acts it records allowed when they happened?

Computed from the entries alone (no server state, no database): replay the log in seq order,
keep what each rule needs (accounts, agencies, credentials, legal bases, reviews, erasures,
source policies) and list every entry that broke a rule, with its seq: searches, reviews, and
any face compared with the gallery outside ``search:run`` and ``erasure:preview``. Run it on a
log that ``ledger.verify`` accepted; it checks content, not signatures. Imports only the
standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "KNOWN_FLOORS",
    "RULES",
    "AuditError",
    "AuditReport",
    "Record",
    "Violation",
    "audit_entries",
    "audit_records",
    "load_records",
]

# Rule name -> what it means (the CLI's --help and docs/ledger.md list them).
RULES: Mapping[str, str] = {
    "account-unknown": "the searching account was never approved in the log",
    "account-suspended": "the searching account was suspended",
    "agency-suspended": "the searching account's agency was suspended",
    "account-agency-mismatch": "the search names an agency other than the account's",
    "credential-unknown": "the credential used was never issued in the log",
    "credential-not-owned": "the credential used belongs to another account",
    "credential-revoked": "a credential was used after its revocation",
    "credential-expired": "a credential was used after it expired",
    "session-invalid": "a console sign-in names no live passkey of its account, another "
    "account's sign-in, a credential id issued before, or lasts more than 12 hours",
    "basis-unknown": "the search names a legal basis the log never recorded",
    "basis-other-agency": "the legal basis belongs to another agency",
    "basis-not-approved": "the legal basis was not approved at the time",
    "basis-four-eyes": "the legal basis was approved by its own author",
    "basis-ended": "the legal basis was revoked, rejected, expired or lapsed before",
    "basis-expired": "the search came after the legal basis's expiry",
    "basis-unratified": "an urgent basis was used after its ratification deadline, unratified",
    "basis-quota": "more searches than the legal basis's max_searches",
    "ratification-late": "an urgent basis was ratified after its deadline",
    "urgent-not-lapsed": "an urgent basis passed its deadline unratified and never lapsed",
    "lapse-results-kept": "a lapsed basis's searches were not all deleted",
    "self-review": "a searcher reviewed their own search (from any of their accounts)",
    "lead-reviewers": "a confirmed lead lacks two distinct reviewers saying possible_match",
    "basis-same-person": "a legal basis was approved by another account of its author's person",
    "lead-same-person": "a confirmed lead's two reviewers, or a reviewer and the searcher, are "
    "one person",
    "account-self-claimed": "an account was claimed by the person who requested it",
    "oversight-four-eyes": "an act silencing oversight was done without a second, distinct "
    "administrator",
    "erased-face-returned": "a search returned a face after its erasure",
    "blocked-site-returned": "a search returned a face of a blocked source site",
    "refusal-count": "a count of repeated refusals names no refusal of its credential and "
    "reason, or counts a window twice",
    "comparison-ungoverned": "an entry other than search:run or erasure:preview compared a face "
    "with the gallery (it carries a probe or a comparison's results)",
    "preview-no-reference": "an erasure preview names no data-subject request",
    "erasure-request-unknown": "a probe erasure names no erasure preview of the log",
    "erasure-four-eyes": "a probe erasure was confirmed by the admin who asked for its preview",
    "erased-url-enrolled": "a photo was enrolled from a source URL erased before",
    "threshold-below-floor": (
        "a search's threshold was below its model pack's calibrated one, or it names no floor"
    ),
}

# Calibrated floors of known recognizers (docs/models.md), by sha256: an entry cannot lower
# them by declaring a smaller match_threshold, and entries written before entries carried
# their floor are checked against them.
KNOWN_FLOORS: Mapping[str, float] = {
    "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581": 0.35,
}

# The two entry types that may record a comparison of a face with the gallery.
_GOVERNED_COMPARISONS = frozenset({"search:run", "erasure:preview"})
# Payload members that carry a comparison's results, or the probe compared.
_RESULT_MEMBERS = ("candidates", "matches", "hits", "scores")
_PROBE_MEMBERS = ("probe_sha256", "probe")
# A refused search names its probe but compared nothing.
_PROBE_WITHOUT_RESULTS = frozenset({"search:refuse"})

_ENDED = {
    "legal_basis:revoke",
    "legal_basis:reject",
    "legal_basis:expire",
    "legal_basis:lapse",
}
# The longest a console session may last (governance's absolute session lifetime).
SESSION_LIFETIME = timedelta(hours=12)
_SUSPEND = {"account:suspend": True, "account:reinstate": False}
_AGENCY_SUSPEND = {"agency:suspend": True, "agency:reinstate": False}
_ACCOUNT_CREATED = {
    "registration:approve",
    "account:approve",
    "admin:create",
    "oversight:create",
    "curator:create",
}
_CLAIMS = {"registration:claim", "account:claim"}
# Acts that need two administrators: the entry must name a proposal made by someone else.
_SILENCING = {"agency:suspend", "account:suspend", "credential:revoke"}
_DEFAULT_GRACE = timedelta(hours=1)


class AuditError(ValueError):
    """Entry lines that are not ledger entries at all (the verifier would have said so)."""


@dataclass(frozen=True, slots=True)
class Record:
    """The fields of one entry the audit and the report read."""

    seq: int
    ts: str
    type: str
    actor_id: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: the entry's seq, the rule's name, and what happened."""

    seq: int
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What the audit looked at and what it found, violations in seq order."""

    entries: int
    searches: int
    violations: tuple[Violation, ...]
    # Refused searches: each search:refuse entry plus the repeats search:refuse_repeats counts.
    refusals: int = 0

    @property
    def ok(self) -> bool:
        """True when no rule was broken."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "searches": self.searches,
            "refusals": self.refusals,
            "violations": [
                {"seq": v.seq, "rule": v.rule, "message": v.message} for v in self.violations
            ],
        }


def load_records(lines: Iterable[bytes]) -> list[Record]:
    """Parse entry lines (canonical JSON, already verified) into records.

    Raises AuditError for a line that is not a JSON entry object.
    """
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            obj = json.loads(line)
            actor = obj.get("actor") or {}
            out.append(
                Record(
                    seq=int(obj["seq"]),
                    ts=str(obj["ts"]),
                    type=str(obj["type"]),
                    actor_id=str(actor.get("id", "")),
                    payload=dict(obj.get("payload") or {}),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuditError(f"line {number} is not a ledger entry: {exc}") from exc
    return out


def _when(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@dataclass(slots=True)
class _Basis:
    seq: int
    agency: str
    author: str
    max_searches: int
    expires_at: str
    deadline: str | None
    approver: str | None = None
    ended: str | None = None
    ratified: str | None = None  # the outcome, once recorded
    lapsed_at: int | None = None
    used: int = 0
    searches: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Replay:
    """What the log has said so far, as the audit walks it."""

    accounts: dict[str, str | None] = field(default_factory=dict)  # account -> agency
    roles: dict[str, str] = field(default_factory=dict)  # account -> role
    # account -> keyed person references (creation, claim): the ledger's only view of people
    persons: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    requests: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # -> requester
    requested_by: dict[str, str] = field(default_factory=dict)  # account -> requesting account
    proposals: dict[str, str] = field(default_factory=dict)  # proposal -> proposer
    suspended: set[str] = field(default_factory=set)
    agencies_suspended: set[str] = field(default_factory=set)
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> account, expiry
    passkeys: dict[str, str] = field(default_factory=dict)  # passkey -> account
    passkeys_revoked: set[str] = field(default_factory=set)
    # console session -> account, expiry, the passkey that opened it
    sessions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    revoked: dict[str, int] = field(default_factory=dict)
    bases: dict[str, _Basis] = field(default_factory=dict)
    searchers: dict[str, str] = field(default_factory=dict)  # search -> account
    said_match: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    erased: dict[str, int] = field(default_factory=dict)  # sha256(face id) -> erasure seq
    blocked: dict[str, int] = field(default_factory=dict)  # site -> seq of the block
    deleted: set[str] = field(default_factory=set)  # searches whose results were deleted
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)  # seq -> credential, reason
    counted: set[tuple[str, str]] = field(default_factory=set)  # (credential, window start)
    previews: dict[str, str] = field(default_factory=dict)  # erasure request -> requester
    # Erased source URLs, keyed by the field that holds the digest: an HMAC under the log's
    # secret (``source_url_hmac``) or, in older entries, a plain SHA-256; like with like.
    erased_urls: dict[tuple[str, str], int] = field(default_factory=dict)
    found: list[Violation] = field(default_factory=list)

    def flag(self, r: Record, rule: str, message: str) -> None:
        self.found.append(Violation(r.seq, rule, message))

    def same_person(self, first: str, second: str) -> bool:
        """Whether two accounts are one person, as far as the log tells (an account is its
        own person; without person references the log cannot tell otherwise).
        """
        return first == second or bool(
            self.persons.get(first, set()) & self.persons.get(second, set())
        )


def _track_person(state: _Replay, r: Record) -> None:
    p = r.payload
    account = str(p.get("account"))
    if p.get("person"):
        state.persons[account].add(str(p["person"]))
    if r.type in _ACCOUNT_CREATED:
        state.roles[account] = str(p.get("role"))
        requester = p.get("requested_by") or state.requests.get(str(p.get("request")), ("",))[0]
        if requester:
            state.requested_by[account] = str(requester)
    if r.type == "oversight:create":
        requester = state.requested_by.get(account)
        if requester is None or state.same_person(requester, r.actor_id):
            state.flag(
                r,
                "oversight-four-eyes",
                f"oversight account {account} was created by the person who proposed it",
            )
    if r.type in _CLAIMS:
        requester = state.requested_by.get(account)
        if requester is not None and state.same_person(requester, account) and p.get("person"):
            # The claim went to the requester's own person: one person, two accounts.
            state.flag(
                r,
                "account-self-claimed",
                f"account {account} was claimed by the person of account {requester}, "
                "who requested it",
            )


def _check_silencing(state: _Replay, r: Record) -> None:
    p = r.payload
    if r.type == "account:suspend" and state.roles.get(str(p.get("account"))) != "oversight":
        return
    if r.type == "credential:revoke":
        owner = str(p.get("account"))
        if state.roles.get(owner) != "oversight" or state.same_person(owner, r.actor_id):
            return
    proposer = state.proposals.get(str(p.get("proposal")))
    if proposer is None or state.same_person(proposer, r.actor_id):
        state.flag(
            r,
            "oversight-four-eyes",
            f"{r.type} by account {r.actor_id} without a proposal of another administrator",
        )


def _track(state: _Replay, r: Record) -> None:
    p = r.payload
    if r.type == "account:request":
        state.requests[str(p.get("request"))] = (r.actor_id, p.get("person"))
    elif r.type == "proposal:create":
        state.proposals[str(p.get("proposal"))] = r.actor_id
    if r.type in _ACCOUNT_CREATED or r.type in _CLAIMS:
        _track_person(state, r)
    if r.type in _SILENCING:
        _check_silencing(state, r)
    if r.type in _ACCOUNT_CREATED and p.get("account"):
        state.accounts[str(p["account"])] = p.get("agency")
    elif r.type in _SUSPEND:
        (state.suspended.add if _SUSPEND[r.type] else state.suspended.discard)(str(p["account"]))
        if _SUSPEND[r.type]:  # a suspension ends the account's sessions for good
            for session, (holder, _, _) in state.sessions.items():
                if holder == str(p["account"]):
                    state.revoked.setdefault(session, r.seq)
    elif r.type in _AGENCY_SUSPEND:
        target = state.agencies_suspended
        (target.add if _AGENCY_SUSPEND[r.type] else target.discard)(str(p["agency"]))
    elif r.type == "credential:issue":
        state.credentials[str(p["credential"])] = (str(p["account"]), str(p["expires_at"]))
    elif r.type == "session:start":
        _track_session(state, r)
    elif r.type == "passkey:enrol" and isinstance(p.get("passkey"), str):
        state.passkeys.setdefault(p["passkey"], str(p.get("account")))
    elif r.type == "passkey:revoke":
        # Revoking a passkey ends the sessions it opened.
        state.passkeys_revoked.add(str(p.get("passkey")))
        for session, (_, _, passkey) in state.sessions.items():
            if passkey == str(p.get("passkey")):
                state.revoked.setdefault(session, r.seq)
    elif r.type == "credential:revoke":
        state.revoked.setdefault(str(p["credential"]), r.seq)
    elif r.type == "erasure:run":
        for digest in p.get("face_id_sha256") or []:
            state.erased.setdefault(str(digest), r.seq)
        for member, digest in _url_digests(p, erasure=True):
            state.erased_urls.setdefault((member, digest), r.seq)
    elif r.type == "erasure:preview":
        state.previews[str(p.get("erasure_request_id"))] = r.actor_id
    elif r.type == "source_policy:set":
        if p.get("status") == "blocked":
            state.blocked.setdefault(str(p["site"]), r.seq)
        else:
            state.blocked.pop(str(p["site"]), None)
    elif r.type in ("search:results_delete", "search:purge"):
        state.deleted.update(str(s) for s in p.get("search_ids") or [])
    elif r.type.startswith("legal_basis:"):
        _track_basis(state, r)


def _track_basis(state: _Replay, r: Record) -> None:
    p = r.payload
    basis_id = str(p.get("legal_basis"))
    if r.type == "legal_basis:create":
        state.bases[basis_id] = _Basis(
            seq=r.seq,
            agency=str(p.get("agency")),
            author=r.actor_id,
            max_searches=int(p.get("max_searches") or 0),
            expires_at=str(p.get("expires_at")),
            deadline=p.get("ratification_deadline"),
        )
        return
    basis = state.bases.get(basis_id)
    if basis is None:
        return
    if r.type == "legal_basis:approve":
        basis.approver = r.actor_id
        if r.actor_id != basis.author and state.same_person(r.actor_id, basis.author):
            state.flag(
                r,
                "basis-same-person",
                f"legal basis {basis_id} was approved by account {r.actor_id}, held by the "
                f"person of its author {basis.author}",
            )
    elif r.type == "legal_basis:ratify":
        basis.ratified = str(p.get("outcome"))
        if basis.deadline is not None and r.ts > basis.deadline:
            state.flag(r, "ratification-late", f"ratified at {r.ts}, deadline {basis.deadline}")
        if basis.ratified == "granted" and p.get("expires_at"):
            basis.expires_at = str(p["expires_at"])
    if r.type in _ENDED and basis.ended is None:
        basis.ended = r.type
    if r.type == "legal_basis:lapse":
        basis.lapsed_at = r.seq


def _track_session(state: _Replay, r: Record) -> None:
    """A console sign-in: the session is its account's credential until its end, if it was
    opened with a live passkey of that account, by that account, for at most 12 hours."""
    p = r.payload
    fields = [p.get(name) for name in ("session", "account", "passkey", "expires_at")]
    if not all(isinstance(value, str) and value for value in fields):
        state.flag(
            r, "session-invalid", "the session:start lacks a session, account, passkey or end"
        )
        return
    session, account, passkey, expires_at = (str(value) for value in fields)
    problem = None
    if session in state.sessions or session in state.credentials:
        problem = f"session {session} reuses the id of a credential issued before"
    elif state.passkeys.get(passkey) != account:
        problem = f"passkey {passkey} was never enrolled for account {account}"
    elif passkey in state.passkeys_revoked:
        problem = f"passkey {passkey} was revoked before this sign-in"
    elif r.actor_id != account:
        problem = f"account {account}'s session was started by {r.actor_id}"
    else:
        try:
            lasts = datetime.fromisoformat(
                expires_at.replace("Z", "+00:00")
            ) - datetime.fromisoformat(r.ts.replace("Z", "+00:00"))
        except (TypeError, ValueError):  # not a date, or one without its zone
            lasts = None
        if lasts is None or lasts > SESSION_LIFETIME:
            problem = f"session {session} ends {expires_at}, more than 12 hours after sign-in"
    if problem is not None:
        state.flag(r, "session-invalid", problem)
        return
    state.sessions[session] = (account, expires_at, passkey)


def _check_caller(state: _Replay, r: Record) -> None:
    p = r.payload
    account, agency = str(p.get("account_id")), str(p.get("agency_id"))
    if account not in state.accounts:
        state.flag(r, "account-unknown", f"account {account} was never approved")
    elif state.accounts[account] is not None and state.accounts[account] != agency:
        state.flag(r, "account-agency-mismatch", f"account {account} is not of agency {agency}")
    if account in state.suspended:
        state.flag(r, "account-suspended", f"account {account} was suspended")
    if agency in state.agencies_suspended:
        state.flag(r, "agency-suspended", f"agency {agency} was suspended")
    credential = str(p.get("credential_id"))
    issued = state.credentials.get(credential)
    if issued is None and credential in state.sessions:
        issued = state.sessions[credential][:2]
    if issued is None:
        state.flag(r, "credential-unknown", f"credential {credential} was never issued")
    else:
        if issued[0] != account:
            state.flag(r, "credential-not-owned", f"credential {credential} is not {account}'s")
        if r.ts >= issued[1]:
            state.flag(r, "credential-expired", f"credential {credential} expired {issued[1]}")
    if credential in state.revoked:
        state.flag(
            r,
            "credential-revoked",
            f"credential {credential} was revoked at seq {state.revoked[credential]}",
        )


def _check_basis(state: _Replay, r: Record) -> None:
    p = r.payload
    basis_id = str(p.get("legal_basis_id"))
    basis = state.bases.get(basis_id)
    if basis is None:
        state.flag(r, "basis-unknown", f"legal basis {basis_id} is not in the log")
        return
    basis.used += 1
    basis.searches.append(str(p.get("search_id")))
    if basis.agency != str(p.get("agency_id")):
        state.flag(r, "basis-other-agency", f"legal basis {basis_id} is agency {basis.agency}'s")
    if basis.approver is None:
        state.flag(r, "basis-not-approved", f"legal basis {basis_id} was never approved")
    elif basis.approver == basis.author:
        state.flag(r, "basis-four-eyes", f"legal basis {basis_id} was approved by its author")
    if basis.ended is not None:
        state.flag(r, "basis-ended", f"legal basis {basis_id} had ended ({basis.ended})")
    elif r.ts >= basis.expires_at:
        state.flag(r, "basis-expired", f"legal basis {basis_id} expired {basis.expires_at}")
    if basis.deadline is not None and basis.ratified != "granted" and r.ts >= basis.deadline:
        state.flag(
            r, "basis-unratified", f"urgent basis {basis_id} unratified since {basis.deadline}"
        )
    if basis.used > basis.max_searches:
        state.flag(
            r,
            "basis-quota",
            f"search {basis.used} under legal basis {basis_id} (max {basis.max_searches})",
        )


def _check_candidates(state: _Replay, r: Record) -> None:
    for candidate in r.payload.get("candidates") or []:
        face = str(candidate.get("face_id"))
        digest = hashlib.sha256(face.encode()).hexdigest()
        if digest in state.erased:
            state.flag(
                r,
                "erased-face-returned",
                f"face {face} was erased at seq {state.erased[digest]}",
            )
        site = str(candidate.get("source_site"))
        if site in state.blocked:
            state.flag(
                r,
                "blocked-site-returned",
                f"face {face} comes from {site}, blocked at seq {state.blocked[site]}",
            )


def _url_digests(p: Mapping[str, Any], *, erasure: bool) -> list[tuple[str, str]]:
    """The source-URL digests an enrolment or an erasure carries, with their kind."""
    found = [(m, str(p[m])) for m in ("source_url_hmac", "source_url_sha256") if p.get(m)]
    if erasure and p.get("kind") == "source_url" and p.get("target_sha256"):
        found.append(("source_url_sha256", str(p["target_sha256"])))  # before keyed digests
    return found


def _check_comparison(state: _Replay, r: Record) -> None:
    """Every face compared with the gallery is a governed search or an erasure preview."""
    p = r.payload
    reference = p.get("request_reference_hmac") or p.get("request_reference")
    if r.type == "erasure:preview" and not str(reference or "").strip():
        state.flag(r, "preview-no-reference", "the erasure preview names no data-subject request")
    if r.type in _GOVERNED_COMPARISONS:
        return
    results = [m for m in _RESULT_MEMBERS if p.get(m)]
    probes = [m for m in _PROBE_MEMBERS if p.get(m)]
    if results or (probes and r.type not in _PROBE_WITHOUT_RESULTS):
        state.flag(
            r,
            "comparison-ungoverned",
            f"{r.type} carries {', '.join(results + probes)} outside a governed search",
        )
    elif r.type == "erasure:run" and p.get("kind") == "probe":
        request = p.get("erasure_request_id")
        if request is None:
            state.flag(
                r,
                "comparison-ungoverned",
                "a probe erasure compared its probe with the gallery without a preview",
            )
        elif str(request) not in state.previews:
            state.flag(r, "erasure-request-unknown", f"erasure request {request} has no preview")
        elif state.same_person(state.previews[str(request)], r.actor_id):
            state.flag(
                r,
                "erasure-four-eyes",
                f"erasure request {request} was confirmed by its requester's person {r.actor_id}",
            )


def _check_enrolment(state: _Replay, r: Record) -> None:
    for key in _url_digests(r.payload, erasure=False):
        if key in state.erased_urls:
            state.flag(
                r,
                "erased-url-enrolled",
                f"photo {r.payload.get('photo_id')} comes from a source URL erased at seq "
                f"{state.erased_urls[key]}",
            )


def _check_threshold(state: _Replay, r: Record) -> None:
    p = r.payload
    raw = p.get("pack")
    pack: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    floors: list[float | None] = []
    if pack.get("match_threshold") is not None:
        floors.append(_number(pack["match_threshold"]))
    known = KNOWN_FLOORS.get(str(pack.get("recognizer_sha256")))
    if known is not None:
        floors.append(known)
    threshold = _number(p.get("threshold"))
    name = f"{pack.get('name')} {pack.get('version')}"
    if not floors or None in floors or threshold is None:
        state.flag(r, "threshold-below-floor", f"no threshold and floor to compare for {name}")
        return
    floor = max(f for f in floors if f is not None)
    if threshold < floor:
        state.flag(
            r, "threshold-below-floor", f"threshold {threshold:g} below {floor:g} of pack {name}"
        )


def _number(value: Any) -> float | None:
    """A decimal string's value; None for anything else (NaN would compare as no violation)."""
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _check_review(state: _Replay, r: Record) -> None:
    p = r.payload
    search = str(p.get("search_id"))
    searcher = state.searchers.get(search, str(p.get("searcher_id")))
    reviewer = str(p.get("reviewer_id") or r.actor_id)
    if state.same_person(reviewer, searcher):
        state.flag(
            r, "self-review", f"account {reviewer} reviewed the search {search} of its person"
        )
    else:
        for item in p.get("reviews") or []:
            if item.get("verdict") == "possible_match":
                state.said_match[(search, str(item.get("face_id")))].add(reviewer)
    for face in p.get("confirmed_leads") or []:
        reviewers = state.said_match.get((search, str(face)), set())
        if len(reviewers) < 2:
            state.flag(
                r,
                "lead-reviewers",
                f"face {face} of search {search} confirmed with {len(reviewers)} "
                "independent possible_match verdict(s)",
            )
        elif _distinct_persons(state, reviewers) < 2:
            state.flag(
                r,
                "lead-same-person",
                f"face {face} of search {search} confirmed by accounts "
                f"{', '.join(sorted(reviewers))} of one person",
            )


def _distinct_persons(state: _Replay, accounts: set[str]) -> int:
    groups: list[set[str]] = []
    for account in sorted(accounts):
        if not any(any(state.same_person(account, a) for a in g) for g in groups):
            groups.append({account})
        else:
            next(g for g in groups if any(state.same_person(account, a) for a in g)).add(account)
    return len(groups)


def _settle_urgent(state: _Replay, last: Record | None, grace: timedelta) -> None:
    end = _when(last.ts) if last is not None else None
    for basis_id, basis in state.bases.items():
        where = Record(basis.seq, "", "legal_basis:create", basis.author, {})
        if basis.lapsed_at is not None:
            kept = [s for s in basis.searches if s not in state.deleted]
            if kept:
                state.flag(
                    Record(basis.lapsed_at, "", "legal_basis:lapse", "", {}),
                    "lapse-results-kept",
                    f"legal basis {basis_id} lapsed but searches {', '.join(kept)} were kept",
                )
            continue
        if basis.deadline is None or basis.ratified == "granted" or basis.ended is not None:
            continue
        if end is not None and end > _when(basis.deadline) + grace:
            state.flag(
                where,
                "urgent-not-lapsed",
                f"urgent basis {basis_id} passed its deadline {basis.deadline} unratified "
                "and no lapse was recorded",
            )


def _check_refusal_counts(state: _Replay, r: Record) -> int:
    """The repeats a ``search:refuse_repeats`` entry counts; flags what does not add up."""
    credential = str(r.payload.get("credential_id"))
    window = (credential, str((r.payload.get("window") or {}).get("start")))
    if window in state.counted:
        state.flag(r, "refusal-count", f"the window {window[1]} of {credential} is counted twice")
    state.counted.add(window)
    total = 0
    for item in r.payload.get("refusals") or []:
        repeats, first = int(item.get("repeats") or 0), item.get("first_seq")
        if repeats <= 0 or (
            first is not None and state.refused.get(int(first)) != (credential, item.get("reason"))
        ):
            state.flag(
                r,
                "refusal-count",
                f"{repeats} repeat(s) of {item.get('reason')!r} point at entry {first}, "
                f"which is no such refusal of credential {credential}",
            )
        total += max(repeats, 0)
    return total


def audit_records(records: Iterable[Record], *, grace: timedelta = _DEFAULT_GRACE) -> AuditReport:
    """Replay ``records`` (in seq order) and list every violation.

    ``grace`` is how long after an urgent basis's deadline the log may run before a missing
    lapse counts (the server settles deadlines on its next requests). Raises AuditError for
    entries out of order.
    """
    state = _Replay()
    count = searches = refusals = 0
    last: Record | None = None
    for r in records:
        if r.seq != count:
            raise AuditError(f"expected seq {count}, found {r.seq}")
        count += 1
        last = r
        if r.type == "search:run":
            searches += 1
            state.searchers[str(r.payload.get("search_id"))] = str(r.payload.get("account_id"))
            _check_caller(state, r)
            _check_basis(state, r)
            _check_candidates(state, r)
            _check_threshold(state, r)
        elif r.type == "search:refuse":
            refusals += 1
            credential = str(r.payload.get("credential_id"))
            state.refused[r.seq] = (credential, str(r.payload.get("reason")))
            if credential in state.revoked:
                state.flag(r, "credential-revoked", f"credential {credential} was revoked")
        elif r.type == "search:refuse_repeats":
            refusals += _check_refusal_counts(state, r)
        elif r.type == "review:record":
            _check_review(state, r)
        elif r.type == "gallery:enroll":
            _check_enrolment(state, r)
        _check_comparison(state, r)
        _track(state, r)
    _settle_urgent(state, last, grace)
    ordered = sorted(state.found, key=lambda v: (v.seq, v.rule))
    return AuditReport(
        entries=count, searches=searches, violations=tuple(ordered), refusals=refusals
    )


def audit_entries(lines: Iterable[bytes], *, grace: timedelta = _DEFAULT_GRACE) -> AuditReport:
    """Audit canonical entry lines. Raises AuditError."""
    return audit_records(load_records(lines), grace=grace)
