"""Proposals: acts that would silence oversight, confirmed by a second administrator."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal, require
from api.blueprint import Blueprint
from api.context import work
from api.schemas.fields import ReasonSchema
from api.schemas.proposals import (
    ProposalCreateSchema,
    ProposalPageSchema,
    ProposalQuerySchema,
    ProposalSchema,
)
from governance.identity import proposals as service
from governance.identity.accounts import Page
from governance.identity.permissions import Permission
from governance.identity.proposals import ProposalInfo

blp = Blueprint(
    "proposals",
    __name__,
    url_prefix="/v1/proposals",
    description=(
        "Suspending an agency or an oversight account, and revoking an oversight account's "
        "key: one administrator proposes, a different one confirms."
    ),
)


@blp.route("")
class Proposals(MethodView):
    @require(Permission.PROPOSAL_DECIDE)
    @blp.arguments(ProposalCreateSchema)
    @blp.response(201, ProposalSchema)
    def post(self, body: dict[str, Any]) -> ProposalInfo:
        """Propose an act that needs two administrators; it waits for another's confirmation."""
        with work() as w:
            return service.propose(
                w,
                principal=current_principal(),
                action=body["action"],
                target_id=body["target_id"],
                reason=body["reason"],
            )

    @require(Permission.PROPOSAL_READ)
    @blp.arguments(ProposalQuerySchema, location="query")
    @blp.response(200, ProposalPageSchema)
    def get(self, query: dict[str, Any]) -> Page[ProposalInfo]:
        """List proposals, oldest first (admins and oversight bodies)."""
        with work() as w:
            return service.list_proposals(w, principal=current_principal(), **query)


@blp.route("/<uuid:proposal_id>")
class ProposalById(MethodView):
    @require(Permission.PROPOSAL_READ)
    @blp.response(200, ProposalSchema)
    def get(self, proposal_id: UUID) -> ProposalInfo:
        """Read one proposal."""
        with work() as w:
            return service.get_proposal(w, principal=current_principal(), proposal_id=proposal_id)


@blp.route("/<uuid:proposal_id>/confirm")
class ConfirmProposal(MethodView):
    @require(Permission.PROPOSAL_DECIDE)
    @blp.arguments(ReasonSchema)
    @blp.response(200, ProposalSchema)
    def post(self, body: dict[str, Any], proposal_id: UUID) -> ProposalInfo:
        """Confirm another administrator's proposal: the act is carried out now."""
        with work() as w:
            return service.confirm_proposal(
                w,
                principal=current_principal(),
                proposal_id=proposal_id,
                reason=body["reason"],
            )


@blp.route("/<uuid:proposal_id>/reject")
class RejectProposal(MethodView):
    @require(Permission.PROPOSAL_DECIDE)
    @blp.arguments(ReasonSchema)
    @blp.response(200, ProposalSchema)
    def post(self, body: dict[str, Any], proposal_id: UUID) -> ProposalInfo:
        """Reject another administrator's proposal (final)."""
        with work() as w:
            return service.reject_proposal(
                w,
                principal=current_principal(),
                proposal_id=proposal_id,
                reason=body["reason"],
            )
