"""The police file: a printable record of one search, as the EU AI Act, Art. 26(10), asks.

It carries the case number, the legal basis, the probe face, the candidates with their
provenance, the reviews, and the ledger receipt with the commands that verify it; the receipt
downloads from the search's page (``investigation.receipt_json``). The same governance functions
as the API's: ``get_search``, ``get_basis``, ``search_receipt``.
"""

from __future__ import annotations

from uuid import UUID

from flask import Blueprint, render_template

from api.console.reviews import probe_uri
from api.console.security import console_principal, signed_in
from api.context import runtime, work
from governance.core.errors import Conflict
from governance.identity.permissions import Permission
from governance.identity.principals import Principal
from governance.legal_basis.services import get_basis
from governance.search.outcomes import Receipt
from governance.search.records import get_search, search_receipt

__all__ = ["bp"]

bp = Blueprint("police_file", __name__)


def _me() -> Principal:
    principal = console_principal()
    assert principal is not None  # @signed_in
    return principal


def _receipt(search_id: UUID) -> Receipt:
    settings = runtime().settings
    with work() as w:
        return search_receipt(
            w,
            principal=_me(),
            search_id=search_id,
            witnesses=[e.name for e in settings.witness_endpoints],
            quorum=settings.witness_quorum,
        )


@bp.get("/records/<uuid:search_id>")
@signed_in(Permission.SEARCH_READ)
def record(search_id: UUID) -> str:
    """The search's record for the police file, laid out to print (or save as PDF)."""
    me = _me()
    with work() as w:
        search = get_search(w, principal=me, search_id=search_id)
        basis = get_basis(w, principal=me, basis_id=search.legal_basis_id)
    try:
        receipt: Receipt | None = _receipt(search_id)
    except Conflict:  # the results were deleted, and the receipt's entry names them
        receipt = None
    settings = runtime().settings
    return render_template(
        "records/search.html",
        search=search,
        basis=basis,
        receipt=receipt,
        probe=probe_uri(search_id) if search.results_deleted_at is None else None,
        public_url=settings.public_url.rstrip("/"),
        verifier_key=runtime().signer.verifier_key,
    )
