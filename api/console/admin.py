"""Platform administrators' pages: the review queue, agencies, accounts, and the proposals that
need a second administrator.

Each form calls the governance function of the API operation beside it (registrations and
account requests: approve, reject; agencies: suspend by a proposal, reinstate; accounts:
suspend, reinstate; proposals: confirm, reject) with a reason the API's ``ReasonSchema``
checks. A refusal is shown beside the form it concerns, with the API's status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import runtime, work
from api.errors import answer_for
from api.schemas.fields import ReasonSchema
from biometrics.errors import DomainError
from governance.core.work import Work
from governance.identity import (
    account_requests,
    accounts,
    agencies,
    applications,
    proposals,
    standing,
)
from governance.identity import registrations as regs
from governance.identity.permissions import Permission, Role, scope_for
from governance.identity.principals import Principal
from governance.identity.proposals import ProposalInfo, ProposedAct
from governance.identity.vocabulary import ApplicationStatus, ProposalStatus

__all__ = ["NAVIGATION", "Refusal", "bp", "decided", "reason_field"]

bp = Blueprint("admin", __name__, url_prefix="/admin")
NAVIGATION = (
    NavItem("console.admin.queue", "Review queue", Permission.REGISTRATION_REVIEW, order=10),
    NavItem("console.admin.agencies_page", "Agencies", Permission.AGENCY_SUSPEND, order=20),
    NavItem("console.admin.accounts_page", "Accounts", Permission.ACCOUNT_SUSPEND, order=30),
    NavItem("console.admin.proposals_page", "Proposals", Permission.PROPOSAL_READ, order=40),
)
PAGE_SIZE = 50

# What each decision's notice says, once the page it redirects to is shown.
DONE = {
    "registration-approved": "The registration is approved. The contact receives an e-mail "
    "with a one-time code to claim the agency's first account.",
    "registration-rejected": "The registration is rejected. This decision is final.",
    "request-approved": "The account request is approved. The person receives an e-mail with "
    "a one-time code to claim the account.",
    "request-rejected": "The account request is rejected. This decision is final.",
    "agency-proposed": "The suspension is proposed. It takes effect only when a second "
    "administrator confirms it on the Proposals page.",
    "agency-reinstated": "The agency is reinstated. Its people must sign in again.",
    "account-suspended": "The account is suspended: its keys and sessions stop at once.",
    "account-proposed": "The suspension is proposed. It takes effect only when a second "
    "administrator confirms it on the Proposals page.",
    "account-reinstated": "The account is reinstated. The person must sign in again.",
    "proposal-confirmed": "The proposal is confirmed and carried out.",
    "proposal-rejected": "The proposal is rejected. This decision is final.",
}


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _may(permission: Permission) -> bool:
    return scope_for(_me().role, permission) is not None


def _offset(name: str = "offset") -> int:
    try:
        return max(0, min(int(request.args.get(name, "0")), 1_000_000_000))
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the decision on ``item`` was not taken, and the reason typed, to show it again."""

    item: UUID
    detail: str
    reason: str


def reason_field() -> str:
    """The form's reason, checked as the API checks it. Raises ma.ValidationError."""
    loaded: dict[str, str] = ReasonSchema().load({"reason": request.form.get("reason", "")[:4000]})
    return loaded["reason"]


def decided(
    item: UUID,
    act: Callable[[str], object],
    page: Callable[[Refusal], str],
    done: str,
    endpoint: str,
) -> Any:
    """Check the reason, ``act`` on it (the act opens its units of work), and go back to
    ``endpoint`` with the notice ``done``; on a refusal, ``page`` again with it (422, or the
    API's status). Shared by the console's decision forms."""
    typed = request.form.get("reason", "")[:4000]
    try:
        reason = reason_field()
    except ma.ValidationError as exc:
        said = exc.messages.get("reason", exc.messages) if isinstance(exc.messages, dict) else ""
        detail = " ".join(map(str, said)) if isinstance(said, list) else str(said)
        return page(Refusal(item, f"Give a reason: {detail}", typed)), 422
    try:
        act(reason)
    except DomainError as exc:
        return page(Refusal(item, exc.detail, typed)), answer_for(exc).status
    return redirect(url_for(endpoint, done=done, **_kept_offsets()), 303)


