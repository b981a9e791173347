"""Staff accounts: platform admins create oversight and curator accounts (no agency)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_principal
from api.blueprint import Blueprint
from api.context import runtime, work
from api.schemas.registrations import SubmittedSchema
from api.schemas.staff import StaffCreateSchema
from governance.identity import account_requests as service
from governance.identity.applications import Submitted
from governance.identity.permissions import Permission

blp = Blueprint.resource(__name__, "Oversight and curator accounts, created by platform admins.")


@blp.route("")
class Staff(MethodView):
    @blp.operation(Permission.STAFF_CREATE, 201, SubmittedSchema, body=StaffCreateSchema)
    def post(self, body: dict[str, Any]) -> Submitted:
        """Create a curator account, or propose an oversight account.

        A curator's request is approved at once; an oversight account (``reason`` required)
        waits until a second administrator approves it at
        ``POST /v1/account-requests/{id}/approve``. On approval a one-time claim secret is
        mailed to the person, who claims their first API key at
        ``POST /v1/account-requests/{id}/claim``, so no administrator ever holds it.
        """
        with work() as w:
            return service.create_staff(
                w,
                principal=current_principal(),
                role=body["role"],
                person=body["person"],
                reason=body.get("reason"),
                claims=runtime().claims,
            )
