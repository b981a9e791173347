"""Supervisors' pages: legal bases awaiting a second supervisor (approve, reject, ratify an
urgent one before its deadline), and the agency's account requests.

Each form calls what the API operation beside it calls (``settle_then_decide``,
``settle_then_ratify``, ``request_account``), with the API's schemas checking the input. Four
eyes are shown plainly: a basis the signed-in supervisor wrote has no buttons, and the
governance function refuses it anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from api.console.admin import PAGE_SIZE, Refusal, decided
from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import units, work
from api.errors import answer_for
from api.resources.legal_bases import policy
from api.schemas.account_requests import AccountRequestCreateSchema
from api.schemas.legal_bases import RatificationSchema
from biometrics.errors import DomainError
from governance.core.errors import InvalidInput, NotFound
from governance.core.work import Work
from governance.identity import account_requests, accounts, applications
from governance.identity.permissions import Permission, Role, scope_for
from governance.identity.principals import Principal
from governance.legal_basis.decisions import settle_then_decide, settle_then_ratify
from governance.legal_basis.services import list_bases
from governance.legal_basis.values import AuthorisationKind, BasisInfo, BasisStatus, Verdict

__all__ = ["NAVIGATION", "bp", "time_left"]

bp = Blueprint("agency", __name__, url_prefix="/agency")
NAVIGATION = (
    NavItem(
        "console.agency.legal_bases", "Legal bases to approve", Permission.LEGAL_BASIS_DECIDE, 15
    ),
    NavItem(
        "console.agency.account_requests_page",
        "Account requests",
        Permission.ACCOUNT_REQUEST_CREATE,
        35,
    ),
    # The agency's accounts and their standing: the administrators' page, which shows a
    # supervisor the agency's own accounts, without the forms to suspend them.
    NavItem("console.admin.accounts_page", "Accounts", Permission.ACCOUNT_REQUEST_CREATE, 36),
)
DONE = {
    "approved": "The legal basis is approved: searches may now run under it.",
    "rejected": "The legal basis is rejected. This decision is final.",
    "ratified": "The ratification is recorded.",
    "refused": "The refusal is recorded: the basis has lapsed and its search results are deleted.",
    "requested": "The account request is sent. A platform administrator checks it; once it is "
    "approved, the person receives an e-mail to claim the account.",
}
# Form field -> (label, input type, autocomplete) of the person an account is requested for.
PERSON_FIELDS: Mapping[str, tuple[str, str, str]] = {
    "first_name": ("First name", "text", "off"),
    "last_name": ("Last name", "text", "off"),
    "phone": ("Phone (international, e.g. +33 4 72 00 00 00)", "tel", "off"),
    "email": ("E-mail", "email", "off"),
    "job_title": ("Job function", "text", "off"),
}
ROLES = {Role.INVESTIGATOR: "Investigator (runs searches)", Role.SUPERVISOR: "Supervisor"}
RATIFICATION_FIELDS = ("reference", "authority", "issued_at", "expires_at")


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _may(permission: Permission) -> bool:
    return scope_for(_me().role, permission) is not None


def time_left(deadline: datetime, now: datetime) -> str:
    """How long until ``deadline``, as people read it: "3 h 20 min left", "passed"."""
    left = deadline - now
    if left <= timedelta(0):
        return "the deadline has passed"
    minutes = int(left.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h left"
    if hours:
        return f"{hours} h {mins} min left"
    return f"{mins} min left"


def _all_bases(work: Work, principal: Principal, status: BasisStatus) -> list[BasisInfo]:
    found: list[BasisInfo] = []
    while True:
        page = list_bases(work, principal=principal, status=status, limit=100, offset=len(found))
        found.extend(page.items)
        if not page.items or len(found) >= page.total:
            return found


def _authors(work: Work, principal: Principal, ids: set[UUID]) -> dict[UUID, str]:
    """The names of the bases' authors the caller may read (an investigator reads only their
    own account; the others stay unnamed)."""
    named: dict[UUID, str] = {}
    for account_id in ids:
        try:
            named[account_id] = accounts.get_account(
                work, principal=principal, account_id=account_id
            ).name
        except NotFound:
            continue
    return named


def _bases_page(
    refusal: Refusal | None = None,
    ratifying: UUID | None = None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    principal = _me()
    offset = max(0, request.args.get("offset", 0, type=int) or 0)
    with work() as w:
        pending = list_bases(
            w, principal=principal, status=BasisStatus.PENDING, limit=PAGE_SIZE, offset=offset
        )
        live = _all_bases(w, principal, BasisStatus.APPROVED) + _all_bases(
            w, principal, BasisStatus.PENDING
        )
        urgent = sorted(
            (
                b
                for b in live
                if b.authorisation.kind is AuthorisationKind.URGENT
                and b.ratification is not None
                and b.ratification.outcome is None
            ),
            key=lambda b: (b.ratification_deadline or w.now, str(b.id)),
        )
        authors = _authors(w, principal, {b.created_by for b in [*pending.items, *urgent]})
        now = w.now
    return render_template(
        "agency/legal_bases.html",
        pending=pending,
        urgent=urgent,
        authors=authors,
        offences=policy().offences,
        now=now,
        time_left=time_left,
        decides=_may(Permission.LEGAL_BASIS_DECIDE),
        ratifies=_may(Permission.LEGAL_BASIS_RATIFY),
        refusal=refusal,
        ratifying=ratifying,
        values=values or {},
        errors=errors or {},
        done=DONE.get(request.args.get("done", "")),
    )


@bp.get("/legal-bases")
@signed_in(Permission.LEGAL_BASIS_READ)
def legal_bases() -> str:
    """Legal bases awaiting a second supervisor, and urgent ones awaiting ratification."""
    return _bases_page()


@bp.post("/legal-bases/<uuid:basis_id>/decide")
@signed_in(Permission.LEGAL_BASIS_DECIDE)
def decide_basis(basis_id: UUID) -> Any:
    """Approve or reject a pending legal basis someone else wrote, with a reason."""
    verdict = request.form.get("verdict", "")
    if verdict not in (Verdict.APPROVE, Verdict.REJECT):
        raise BadRequest("Choose one of the buttons of the form.")

    def act(reason: str) -> object:
        return settle_then_decide(
            units(), principal=_me(), basis_id=basis_id, verdict=Verdict(verdict), reason=reason
        )

    done = "approved" if verdict == Verdict.APPROVE else "rejected"
    return decided(basis_id, act, _bases_page, done, "console.agency.legal_bases")


def _utc(value: str) -> str:
    """A ``datetime-local`` value read as UTC (the form says so), for the API's schema."""
    if len(value) == 16:  # to the minute
        return f"{value}:00+00:00"
    return f"{value}+00:00" if len(value) == 19 else value


