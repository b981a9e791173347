"""Account requests: a supervisor asks for another account; a platform admin decides; claim."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal, public, require, with_claim_attempt
from api.blueprint import Blueprint
from api.context import runtime, work
from api.schemas.account_requests import (
    AccountRequestCreateSchema,
    AccountRequestPageSchema,
    AccountRequestQuerySchema,
    AccountRequestSchema,
)
from api.schemas.fields import ReasonSchema
from api.schemas.registrations import ClaimSchema, IssuedCredentialSchema, SubmittedSchema
from governance.identity import account_requests as service
from governance.identity import applications
from governance.identity.account_requests import AccountRequestInfo
from governance.identity.accounts import Page
from governance.identity.applications import Submitted
from governance.identity.credentials import IssuedCredential
from governance.identity.permissions import Permission

blp = Blueprint(
    "account_requests",
    __name__,
    url_prefix="/v1/account-requests",
    description="More accounts for an agency, each approved by a platform admin.",
)


@blp.route("")
class AccountRequests(MethodView):
    @require(Permission.ACCOUNT_REQUEST_CREATE)
    @blp.arguments(AccountRequestCreateSchema)
    @blp.response(202, SubmittedSchema)
    def post(self, body: dict[str, Any]) -> Submitted:
        """Request another account in one's agency.

        Once a platform admin approves it, a one-time claim secret is mailed to the person's
        address (never to the requester); the person claims the account's first API key.
        """
        with work() as w:
            return service.request_account(
                w,
                principal=current_principal(),
                role=body["role"],
                person=body["person"],
            )

    @require(Permission.ACCOUNT_REQUEST_READ)
    @blp.arguments(AccountRequestQuerySchema, location="query")
    @blp.response(200, AccountRequestPageSchema)
    def get(self, query: dict[str, Any]) -> Page[AccountRequestInfo]:
        """List account requests (admins: all; supervisors: their agency's)."""
        with work() as w:
            return applications.list_applications(
                w, service.ACCOUNT_REQUESTS, principal=current_principal(), **query
            )


@blp.route("/<uuid:request_id>")
class AccountRequestById(MethodView):
    @require(Permission.ACCOUNT_REQUEST_READ)
    @blp.response(200, AccountRequestSchema)
    def get(self, request_id: UUID) -> AccountRequestInfo:
        """Read one account request."""
        with work() as w:
            return service.get_request(w, principal=current_principal(), request_id=request_id)


@blp.route("/<uuid:request_id>/approve")
class ApproveAccountRequest(MethodView):
    @require(Permission.ACCOUNT_REQUEST_DECIDE)
    @blp.arguments(ReasonSchema)
    @blp.response(200, AccountRequestSchema)
    def post(self, body: dict[str, Any], request_id: UUID) -> AccountRequestInfo:
        """Approve a pending account request and create the account."""
        with work() as w:
            return service.approve_request(
                w,
                principal=current_principal(),
                request_id=request_id,
                reason=body["reason"],
                claims=runtime().claims,
            )


@blp.route("/<uuid:request_id>/reject")
class RejectAccountRequest(MethodView):
    @require(Permission.ACCOUNT_REQUEST_DECIDE)
    @blp.arguments(ReasonSchema)
    @blp.response(200, AccountRequestSchema)
    def post(self, body: dict[str, Any], request_id: UUID) -> AccountRequestInfo:
        """Reject a pending account request (final)."""
        with work() as w:
            return service.reject_request(
                w,
                principal=current_principal(),
                request_id=request_id,
                reason=body["reason"],
            )


@blp.route("/<uuid:request_id>/claim")
class ClaimAccountRequest(MethodView):
    @public
    @blp.arguments(ClaimSchema)
    @blp.response(201, IssuedCredentialSchema)
    def post(self, body: dict[str, Any], request_id: UUID) -> IssuedCredential:
        """Claim the first API key of an approved account request, once, with its secret."""

        def claim() -> IssuedCredential:
            with work() as w:
                return service.claim_request(
                    w,
                    request_id=request_id,
                    claim_secret=body["claim_secret"],
                    claims=runtime().claims,
                )

        return with_claim_attempt(claim)


@blp.route("/<uuid:request_id>/resend")
class ResendAccountClaim(MethodView):
    @require(Permission.ACCOUNT_REQUEST_DECIDE)
    @blp.response(200, AccountRequestSchema)
    def post(self, request_id: UUID) -> AccountRequestInfo:
        """Mail a new claim secret to the person of an approved, unclaimed account request.

        The previous secret stops working; use it after an expiry or a lost message.
        """
        with work() as w:
            return service.resend_claim(
                w,
                principal=current_principal(),
                request_id=request_id,
                claims=runtime().claims,
            )
