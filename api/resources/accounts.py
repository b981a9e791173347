"""Accounts: read one's own and (by scope) others'; platform admins suspend and reinstate."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal
from api.blueprint import Blueprint
from api.context import work
from api.operations import Decision, reinstating, route_decisions, suspending
from api.schemas.accounts import AccountPageSchema, AccountQuerySchema, AccountSchema
from governance.identity import accounts as service
from governance.identity.accounts import ACCOUNTS, AccountInfo, Page
from governance.identity.permissions import Permission

blp = Blueprint.resource(__name__, "People's accounts.")


@blp.route("")
class Accounts(MethodView):
    @blp.operation(Permission.ACCOUNT_READ, 200, AccountPageSchema, query=AccountQuerySchema)
    def get(self, query: dict[str, Any]) -> Page[AccountInfo]:
        """List accounts within reach (admins, oversight: all; supervisors: their agency)."""
        with work() as w:
            return service.list_accounts(w, principal=current_principal(), **query)


@blp.route("/me")
class Me(MethodView):
    @blp.operation(Permission.ACCOUNT_READ, 200, AccountSchema)
    def get(self) -> AccountInfo:
        """Read the caller's own account."""
        principal = current_principal()
        with work() as w:
            return service.get_account(w, principal=principal, account_id=principal.account_id)


@blp.route("/<uuid:account_id>")
class AccountById(MethodView):
    @blp.operation(Permission.ACCOUNT_READ, 200, AccountSchema)
    def get(self, account_id: UUID) -> AccountInfo:
        """Read one account."""
        with work() as w:
            return service.get_account(w, principal=current_principal(), account_id=account_id)


route_decisions(
    blp,
    "account_id",
    "Account",
    AccountSchema,
    Decision(
        "suspend",
        Permission.ACCOUNT_SUSPEND,
        suspending(ACCOUNTS),
        "Suspend an account; its keys stop working on their next request.",
    ),
    Decision(
        "reinstate",
        Permission.ACCOUNT_SUSPEND,
        reinstating(ACCOUNTS),
        "Reinstate a suspended account.",
    ),
)
