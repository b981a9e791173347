"""Account requests: a supervisor asks for another account; a platform admin decides; claim."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_principal
from api.blueprint import Blueprint
from api.context import work
from api.operations import Application, Summaries, route_application
from api.schemas.account_requests import (
    AccountRequestCreateSchema,
    AccountRequestPageSchema,
    AccountRequestQuerySchema,
    AccountRequestSchema,
)
from api.schemas.registrations import SubmittedSchema
from governance.identity import account_requests as service
from governance.identity import applications
from governance.identity.account_requests import AccountRequestInfo
from governance.identity.accounts import Page
from governance.identity.applications import Submitted
from governance.identity.permissions import Permission

blp = Blueprint.resource(
    __name__, "More accounts for an agency, each approved by a platform admin."
)


@blp.route("")
class AccountRequests(MethodView):
    @blp.operation(
        Permission.ACCOUNT_REQUEST_CREATE, 202, SubmittedSchema, body=AccountRequestCreateSchema
    )
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

    @blp.operation(
        Permission.ACCOUNT_REQUEST_READ,
        200,
        AccountRequestPageSchema,
        query=AccountRequestQuerySchema,
    )
    def get(self, query: dict[str, Any]) -> Page[AccountRequestInfo]:
        """List account requests (admins: all; supervisors: their agency's)."""
        with work() as w:
            return applications.list_applications(
                w, service.ACCOUNT_REQUESTS, principal=current_principal(), **query
            )


route_application(
    blp,
    Application(
        id="request_id",
        name="AccountRequest",
        read_permission=Permission.ACCOUNT_REQUEST_READ,
        decide_permission=Permission.ACCOUNT_REQUEST_DECIDE,
        schema=AccountRequestSchema,
        read=service.get_request,
        approve=service.approve_request,
        reject=service.reject_request,
        claim=service.claim_request,
        resend=service.resend_claim,
        summaries=Summaries(
            read="Read one account request.",
            approve="Approve a pending account request and create the account.",
            reject="Reject a pending account request (final).",
            claim="Claim the first API key of an approved account request, once, with its secret.",
            resend=(
                "Mail a new claim secret to the person of an approved, unclaimed account request."
                "\n\nThe previous secret stops working; use it after an expiry or a lost message."
            ),
        ),
    ),
)