def _kept_offsets() -> dict[str, Any]:
    return {k: v for k, v in request.args.items() if k.endswith("offset")}


def _verdict(*allowed: str) -> str:
    verdict = request.form.get("verdict", "")
    if verdict not in allowed:
        raise BadRequest("Choose one of the buttons of the form.")
    return verdict


def _names(work: Work, principal: Principal, ids: Iterable[UUID | None]) -> dict[UUID, str]:
    """The names of the agencies ``ids`` within the caller's reach."""
    return {
        agency_id: agencies.get_agency(work, principal=principal, agency_id=agency_id).name
        for agency_id in {i for i in ids if i is not None}
    }


def _people(work: Work, principal: Principal, ids: Iterable[UUID | None]) -> dict[UUID, str]:
    """The names of the accounts ``ids`` within the caller's reach."""
    return {
        account_id: accounts.get_account(work, principal=principal, account_id=account_id).name
        for account_id in {i for i in ids if i is not None}
    }


def _pending_proposals(work: Work, principal: Principal) -> list[ProposalInfo]:
    """Every pending proposal (they are few: each waits for one decision)."""
    found: list[ProposalInfo] = []
    while True:
        page = proposals.list_proposals(
            work,
            principal=principal,
            status=ProposalStatus.PENDING.value,
            limit=100,
            offset=len(found),
        )
        found.extend(page.items)
        if not page.items or len(found) >= page.total:
            return found


# The review queue ---------------------------------------------------------------------------


def _queue_page(refusal: Refusal | None = None) -> str:
    principal = _me()
    pending = ApplicationStatus.PENDING
    with work() as w:
        registrations = applications.list_applications(
            w,
            regs.REGISTRATIONS,
            principal=principal,
            status=pending,
            limit=PAGE_SIZE,
            offset=_offset("registrations_offset"),
        )
        requests = applications.list_applications(
            w,
            account_requests.ACCOUNT_REQUESTS,
            principal=principal,
            status=pending,
            limit=PAGE_SIZE,
            offset=_offset("requests_offset"),
        )
        agency_names = _names(w, principal, (r.agency_id for r in requests.items))
        requesters = _people(w, principal, (r.requested_by for r in requests.items))
    return render_template(
        "admin/queue.html",
        registrations=registrations,
        requests=requests,
        agency_names=agency_names,
        requesters=requesters,
        refusal=refusal,
        done=DONE.get(request.args.get("done", "")),
        keep=_kept_offsets(),
    )


@bp.get("/queue")
@signed_in(Permission.REGISTRATION_REVIEW)
def queue() -> str:
    """Pending agency registrations and account requests, each to approve or reject."""
    return _queue_page()


@bp.post("/registrations/<uuid:registration_id>/decide")
@signed_in(Permission.REGISTRATION_REVIEW)
def decide_registration(registration_id: UUID) -> Any:
    """Approve or reject a pending registration, with a reason."""
    verdict = _verdict("approve", "reject")

    def act(reason: str) -> object:
        with work() as w:
            if verdict == "approve":
                return regs.approve_registration(
                    w, registration_id, principal=_me(), reason=reason, claims=runtime().claims
                )
            return regs.reject_registration(w, registration_id, principal=_me(), reason=reason)

    done = {"approve": "registration-approved", "reject": "registration-rejected"}[verdict]
    return decided(registration_id, act, _queue_page, done, "console.admin.queue")


