"""Platform opt-outs: administrators block a site; its faces leave the gallery."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_principal
from api.blueprint import Blueprint
from api.context import engines, units, work
from api.schemas.gallery import SourcePolicyInputSchema, SourcePolicySchema
from governance.core.errors import NotFound
from governance.gallery import opt_outs as service
from governance.gallery.models import PolicyStatus
from governance.gallery.opt_outs import PolicyInfo
from governance.identity.permissions import Permission
from governance.identity.principals import actor_of

__all__ = ["blp"]

blp = Blueprint.resource(
    __name__, "Sites that opted out of the gallery (e.g. after a cease-and-desist letter)."
)


@blp.route("")
class SourcePolicies(MethodView):
    @blp.operation(
        Permission.SOURCE_POLICY_SET, 200, SourcePolicySchema, body=SourcePolicyInputSchema
    )
    def post(self, body: dict[str, Any]) -> PolicyInfo:
        """Set a site's policy; blocking it purges every face enrolled from it.

        The policy takes effect before the purge starts: from then on, enrolment from the site is
        refused and searches never return its faces. The answer gives the number purged.
        """
        actor = actor_of(current_principal())
        if body["status"] == PolicyStatus.BLOCKED:
            return service.block_site(
                units(),
                engines,
                site=body["site"],
                reason=body["reason"],
                reference=body["reference"],
                actor=actor,
            )
        with work() as w:
            return service.set_source_policy(w, **body, actor=actor)

    @blp.operation(Permission.SOURCE_POLICY_READ, 200, SourcePolicySchema(many=True))
    def get(self) -> list[PolicyInfo]:
        """List every site policy."""
        with work() as w:
            return service.list_policies(w)


@blp.route("/<string:site>")
class SourcePolicyBySite(MethodView):
    @blp.operation(Permission.SOURCE_POLICY_READ, 200, SourcePolicySchema)
    def get(self, site: str) -> PolicyInfo:
        """Read one site's policy."""
        with work() as w:
            policy = service.get_policy(w, site)
        if policy is None:
            raise NotFound(f"no policy for {site}")
        return policy
