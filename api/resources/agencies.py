"""Agencies: read within reach; platform admins suspend and reinstate them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal
from api.blueprint import Blueprint
from api.context import work
from api.operations import Decision, reinstating, route_decisions
from api.schemas.agencies import AgencyPageSchema, AgencyQuerySchema, AgencySchema
from api.schemas.fields import ReasonSchema
from api.schemas.proposals import ProposalSchema
from governance.identity import agencies as service
from governance.identity import proposals
from governance.identity.accounts import Page
from governance.identity.agencies import AGENCIES, AgencyInfo
from governance.identity.permissions import Permission
from governance.identity.proposals import ProposalInfo, ProposedAct

blp = Blueprint.resource(__name__, "Approved agencies.")


@blp.route("")
class Agencies(MethodView):
    @blp.operation(Permission.AGENCY_READ, 200, AgencyPageSchema, query=AgencyQuerySchema)
    def get(self, query: dict[str, Any]) -> Page[AgencyInfo]:
        """List agencies (admins, oversight: all; members: their own)."""
        with work() as w:
            return service.list_agencies(w, principal=current_principal(), **query)


@blp.route("/<uuid:agency_id>")
class AgencyById(MethodView):
    @blp.operation(Permission.AGENCY_READ, 200, AgencySchema)
    def get(self, agency_id: UUID) -> AgencyInfo:
        """Read one agency."""
        with work() as w:
            return service.get_agency(w, principal=current_principal(), agency_id=agency_id)


@blp.route("/<uuid:agency_id>/suspend")
class SuspendAgency(MethodView):
    @blp.operation(Permission.AGENCY_SUSPEND, 202, ProposalSchema, body=ReasonSchema)
    def post(self, body: dict[str, Any], agency_id: UUID) -> ProposalInfo:
        """Propose to suspend an agency; a second administrator confirms it.

        Answers with the pending proposal. Once a different administrator confirms it at
        ``POST /v1/proposals/{id}/confirm``, every key of the agency's accounts stops on its
        next request.
        """
        with work() as w:
            return proposals.propose(
                w,
                principal=current_principal(),
                action=ProposedAct.AGENCY_SUSPEND,
                target_id=agency_id,
                reason=body["reason"],
            )


route_decisions(
    blp,
    "agency_id",
    "Agency",
    AgencySchema,
    Decision(
        "reinstate",
        Permission.AGENCY_SUSPEND,
        reinstating(AGENCIES),
        "Reinstate a suspended agency.",
    ),
)
