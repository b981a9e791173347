"""Administrators' source-policy pages: block a site (its faces are purged) or allow it again,
and follow a large site's purge to the end.

The forms are POST /v1/source-policies's (``SourcePolicyInputSchema``) and the flows its
governance functions (``block_site``, ``set_source_policy``). A block commits first; the purge
then runs for a time budget only (``PURGE_BUDGET_SECONDS``), so a large site never holds one
request open: the site's page shows how far it went and continues it (``purge_site``), by a form
that works without JavaScript, which ``static/purge.js`` repeats by itself while faces remain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response as BaseResponse

from api.console.nav import NavItem
from api.console.security import console_principal, signed_in
from api.context import engines, units, work
from api.errors import answer_for
from api.schemas.gallery import SourcePolicyInputSchema
from biometrics.errors import DomainError
from governance.core.errors import InvalidInput, NotFound
from governance.gallery import opt_outs as service
from governance.gallery.models import PolicyStatus
from governance.gallery.opt_outs import PolicyInfo, PurgeProgress
from governance.identity.permissions import Permission, scope_for
from governance.identity.principals import Principal, actor_of

__all__ = ["NAVIGATION", "PURGE_BATCH_SIZE", "PURGE_BUDGET_SECONDS", "bp"]

bp = Blueprint("sites", __name__)
NAVIGATION = (
    NavItem("console.sites.policies", "Site policies", Permission.SOURCE_POLICY_READ, order=45),
)

# How long one request purges before it answers with the progress so far, and how many photos
# each batch (one unit of work, one ledger entry) removes.
PURGE_BUDGET_SECONDS = 2.0
PURGE_BATCH_SIZE = 100

_FIELDS = ("site", "reason", "reference")
_STATUSES = (PolicyStatus.BLOCKED.value, PolicyStatus.ALLOWED.value)
DONE = {
    "blocked": "The site is blocked: photos from it are refused and searches leave its faces "
    "out from now on.",
    "allowed": "The site is allowed again: photos from it may be enrolled. Faces purged while "
    "it was blocked do not come back.",
    "purged": "The purge went on.",
}


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _may_set() -> bool:
    return scope_for(_me().role, Permission.SOURCE_POLICY_SET) is not None


def _list_page(
    status: str | None = None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    with work() as w:
        policies = service.list_policies(w)
    return render_template(
        "sites/list.html",
        policies=policies,
        may_set=_may_set(),
        failed=status,
        values=values or {},
        errors=errors or {},
    )


def _show_page(policy: PolicyInfo, *, refusal: str | None = None) -> str:
    return render_template(
        "sites/show.html",
        policy=policy,
        may_set=_may_set(),
        done=DONE.get(request.args.get("done", "")),
        refusal=refusal,
    )


def _errors(messages: Any) -> dict[str, str]:
    """marshmallow's (or a governance error's) ``{field: [message]}`` by form field."""
    if not isinstance(messages, Mapping):
        messages = {"form": messages}
    errors: dict[str, str] = {}
    for name, said in messages.items():
        text = " ".join(map(str, said)) if isinstance(said, list | tuple) else str(said)
        key = name if name in _FIELDS else "form"
        errors[key] = f"{errors[key]} {text}" if key in errors else text
    return errors


@bp.get("/sites")
@signed_in(Permission.SOURCE_POLICY_READ)
def policies() -> str:
    """Every site's policy, with the purge of each blocked site; block or allow a site."""
    return _list_page()