@bp.post("/account-requests/<uuid:request_id>/decide")
@signed_in(Permission.ACCOUNT_REQUEST_DECIDE)
def decide_request(request_id: UUID) -> Any:
    """Approve or reject a pending account request (never one's own), with a reason."""
    verdict = _verdict("approve", "reject")

    def act(reason: str) -> object:
        with work() as w:
            if verdict == "approve":
                return account_requests.approve_request(
                    w, request_id, principal=_me(), reason=reason, claims=runtime().claims
                )
            return account_requests.reject_request(w, request_id, principal=_me(), reason=reason)

    done = {"approve": "request-approved", "reject": "request-rejected"}[verdict]
    return decided(request_id, act, _queue_page, done, "console.admin.queue")


# Agencies -----------------------------------------------------------------------------------


def _waiting(items: Iterable[ProposalInfo], act: ProposedAct) -> Mapping[UUID, ProposalInfo]:
    return {p.target_id: p for p in items if p.action is act}


def _agencies_page(refusal: Refusal | None = None) -> str:
    principal = _me()
    with work() as w:
        listed = agencies.list_agencies(w, principal=principal, limit=PAGE_SIZE, offset=_offset())
        decides = _may(Permission.AGENCY_SUSPEND)
        waiting = _pending_proposals(w, principal) if decides else []
    return render_template(
        "admin/agencies.html",
        agencies=listed,
        decides=decides,
        waiting=_waiting(waiting, ProposedAct.AGENCY_SUSPEND),
        refusal=refusal,
        done=DONE.get(request.args.get("done", "")),
        keep=_kept_offsets(),
    )


@bp.get("/agencies")
@signed_in(Permission.AGENCY_READ)
def agencies_page() -> str:
    """Agencies and their standing; propose a suspension, or reinstate."""
    return _agencies_page()


@bp.post("/agencies/<uuid:agency_id>/suspend")
@signed_in(Permission.AGENCY_SUSPEND)
def suspend_agency(agency_id: UUID) -> Any:
    """Propose to suspend an agency; a second administrator confirms it."""

    def act(reason: str) -> object:
        with work() as w:
            return proposals.propose(
                w,
                principal=_me(),
                action=ProposedAct.AGENCY_SUSPEND,
                target_id=agency_id,
                reason=reason,
            )

    return decided(agency_id, act, _agencies_page, "agency-proposed", "console.admin.agencies_page")


@bp.post("/agencies/<uuid:agency_id>/reinstate")
@signed_in(Permission.AGENCY_SUSPEND)
def reinstate_agency(agency_id: UUID) -> Any:
    """Reinstate a suspended agency, with a reason."""

    def act(reason: str) -> object:
        with work() as w:
            return standing.reinstate(
                w, agencies.AGENCIES, principal=_me(), target_id=agency_id, reason=reason
            )

    endpoint = "console.admin.agencies_page"
    return decided(agency_id, act, _agencies_page, "agency-reinstated", endpoint)


# Accounts -----------------------------------------------------------------------------------


def _accounts_page(refusal: Refusal | None = None) -> str:
    principal = _me()
    with work() as w:
        listed = accounts.list_accounts(w, principal=principal, limit=PAGE_SIZE, offset=_offset())
        agency_names = _names(w, principal, (a.agency_id for a in listed.items))
        decides = _may(Permission.ACCOUNT_SUSPEND)
        waiting = _pending_proposals(w, principal) if decides else []
    return render_template(
        "admin/accounts.html",
        accounts=listed,
        agency_names=agency_names,
        decides=decides,
        waiting=_waiting(waiting, ProposedAct.ACCOUNT_SUSPEND),
        oversight=Role.OVERSIGHT,
        refusal=refusal,
        done=DONE.get(request.args.get("done", "")),
        keep=_kept_offsets(),
    )


@bp.get("/accounts")
@signed_in(Permission.ACCOUNT_READ)
def accounts_page() -> str:
    """Accounts and their standing; suspend or reinstate (an oversight account: by a proposal)."""
    return _accounts_page()


