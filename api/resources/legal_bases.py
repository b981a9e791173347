"""Legal bases: record, approve or reject (four eyes), ratify urgent ones, revoke, read.

Deadlines need no scheduler. Every read settles the bases it shows, every decision settles its
basis first in a unit of work of its own (so an expiry or lapse is recorded even when the
decision is then refused), and a throttled sweep runs before requests: at most once per
``FACEWARDEN_LEGAL_BASIS_SWEEP_SECONDS`` per process, timed by the app's clock. ``facewarden
governance sweep`` does the same from the command line (cron, or after downtime).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any
from uuid import UUID

from flask import Flask, current_app
from flask.blueprints import BlueprintSetupState
from flask.views import MethodView

from api.auth import current_principal, require
from api.blueprint import Blueprint
from api.context import EXTENSION, Runtime, effect_handlers, runtime, units, work
from api.schemas.fields import ReasonSchema
from api.schemas.legal_bases import (
    LegalBasisCreateSchema,
    LegalBasisPageSchema,
    LegalBasisQuerySchema,
    LegalBasisSchema,
    OffenceCategorySchema,
    RatificationSchema,
)
from api.settings import ConfigError
from governance.identity.accounts import Page
from governance.identity.permissions import Permission
from governance.legal_basis.decisions import settle_then_decide, settle_then_ratify
from governance.legal_basis.offences import (
    OffenceCatalogue,
    OffenceCategory,
    parse_offence_categories,
)
from governance.legal_basis.services import create_basis, get_basis, list_bases
from governance.legal_basis.values import (
    BasisDraft,
    BasisInfo,
    BasisPolicy,
    Ratification,
    Verdict,
)
from governance.wiring import housekeeping, replay_batch

__all__ = ["blp", "policy"]

log = logging.getLogger("facewarden.api")

blp = Blueprint.resource(
    __name__,
    (
        "The recorded legal basis every search requires: recorded by an investigator or "
        "supervisor, approved by a second supervisor, ratified when urgent, used under a quota."
    ),
)

_OFFENCES = "offence_categories"
_LAST_SWEEP = "legal_basis_last_sweep"
_sweep_lock = threading.Lock()


def _offences(rt: Runtime) -> OffenceCatalogue:
    catalogue = rt.lazy.get(_OFFENCES)
    if isinstance(catalogue, OffenceCatalogue):
        return catalogue
    try:
        catalogue = parse_offence_categories(rt.settings.offence_categories)
    except ValueError as exc:
        raise ConfigError(f"FACEWARDEN_OFFENCE_CATEGORIES: {exc}") from exc
    rt.lazy[_OFFENCES] = catalogue
    return catalogue


def policy() -> BasisPolicy:
    """The legal-basis policy of the running app, from its settings."""
    rt = runtime()
    settings = rt.settings
    return BasisPolicy(
        offences=_offences(rt),
        max_searches=settings.max_searches_per_basis,
        max_validity=timedelta(days=settings.legal_basis_max_days),
        ratification_window=timedelta(hours=settings.urgent_ratification_hours),
    )


@blp.record_once
def _check_settings(state: BlueprintSetupState) -> None:
    # A malformed allowlist stops create_app, naming the variable; the spec generator has no
    # runtime and skips this.
    rt = state.app.extensions.get(EXTENSION)
    if isinstance(rt, Runtime):
        _offences(rt)


_replaying = threading.Lock()


def _replay_in_background(app: Flask) -> None:
    """One batch of pending effects in a daemon thread, unless one is still at work."""
    if not _replaying.acquire(blocking=False):
        return

    def run() -> None:
        try:
            with app.app_context():
                replay_batch(runtime().sessions, effect_handlers)
        except Exception:  # the next sweep tries again
            log.exception("pending effects were not replayed")
        finally:
            _replaying.release()

    threading.Thread(target=run, name="effects-replay", daemon=True).start()


@blp.before_app_request
def _sweep_if_due() -> None:
    # Throttled per process by the app's clock; one batch, so no request waits for a backlog.
    rt = runtime()
    request_units = units()
    now = request_units.now
    interval = timedelta(seconds=rt.settings.legal_basis_sweep_seconds)
    with _sweep_lock:
        last = rt.lazy.get(_LAST_SWEEP)
        if last is not None and last <= now < last + interval:
            return
        rt.lazy[_LAST_SWEEP] = now
    try:
        # The same throttle puts closed windows' refusal counts on record, so they reach the
        # ledger within a sweep interval of their window's end even if the caller goes quiet.
        swept = housekeeping(request_units, batches=1)
    except Exception:  # best effort: every read and use of a basis settles it anyway
        log.exception("the legal-basis sweep failed")
        return
    finally:
        # And so are the effects outside the database that a crash or an outage left pending,
        # in a thread of their own: opening an index that is coming back can take a minute,
        # which no request may wait for.
        _replay_in_background(current_app._get_current_object())  # type: ignore[attr-defined]
    if swept.transitions:
        transitions = [t.status.value for t in swept.transitions]
        log.info("legal-basis sweep", extra={"transitions": transitions})


@blp.route("")
class LegalBases(MethodView):
    @blp.operation(
        Permission.LEGAL_BASIS_CREATE, 201, LegalBasisSchema, body=LegalBasisCreateSchema
    )
    def post(self, draft: BasisDraft) -> BasisInfo:
        """Record a legal basis; it stays pending until a second supervisor approves it."""
        with work() as w:
            return create_basis(w, principal=current_principal(), draft=draft, policy=policy())

    @blp.operation(
        Permission.LEGAL_BASIS_READ, 200, LegalBasisPageSchema, query=LegalBasisQuerySchema
    )
    def get(self, query: dict[str, Any]) -> Page[BasisInfo]:
        """List legal bases, newest first, optionally by status (deadlines applied first)."""
        with work() as w:
            return list_bases(w, principal=current_principal(), **query)


@blp.route("/offence-categories")
class OffenceCategories(MethodView):
    @blp.operation(Permission.LEGAL_BASIS_READ, 200, OffenceCategorySchema(many=True))
    def get(self) -> list[OffenceCategory]:
        """List the offence categories a legal basis may name (slug and label)."""
        return list(policy().offences)


@blp.route("/<uuid:basis_id>")
class LegalBasisById(MethodView):
    @blp.operation(Permission.LEGAL_BASIS_READ, 200, LegalBasisSchema)
    def get(self, basis_id: UUID) -> BasisInfo:
        """Read one legal basis: status, expiry, ratification deadline, searches used and left."""
        with work() as w:
            return get_basis(w, principal=current_principal(), basis_id=basis_id)


def _route_verdict(verdict: Verdict, permission: Permission, summary: str) -> None:
    """Route ``POST /<basis_id>/<verdict>``: a reason in, the decided basis out."""

    def post(_view: MethodView, body: dict[str, Any], basis_id: UUID) -> BasisInfo:
        return settle_then_decide(
            units(),
            principal=current_principal(),
            basis_id=basis_id,
            verdict=verdict,
            reason=body["reason"],
        )

    post.__doc__ = summary  # the operation's summary
    view = require(permission)(
        blp.arguments(ReasonSchema)(blp.response(200, LegalBasisSchema)(post))
    )
    name = f"{verdict.value.capitalize()}LegalBasis"
    blp.route(f"/<uuid:basis_id>/{verdict.value}")(type(name, (MethodView,), {"post": view}))


_route_verdict(
    Verdict.APPROVE,
    Permission.LEGAL_BASIS_DECIDE,
    "Approve a pending legal basis (a supervisor of its agency other than its author).",
)
_route_verdict(
    Verdict.REJECT,
    Permission.LEGAL_BASIS_DECIDE,
    "Reject a pending legal basis (final; a supervisor other than its author).",
)
_route_verdict(
    Verdict.REVOKE,
    Permission.LEGAL_BASIS_REVOKE,
    "Revoke a pending or approved legal basis at once.",
)


@blp.route("/<uuid:basis_id>/ratification")
class RatifyLegalBasis(MethodView):
    @blp.operation(Permission.LEGAL_BASIS_RATIFY, 200, LegalBasisSchema, body=RatificationSchema)
    def post(self, decision: Ratification, basis_id: UUID) -> BasisInfo:
        """Record the ratification of an urgent legal basis: granted, or refused (it lapses)."""
        return settle_then_ratify(
            units(),
            principal=current_principal(),
            basis_id=basis_id,
            decision=decision,
            policy=policy(),
        )