@bp.post("/sites")
@signed_in(Permission.SOURCE_POLICY_SET)
def set_policy() -> Any:
    """Block a site (and purge it for a while) or allow it again, as POST /v1/source-policies."""
    status = request.form.get("status", "")
    if status not in _STATUSES:
        raise BadRequest("Send one of the page's forms: block a site, or allow it again.")
    values = {name: request.form.get(name, "")[:4000] for name in _FIELDS}
    try:
        body = SourcePolicyInputSchema().load({**values, "status": status})
    except ma.ValidationError as exc:
        return _list_page(status, values, _errors(exc.messages)), 422
    actor = actor_of(_me())
    blocked: list[PurgeProgress] = []  # block_site tells once the block has committed
    try:
        if status == PolicyStatus.BLOCKED:
            policy = service.block_site(
                units(),
                engines,
                site=body["site"],
                reason=body["reason"],
                reference=body["reference"],
                actor=actor,
                progress=blocked.append,
                batch_size=PURGE_BATCH_SIZE,
                budget_seconds=PURGE_BUDGET_SECONDS,
            )
        else:
            with work() as w:
                policy = service.set_source_policy(w, **body, actor=actor)
    except DomainError as exc:
        if blocked:  # the block stands: only its purge failed
            return _purge_stopped(blocked[0].site, exc)
        if not isinstance(exc, InvalidInput):
            raise
        errors = _errors(exc.fields) if exc.fields else {"form": exc.detail}
        return _list_page(status, values, errors), 422
    return redirect(url_for(".site", site=policy.site, done=status), 303)


def _purge_stopped(site: str, exc: DomainError) -> tuple[str, int]:
    """The site's page after its block committed and the purge that follows it failed."""
    with work() as w:
        current = service.get_policy(w, site)
    assert current is not None, "a committed block keeps its policy"
    if current.status == PolicyStatus.BLOCKED:
        refusal = (
            f"{current.site} is blocked: photos from it are refused and searches leave its "
            f"faces out. The purge of its faces stopped, though ({exc.detail}): continue it "
            "from this page once the problem is solved."
        )
    else:
        refusal = (
            f"{current.site} was blocked, then allowed again meanwhile, so the purge of its "
            f"faces stopped ({exc.detail}). Block it again to purge them."
        )
    return _show_page(current, refusal=refusal), answer_for(exc).status


@bp.get("/sites/<string:site>")
@signed_in(Permission.SOURCE_POLICY_READ)
def site(site: str) -> str:
    """One site's policy and, while it is blocked, how far the purge of its faces has gone."""
    with work() as w:
        policy = service.get_policy(w, site)
    if policy is None:
        raise NotFound(f"No policy is recorded for {site}: it was never blocked or allowed.")
    return _show_page(policy)


@bp.post("/sites/<string:site>/purge")
@signed_in(Permission.SOURCE_POLICY_SET)
def continue_purge(site: str) -> Any:
    """Purge the blocked site for a while longer; a script asking for JSON gets the progress."""
    wants_json = request.accept_mimetypes.best == "application/json"
    batches: list[PurgeProgress] = []  # purge_site tells after each batch that removed photos
    try:
        policy = service.purge_site(
            units(),
            engines,
            site=site,
            actor=actor_of(_me()),
            budget_seconds=PURGE_BUDGET_SECONDS,
            batch_size=PURGE_BATCH_SIZE,
            progress=batches.append,
        )
    except InvalidInput as exc:
        if wants_json:
            raise
        with work() as w:
            current = service.get_policy(w, site)
        if current is None:
            raise NotFound(f"No policy is recorded for {site}: block it first.") from exc
        refusal = (
            f"{current.site} is not blocked, so nothing was purged. Only a blocked site's "
            "faces are purged: block it again on the Site policies page first."
        )
        return _show_page(current, refusal=refusal), answer_for(exc).status
    if wants_json:
        return _progress(policy, removed_any=bool(batches))
    return redirect(url_for(".site", site=policy.site, done="purged"), 303)


def _progress(policy: PolicyInfo, *, removed_any: bool) -> BaseResponse:
    """The purge's progress for the page's script. It is done when no face remains, or when
    this step removed nothing (faces still counted would never go: a script must not ask for
    ever; the page, reloaded, shows what is left)."""
    total = policy.faces_purged + policy.faces_remaining
    return jsonify(
        site=policy.site,
        purged=policy.faces_purged,
        remaining=policy.faces_remaining,
        total=total,
        done=policy.faces_remaining == 0 or not removed_any,
    )
