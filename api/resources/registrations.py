"""Agency registrations: apply (public, rate-limited), review (platform admins), claim the key."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal, public, require, with_claim_attempt
from api.blueprint import Blueprint
from api.context import runtime, work
from api.ratelimit import limiter, registration_limit
from api.schemas.fields import ReasonSchema
from api.schemas.registrations import (
    ClaimSchema,
    IssuedCredentialSchema,
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
from governance.identity.credentials import IssuedCredential
from governance.identity.permissions import Permission
from governance.identity.registrations import RegistrationInfo

blp = Blueprint(
    "registrations",
    __name__,
    url_prefix="/v1/registrations",
    description="Agencies apply; platform admins review; the applicant claims the first key.",
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

    @require(Permission.REGISTRATION_REVIEW)
    @blp.arguments(RegistrationQuerySchema, location="query")
    @blp.response(200, RegistrationPageSchema)
    def get(self, query: dict[str, Any]) -> Page[RegistrationInfo]:
        """List registrations, oldest first, optionally by status."""
        with work() as w:
            return applications.list_applications(
                w, service.REGISTRATIONS, principal=current_principal(), **query
            )


@blp.route("/<uuid:registration_id>")
class RegistrationById(MethodView):
    @require(Permission.REGISTRATION_REVIEW)
    @blp.response(200, RegistrationSchema)
    def get(self, registration_id: UUID) -> RegistrationInfo:
        """Read one registration."""
        with work() as w:
            return service.get_registration(
                w, principal=current_principal(), registration_id=registration_id
            )


@blp.route("/<uuid:registration_id>/approve")
class ApproveRegistration(MethodView):
    @require(Permission.REGISTRATION_REVIEW)
    @blp.arguments(ReasonSchema)
    @blp.response(200, RegistrationSchema)
    def post(self, body: dict[str, Any], registration_id: UUID) -> RegistrationInfo:
        """Approve a pending registration: create the agency and its first supervisor."""
        with work() as w:
            return service.approve_registration(
                w,
                principal=current_principal(),
                registration_id=registration_id,
                reason=body["reason"],
                claims=runtime().claims,
            )


@blp.route("/<uuid:registration_id>/reject")
class RejectRegistration(MethodView):
    @require(Permission.REGISTRATION_REVIEW)
    @blp.arguments(ReasonSchema)
    @blp.response(200, RegistrationSchema)
    def post(self, body: dict[str, Any], registration_id: UUID) -> RegistrationInfo:
        """Reject a pending registration (final)."""
        with work() as w:
            return service.reject_registration(
                w,
                principal=current_principal(),
                registration_id=registration_id,
                reason=body["reason"],
            )


@blp.route("/<uuid:registration_id>/claim")
class ClaimRegistration(MethodView):
    @public
    @blp.arguments(ClaimSchema)
    @blp.response(201, IssuedCredentialSchema)
    def post(self, body: dict[str, Any], registration_id: UUID) -> IssuedCredential:
        """Claim the first API key of an approved registration, once, with the claim secret."""

        def claim() -> IssuedCredential:
            with work() as w:
                return service.claim_registration(
                    w,
                    registration_id=registration_id,
                    claim_secret=body["claim_secret"],
                    claims=runtime().claims,
                )

        return with_claim_attempt(claim)


@blp.route("/<uuid:registration_id>/resend")
class ResendRegistrationClaim(MethodView):
    @require(Permission.REGISTRATION_REVIEW)
    @blp.response(200, RegistrationSchema)
    def post(self, registration_id: UUID) -> RegistrationInfo:
        """Mail a new claim secret to the contact of an approved, unclaimed registration.

        The previous secret stops working; use it after an expiry or a lost message.
        """
        with work() as w:
            return service.resend_claim(
                w,
                principal=current_principal(),
                registration_id=registration_id,
                claims=runtime().claims,
            )
