"""Proposals: acts that would silence oversight, confirmed by a second administrator."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal
from api.blueprint import Blueprint
from api.context import work
from api.operations import Decision, route_decisions
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

blp = Blueprint.resource(
    __name__,
    (
        "Suspending an agency or an oversight account, and revoking an oversight account's "
        "key: one administrator proposes, a different one confirms."
    ),
)


@blp.route("")
class Proposals(MethodView):
    @blp.operation(Permission.PROPOSAL_DECIDE, 201, ProposalSchema, body=ProposalCreateSchema)
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

    @blp.operation(Permission.PROPOSAL_READ, 200, ProposalPageSchema, query=ProposalQuerySchema)
    def get(self, query: dict[str, Any]) -> Page[ProposalInfo]:
        """List proposals, oldest first (admins and oversight bodies)."""
        with work() as w:
            return service.list_proposals(w, principal=current_principal(), **query)


@blp.route("/<uuid:proposal_id>")
class ProposalById(MethodView):
    @blp.operation(Permission.PROPOSAL_READ, 200, ProposalSchema)
    def get(self, proposal_id: UUID) -> ProposalInfo:
        """Read one proposal."""
        with work() as w:
            return service.get_proposal(w, principal=current_principal(), proposal_id=proposal_id)


route_decisions(
    blp,
    "proposal_id",
    "Proposal",
    ProposalSchema,
    Decision(
        "confirm",
        Permission.PROPOSAL_DECIDE,
        service.confirm_proposal,
        "Confirm another administrator's proposal: the act is carried out now.",
    ),
    Decision(
        "reject",
        Permission.PROPOSAL_DECIDE,
        service.reject_proposal,
        "Reject another administrator's proposal (final).",
    ),
)
