"""Staff accounts: platform admins create oversight and curator accounts (no agency)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import current_principal, require
from api.context import runtime, transaction
from api.schemas.registrations import SubmittedSchema
from api.schemas.staff import StaffCreateSchema
from governance import account_requests as service
from governance.permissions import Permission
from governance.registrations import Submitted

blp = Blueprint(
    "staff",
    __name__,
    url_prefix="/v1/staff",
    description="Oversight and curator accounts, created by platform admins.",
)


@blp.route("")
class Staff(MethodView):
    @require(Permission.STAFF_CREATE)
    @blp.arguments(StaffCreateSchema)
    @blp.response(201, SubmittedSchema)
    def post(self, body: dict[str, Any]) -> Submitted:
        """Create an oversight or curator account.

        Answers with an account request (already approved) and its one-time claim secret. Pass
        the secret to the person out of band; they claim their first API key at
        ``POST /v1/account-requests/{id}/claim``, so no administrator ever holds it.
        """
        with transaction() as session:
            return service.create_staff(
                session,
                actor=current_principal(),
                role=body["role"],
                person=body["person"],
                keys=runtime().keys,
                now=runtime().now(),
            )
