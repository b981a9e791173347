"""Agency registrations: apply (public, rate-limited), review (platform admins), claim the key."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_principal, public
from api.blueprint import Blueprint
from api.context import work
from api.operations import Application, Summaries, route_application
from api.ratelimit import limiter, registration_limit
from api.schemas.registrations import (
    RegistrationPageSchema,
    RegistrationQuerySchema,
    RegistrationSchema,
    RegistrationSubmitSchema,
    SubmittedSchema,
)
from governance.identity import applications
from governance.identity import registrations as service
from governance.identity.accounts import Page
from governance.identity.applications import Submitted
from governance.identity.permissions import Permission
from governance.identity.registrations import RegistrationInfo

blp = Blueprint.resource(
    __name__, "Agencies apply; platform admins review; the applicant claims the first key."
)


@blp.route("")
class Registrations(MethodView):
    @public
    @limiter.limit(registration_limit)
    @blp.arguments(RegistrationSubmitSchema)
    @blp.response(202, SubmittedSchema)
    def post(self, body: dict[str, Any]) -> Submitted:
        """Apply for an agency account.

        Answers with the registration id. Nothing secret is returned: on approval, a one-time
        claim secret is mailed to the contact's address, to claim the first API key with.
        """
        with work() as w:
            return service.submit_registration(
                w,
                agency=body["agency"],
                contact=body["contact"],
                intended_use=body["intended_use"],
            )

    @blp.operation(
        Permission.REGISTRATION_REVIEW, 200, RegistrationPageSchema, query=RegistrationQuerySchema
    )
    def get(self, query: dict[str, Any]) -> Page[RegistrationInfo]:
        """List registrations, oldest first, optionally by status."""
        with work() as w:
            return applications.list_applications(
                w, service.REGISTRATIONS, principal=current_principal(), **query
            )


route_application(
    blp,
    Application(
        id="registration_id",
        name="Registration",
        read_permission=Permission.REGISTRATION_REVIEW,
        decide_permission=Permission.REGISTRATION_REVIEW,
        schema=RegistrationSchema,
        read=service.get_registration,
        approve=service.approve_registration,
        reject=service.reject_registration,
        claim=service.claim_registration,
        resend=service.resend_claim,
        summaries=Summaries(
            read="Read one registration.",
            approve="Approve a pending registration: create the agency and its first supervisor.",
            reject="Reject a pending registration (final).",
            claim=(
                "Claim the first API key of an approved registration, once, with the claim secret."
            ),
            resend=(
                "Mail a new claim secret to the contact of an approved, unclaimed registration.\n\n"
                "The previous secret stops working; use it after an expiry or a lost message."
            ),
        ),
    ),
)
