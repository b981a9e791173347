"""Operations several resources share: decisions with a reason, and an application's review.

A ``Decision`` is ``POST /<id>/<verb>`` with a mandatory reason, answered with the object
decided (suspend or reinstate an account, confirm or reject a proposal, reject an
application); ``route_decisions`` routes a resource's decisions. Registrations and account
requests run one workflow (``governance.identity.applications``): read, approve, reject,
claim, resend; ``Application`` names one kind's governance functions, permissions and
summaries, and ``route_application`` routes its five operations. Every view parses, calls
one governance function and returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import marshmallow as ma
from flask.typing import ResponseReturnValue
from flask.views import MethodView

from api.auth import current_principal, public, with_claim_attempt
from api.blueprint import Blueprint
from api.context import runtime, work
from api.schemas.fields import ReasonSchema
from api.schemas.registrations import ClaimSchema, IssuedCredentialSchema
from governance.core.work import Work
from governance.identity import standing
from governance.identity.claims import ClaimPolicy
from governance.identity.credentials import IssuedCredential
from governance.identity.models import Account, Agency
from governance.identity.permissions import Permission
from governance.identity.principals import Principal
from governance.identity.standing import Standings

__all__ = [
    "Act",
    "Application",
    "Decision",
    "Summaries",
    "reinstating",
    "route_application",
    "route_decisions",
    "suspending",
]

Info = TypeVar("Info")
Info_co = TypeVar("Info_co", covariant=True)
Row = TypeVar("Row", Agency, Account)


class Act(Protocol[Info_co]):
    """A governance function deciding on ``row_id`` for a reason."""

    def __call__(
        self, work: Work, row_id: UUID, /, *, principal: Principal, reason: str
    ) -> Info_co: ...


@dataclass(frozen=True, slots=True)
class Decision(Generic[Info]):
    """``POST /<id>/<verb>``: who may, the ``act`` it calls, and its docstring (``summary``)."""

    verb: str
    permission: Permission
    act: Act[Info]
    summary: str


def suspending(kind: Standings[Row, Info]) -> Act[Info]:
    """Suspend one object of ``kind`` (``governance.identity.standing.suspend``)."""

    def act(work: Work, row_id: UUID, /, *, principal: Principal, reason: str) -> Info:
        return standing.suspend(work, kind, principal=principal, target_id=row_id, reason=reason)

    return act


def reinstating(kind: Standings[Row, Info]) -> Act[Info]:
    """Reinstate one object of ``kind`` (``governance.identity.standing.reinstate``)."""

    def act(work: Work, row_id: UUID, /, *, principal: Principal, reason: str) -> Info:
        return standing.reinstate(work, kind, principal=principal, target_id=row_id, reason=reason)

    return act


class Read(Protocol[Info_co]):
    def __call__(self, work: Work, row_id: UUID, /, *, principal: Principal) -> Info_co: ...


class Approve(Protocol[Info_co]):
    def __call__(
        self, work: Work, row_id: UUID, /, *, principal: Principal, reason: str, claims: ClaimPolicy
    ) -> Info_co: ...


class Claim(Protocol):
    def __call__(
        self, work: Work, row_id: UUID, /, *, claim_secret: str, claims: ClaimPolicy
    ) -> IssuedCredential: ...


class Resend(Protocol[Info_co]):
    def __call__(
        self, work: Work, row_id: UUID, /, *, principal: Principal, claims: ClaimPolicy
    ) -> Info_co: ...


@dataclass(frozen=True, slots=True)
class Summaries:
    """The docstrings of the five operations: first line the OpenAPI summary, then the
    description."""

    read: str
    approve: str
    reject: str
    claim: str
    resend: str


@dataclass(frozen=True, slots=True)
class Application(Generic[Info]):
    """One kind of application as operations under ``/<uuid:{id}>``: who reads it, who decides
    it (and resends its claim secret), how it answers, and the governance function of each
    step. ``name`` names the views (``Approve{name}``, ``{name}ById``).
    """

    id: str
    name: str
    read_permission: Permission
    decide_permission: Permission
    schema: type[ma.Schema]
    read: Read[Info]
    approve: Approve[Info]
    reject: Act[Info]
    claim: Claim
    resend: Resend[Info]
    summaries: Summaries


class _OneId(MethodView):
    """A view under one path id, whatever the URL names it: its methods receive ``row_id``."""

    def dispatch_request(self, **path: Any) -> ResponseReturnValue:
        (row_id,) = path.values()
        return super().dispatch_request(row_id=row_id)


def route_decisions(
    blp: Blueprint, id: str, noun: str, schema: type[ma.Schema], *decisions: Decision[Info]
) -> None:
    """Route ``POST /<uuid:{id}>/<verb>`` of each decision, as the view ``{Verb}{noun}``
    answering 200 with ``schema``."""
    for decision in decisions:

        def post(
            _view: MethodView, body: dict[str, Any], row_id: UUID, act: Act[Info] = decision.act
        ) -> Info:
            with work() as w:
                return act(w, row_id, principal=current_principal(), reason=body["reason"])

        post.__doc__ = decision.summary  # the operation's summary
        view = blp.operation(decision.permission, 200, schema, body=ReasonSchema)(post)
        name = f"{decision.verb.capitalize()}{noun}"
        blp.route(f"/<uuid:{id}>/{decision.verb}")(type(name, (_OneId,), {"post": view}))


def route_application(blp: Blueprint, kind: Application[Info]) -> None:
    """Route ``GET /<id>`` and ``POST /<id>/{approve,reject,claim,resend}`` of ``kind``."""
    by_id = f"/<uuid:{kind.id}>"
    texts = kind.summaries

    @blp.operation(kind.read_permission, 200, kind.schema)
    def read(_view: MethodView, row_id: UUID) -> Info:
        with work() as w:
            return kind.read(w, row_id, principal=current_principal())

    @blp.operation(kind.decide_permission, 200, kind.schema, body=ReasonSchema)
    def approve(_view: MethodView, body: dict[str, Any], row_id: UUID) -> Info:
        with work() as w:
            return kind.approve(
                w,
                row_id,
                principal=current_principal(),
                reason=body["reason"],
                claims=runtime().claims,
            )

    @public
    @blp.arguments(ClaimSchema)
    @blp.response(201, IssuedCredentialSchema)
    def claim(_view: MethodView, body: dict[str, Any], row_id: UUID) -> IssuedCredential:
        def redeem() -> IssuedCredential:
            with work() as w:
                return kind.claim(
                    w, row_id, claim_secret=body["claim_secret"], claims=runtime().claims
                )

        return with_claim_attempt(redeem)

    @blp.operation(kind.decide_permission, 200, kind.schema)
    def resend(_view: MethodView, row_id: UUID) -> Info:
        with work() as w:
            return kind.resend(w, row_id, principal=current_principal(), claims=runtime().claims)

    def route(suffix: str, name: str, method: str, view: Callable[..., object], text: str) -> None:
        view.__doc__ = text  # the operation's summary and description
        blp.route(by_id + suffix)(type(name, (_OneId,), {method: view}))

    route("", f"{kind.name}ById", "get", read, texts.read)
    route("/approve", f"Approve{kind.name}", "post", approve, texts.approve)
    reject = Decision("reject", kind.decide_permission, kind.reject, texts.reject)
    route_decisions(blp, kind.id, kind.name, kind.schema, reject)
    route("/claim", f"Claim{kind.name}", "post", claim, texts.claim)
    route("/resend", f"Resend{kind.name}Claim", "post", resend, texts.resend)