@bp.post("/legal-bases/<uuid:basis_id>/ratification")
@signed_in(Permission.LEGAL_BASIS_RATIFY)
def ratify_basis(basis_id: UUID) -> Any:
    """Record whether the authority ratified an urgent basis (granted) or refused it."""
    values = {
        name: request.form.get(name, "")[:4000]
        for name in ("outcome", "reason", *RATIFICATION_FIELDS)
    }
    body: dict[str, Any] = {"outcome": values["outcome"]}
    if values["outcome"] == "refused":
        body["reason"] = values["reason"] or None
    else:
        body |= {name: values[name] or None for name in ("reference", "authority")}
        body |= {name: _utc(values[name]) or None for name in ("issued_at", "expires_at")}
    try:
        decision = RatificationSchema().load(body)
        info = settle_then_ratify(
            units(), principal=_me(), basis_id=basis_id, decision=decision, policy=policy()
        )
    except ma.ValidationError as exc:
        said = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
        errors = {k: " ".join(map(str, v)) for k, v in said.items()}
        refusal = Refusal(basis_id, "Correct the fields marked below.", "")
        return _bases_page(refusal, basis_id, values, errors), 422
    except InvalidInput as exc:
        errors = {k: " ".join(v) for k, v in (exc.fields or {}).items()}
        detail = "Correct the fields marked below." if errors else exc.detail
        return _bases_page(Refusal(basis_id, detail, ""), basis_id, values, errors), 422
    except DomainError as exc:
        page = _bases_page(Refusal(basis_id, exc.detail, ""), basis_id, values)
        return page, answer_for(exc).status
    refused = info.ratification is not None and info.ratification.outcome == "refused"
    done = "refused" if refused else "ratified"
    return redirect(url_for("console.agency.legal_bases", done=done), 303)


# Account requests ---------------------------------------------------------------------------


def _requests_page(values: Mapping[str, str], errors: Mapping[str, str]) -> str:
    principal = _me()
    offset = max(0, request.args.get("offset", 0, type=int) or 0)
    with work() as w:
        listed = applications.list_applications(
            w,
            account_requests.ACCOUNT_REQUESTS,
            principal=principal,
            limit=PAGE_SIZE,
            offset=offset,
        )
    return render_template(
        "agency/account_requests.html",
        requests=listed,
        fields=PERSON_FIELDS,
        roles=ROLES,
        may_request=_may(Permission.ACCOUNT_REQUEST_CREATE),
        values=values,
        errors=errors,
        done=DONE.get(request.args.get("done", "")),
    )


@bp.get("/account-requests")
@signed_in(Permission.ACCOUNT_REQUEST_READ)
def account_requests_page() -> str:
    """The agency's account requests and where each stands; request another account."""
    return _requests_page({}, {})


@bp.post("/account-requests")
@signed_in(Permission.ACCOUNT_REQUEST_CREATE)
def request_account() -> Any:
    """Ask a platform administrator for an investigator or supervisor account for a person."""
    values = {name: request.form.get(name, "")[:4000] for name in ("role", *PERSON_FIELDS)}
    body = {
        "role": values["role"],
        "person": {name: values[name] for name in PERSON_FIELDS if values[name]},
    }
    try:
        loaded = AccountRequestCreateSchema().load(body)
    except ma.ValidationError as exc:
        said = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
        errors: dict[str, str] = {}
        for key, inner in said.items():
            if isinstance(inner, dict):
                errors |= {k: " ".join(map(str, v)) for k, v in inner.items()}
            else:
                errors[key] = " ".join(map(str, inner))
        return _requests_page(values, errors), 422
    try:
        with work() as w:
            account_requests.request_account(
                w, principal=_me(), role=loaded["role"], person=loaded["person"]
            )
    except DomainError as exc:  # the person already holds an account, or already waits
        return _requests_page(values, {"form": exc.detail}), answer_for(exc).status
    return redirect(url_for("console.agency.account_requests_page", done="requested"), 303)
