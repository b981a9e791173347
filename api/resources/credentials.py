"""API credentials: list one's own (never a secret), create another to rotate, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from flask.views import MethodView

from api.auth import current_principal
from api.blueprint import Blueprint
from api.context import runtime, work
from api.schemas.credentials import (
    CredentialCreateSchema,
    CredentialListQuerySchema,
    CredentialListSchema,
    CredentialSchema,
    IssuedCredentialSchema,
)
from governance.identity import credentials as service
from governance.identity.credentials import CredentialInfo, IssuedCredential
from governance.identity.permissions import Permission

blp = Blueprint.resource(
    __name__, "API keys fw_<id>_<secret>: shown once, stored as a hash, revocable at once."
)


@blp.route("")
class Credentials(MethodView):
    @blp.operation(
        Permission.CREDENTIAL_READ, 200, CredentialListSchema, query=CredentialListQuerySchema
    )
    def get(self, query: dict[str, Any]) -> dict[str, list[CredentialInfo]]:
        """List one's own credentials (admins: any account's), without secrets."""
        with work() as w:
            items = service.list_credentials(
                w,
                principal=current_principal(),
                account_id=query.get("account_id"),
            )
        return {"items": items}

    @blp.operation(
        Permission.CREDENTIAL_ISSUE,
        201,
        IssuedCredentialSchema,
        body=CredentialCreateSchema,
        optional=True,
    )
    def post(self, body: dict[str, Any]) -> IssuedCredential:
        """Create another API key for oneself (to rotate keys); it is shown once."""
        with work() as w:
            return service.create_credential(
                w,
                principal=current_principal(),
                label=body.get("label"),
                ttl=timedelta(days=runtime().settings.credential_ttl_days),
            )


@blp.route("/<uuid:credential_id>")
class CredentialById(MethodView):
    @blp.operation(Permission.CREDENTIAL_READ, 200, CredentialSchema)
    def get(self, credential_id: UUID) -> CredentialInfo:
        """Read one credential, without its secret."""
        with work() as w:
            return service.get_credential(
                w,
                principal=current_principal(),
                credential_id=credential_id,
            )

    @blp.operation(Permission.CREDENTIAL_REVOKE, 204)
    def delete(self, credential_id: UUID) -> None:
        """Revoke a credential (one's own; admins: any); it stops working at once."""
        with work() as w:
            service.revoke_credential(
                w,
                principal=current_principal(),
                credential_id=credential_id,
            )