@bp.post("/accounts/<uuid:account_id>/suspend")
@signed_in(Permission.ACCOUNT_SUSPEND)
def suspend_account(account_id: UUID) -> Any:
    """Suspend an account, with a reason (an oversight account's takes a proposal)."""

    def act(reason: str) -> object:
        with work() as w:
            return standing.suspend(
                w, accounts.ACCOUNTS, principal=_me(), target_id=account_id, reason=reason
            )

    endpoint = "console.admin.accounts_page"
    return decided(account_id, act, _accounts_page, "account-suspended", endpoint)


@bp.post("/accounts/<uuid:account_id>/propose-suspension")
@signed_in(Permission.PROPOSAL_DECIDE)
def propose_account_suspension(account_id: UUID) -> Any:
    """Propose to suspend an oversight account; a second administrator confirms it."""

    def act(reason: str) -> object:
        with work() as w:
            return proposals.propose(
                w,
                principal=_me(),
                action=ProposedAct.ACCOUNT_SUSPEND,
                target_id=account_id,
                reason=reason,
            )

    endpoint = "console.admin.accounts_page"
    return decided(account_id, act, _accounts_page, "account-proposed", endpoint)


@bp.post("/accounts/<uuid:account_id>/reinstate")
@signed_in(Permission.ACCOUNT_SUSPEND)
def reinstate_account(account_id: UUID) -> Any:
    """Reinstate a suspended account, with a reason."""

    def act(reason: str) -> object:
        with work() as w:
            return standing.reinstate(
                w, accounts.ACCOUNTS, principal=_me(), target_id=account_id, reason=reason
            )

    endpoint = "console.admin.accounts_page"
    return decided(account_id, act, _accounts_page, "account-reinstated", endpoint)


# Proposals ----------------------------------------------------------------------------------


def _targets(work: Work, principal: Principal, items: Iterable[ProposalInfo]) -> dict[UUID, str]:
    """How each proposal's target is named: the agency's or the account's name."""
    named: dict[UUID, str] = {}
    for item in items:
        if item.action is ProposedAct.AGENCY_SUSPEND:
            named |= _names(work, principal, [item.target_id])
        elif item.action is ProposedAct.ACCOUNT_SUSPEND:
            named |= _people(work, principal, [item.target_id])
    return named


def _proposals_page(refusal: Refusal | None = None) -> str:
    principal = _me()
    with work() as w:
        pending = proposals.list_proposals(
            w,
            principal=principal,
            status=ProposalStatus.PENDING.value,
            limit=PAGE_SIZE,
            offset=_offset(),
        )
        targets = _targets(w, principal, pending.items)
        proposers = _people(w, principal, (p.proposed_by for p in pending.items))
    return render_template(
        "admin/proposals.html",
        proposals=pending,
        targets=targets,
        proposers=proposers,
        decides=_may(Permission.PROPOSAL_DECIDE),
        refusal=refusal,
        done=DONE.get(request.args.get("done", "")),
        keep=_kept_offsets(),
    )


@bp.get("/proposals")
@signed_in(Permission.PROPOSAL_READ)
def proposals_page() -> str:
    """Pending proposals: a different administrator confirms or rejects each."""
    return _proposals_page()


@bp.post("/proposals/<uuid:proposal_id>/decide")
@signed_in(Permission.PROPOSAL_DECIDE)
def decide_proposal(proposal_id: UUID) -> Any:
    """Confirm (carry the act out) or reject another administrator's proposal, with a reason."""
    verdict = _verdict("confirm", "reject")

    def act(reason: str) -> object:
        with work() as w:
            decide = (
                proposals.confirm_proposal if verdict == "confirm" else proposals.reject_proposal
            )
            return decide(w, proposal_id, principal=_me(), reason=reason)

    done = {"confirm": "proposal-confirmed", "reject": "proposal-rejected"}[verdict]
    return decided(proposal_id, act, _proposals_page, done, "console.admin.proposals_page")
