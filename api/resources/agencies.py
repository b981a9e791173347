"""Agencies: read within reach; platform admins suspend and reinstate them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal, require
from api.blueprint import Blueprint
from api.context import work
from api.schemas.agencies import AgencyPageSchema, AgencyQuerySchema, AgencySchema
from api.schemas.fields import ReasonSchema
from api.schemas.proposals import ProposalSchema
from governance.identity import agencies as service
from governance.identity import proposals, standing
from governance.identity.accounts import Page
from governance.identity.agencies import AGENCIES, AgencyInfo
from governance.identity.permissions import Permission
from governance.identity.proposals import ProposalInfo, ProposedAct

blp = Blueprint("agencies", __name__, url_prefix="/v1/agencies", description="Approved agencies.")


@blp.route("")
class Agencies(MethodView):
    @require(Permission.AGENCY_READ)
    @blp.arguments(AgencyQuerySchema, location="query")
    @blp.response(200, AgencyPageSchema)
    def get(self, query: dict[str, Any]) -> Page[AgencyInfo]:
        """List agencies (admins, oversight: all; members: their own)."""
        with work() as w:
            return service.list_agencies(w, principal=current_principal(), **query)


@blp.route("/<uuid:agency_id>")
class AgencyById(MethodView):
    @require(Permission.AGENCY_READ)
    @blp.response(200, AgencySchema)
    def get(self, agency_id: UUID) -> AgencyInfo:
        """Read one agency."""
        with work() as w:
            return service.get_agency(w, principal=current_principal(), agency_id=agency_id)


@blp.route("/<uuid:agency_id>/suspend")
class SuspendAgency(MethodView):
    @require(Permission.AGENCY_SUSPEND)
    @blp.arguments(ReasonSchema)
    @blp.response(202, ProposalSchema)
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


@blp.route("/<uuid:agency_id>/reinstate")
class ReinstateAgency(MethodView):
    @require(Permission.AGENCY_SUSPEND)
    @blp.arguments(ReasonSchema)
    @blp.response(200, AgencySchema)
    def post(self, body: dict[str, Any], agency_id: UUID) -> AgencyInfo:
        """Reinstate a suspended agency."""
        with work() as w:
            return standing.reinstate(
                w,
                AGENCIES,
                principal=current_principal(),
                target_id=agency_id,
                reason=body["reason"],
            )
