"""Accounts: read one's own and (by scope) others'; platform admins suspend and reinstate."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal, require
from api.blueprint import Blueprint
from api.context import work
from api.schemas.accounts import AccountPageSchema, AccountQuerySchema, AccountSchema
from api.schemas.fields import ReasonSchema
from governance.identity import accounts as service
from governance.identity import standing
from governance.identity.accounts import ACCOUNTS, AccountInfo, Page
from governance.identity.permissions import Permission

blp = Blueprint("accounts", __name__, url_prefix="/v1/accounts", description="People's accounts.")


@blp.route("")
class Accounts(MethodView):
    @require(Permission.ACCOUNT_READ)
    @blp.arguments(AccountQuerySchema, location="query")
    @blp.response(200, AccountPageSchema)
    def get(self, query: dict[str, Any]) -> Page[AccountInfo]:
        """List accounts within reach (admins, oversight: all; supervisors: their agency)."""
        with work() as w:
            return service.list_accounts(w, principal=current_principal(), **query)


@blp.route("/me")
class Me(MethodView):
    @require(Permission.ACCOUNT_READ)
    @blp.response(200, AccountSchema)
    def get(self) -> AccountInfo:
        """Read the caller's own account."""
        principal = current_principal()
        with work() as w:
            return service.get_account(w, principal=principal, account_id=principal.account_id)


@blp.route("/<uuid:account_id>")
class AccountById(MethodView):
    @require(Permission.ACCOUNT_READ)
    @blp.response(200, AccountSchema)
    def get(self, account_id: UUID) -> AccountInfo:
        """Read one account."""
        with work() as w:
            return service.get_account(w, principal=current_principal(), account_id=account_id)


@blp.route("/<uuid:account_id>/suspend")
class SuspendAccount(MethodView):
    @require(Permission.ACCOUNT_SUSPEND)
    @blp.arguments(ReasonSchema)
    @blp.response(200, AccountSchema)
    def post(self, body: dict[str, Any], account_id: UUID) -> AccountInfo:
        """Suspend an account; its keys stop working on their next request."""
        with work() as w:
            return standing.suspend(
                w,
                ACCOUNTS,
                principal=current_principal(),
                target_id=account_id,
                reason=body["reason"],
            )


@blp.route("/<uuid:account_id>/reinstate")
class ReinstateAccount(MethodView):
    @require(Permission.ACCOUNT_SUSPEND)
    @blp.arguments(ReasonSchema)
    @blp.response(200, AccountSchema)
    def post(self, body: dict[str, Any], account_id: UUID) -> AccountInfo:
        """Reinstate a suspended account."""
        with work() as w:
            return standing.reinstate(
                w,
                ACCOUNTS,
                principal=current_principal(),
                target_id=account_id,
                reason=body["reason"],
            )
