"""The audit ledger over HTTP: the signed checkpoint and the verifier keys (public), entries,
earlier checkpoints and RFC 6962 proofs (``ledger:read``, oversight and admins).

What is immutable (entries and proofs within the current size, earlier checkpoints) is served
with ``Cache-Control: private, max-age=31536000, immutable`` (a key read it: no shared cache
may keep it) and a strong ETag; the public latest checkpoint and keys with ``no-cache``.
``facewarden-verify live`` (``ledger.bundle.HttpFetcher``) reads
exactly these endpoints.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import fields
from typing import Any

from flask import Response, request
from flask.views import MethodView

from api.auth import current_principal, public, require
from api.blueprint import Blueprint
from api.context import runtime, work
from api.schemas.ledger import (
    ConsistencyProofSchema,
    ConsistencyQuerySchema,
    EntryRangeQuerySchema,
    InclusionProofSchema,
    InclusionQuerySchema,
    KeysQuerySchema,
    LedgerKeySchema,
)
from governance.identity.permissions import Permission
from governance.oversight import reports as service
from governance.oversight.reports import ConsistencyProof, InclusionProof

__all__ = ["IMMUTABLE", "blp"]

blp = Blueprint.resource(
    __name__, "The signed Merkle audit log, for oversight bodies and independent verifiers."
)

IMMUTABLE = "private, max-age=31536000, immutable"  # for the caller alone: a key read it
PUBLIC_IMMUTABLE = "public, max-age=31536000, immutable"  # hash tiles: nothing but hashes
PARTIAL = "no-store"  # a partial tile is replaced by the full one; no cache keeps it
OCTETS = "application/octet-stream"
JSONL = "application/jsonl"
TEXT = "text/plain; charset=utf-8"


def _immutable(response: Response) -> Response:
    response.headers["Cache-Control"] = IMMUTABLE
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest())
    response.make_conditional(request)
    return response


def _proof_json(proof: InclusionProof | ConsistencyProof, **names: str) -> Response:
    """A proof as immutable JSON, its hashes in lowercase hex; ``names`` renames fields."""
    body = {names.get(f.name, f.name): _hex(getattr(proof, f.name)) for f in fields(proof)}
    return _immutable(
        Response(json.dumps(body, separators=(",", ":")), mimetype="application/json")
    )


def _hex(value: int | bytes | tuple[bytes, ...]) -> int | str | list[str]:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [h.hex() for h in value]
    return value


@blp.route("/checkpoint")
class LatestCheckpoint(MethodView):
    @public
    @blp.response(200, content_type=TEXT, description="A C2SP signed note, verbatim.")
    def get(self) -> Response:
        """The latest signed checkpoint (C2SP tlog-checkpoint in a signed note).

        With witnesses configured, the newest checkpoint that a quorum of them cosigned, with
        their cosignature lines (C2SP tlog-cosignature) after the log's signature.
        """
        settings = runtime().settings
        names = [w.name for w in settings.witness_endpoints]
        with work() as w:
            note = service.latest_checkpoint(w, witnesses=names, quorum=settings.witness_quorum)
        response = Response(note, content_type=TEXT)
        response.headers["Cache-Control"] = "no-cache"
        return response


@blp.route("/keys")
class VerifierKeys(MethodView):
    @public
    @blp.arguments(KeysQuerySchema, location="query")
    @blp.response(200, LedgerKeySchema(many=True))
    def get(self, query: dict[str, Any]) -> Any:
        """The verifier keys of the rotation chain, oldest first (JSON, or text one a line)."""
        with work() as w:
            found = service.ledger_keys(w)
        wanted = query.get("format") or (
            "text"
            if request.accept_mimetypes.best_match(["application/json", "text/plain"])
            == "text/plain"
            else "json"
        )
        if wanted == "text":
            response = Response("".join(k.key + "\n" for k in found), content_type=TEXT)
            response.headers["Cache-Control"] = "no-cache"
            return response
        return found


@blp.route("/entries")
class Entries(MethodView):
    @require(Permission.LEDGER_READ)
    @blp.arguments(EntryRangeQuerySchema, location="query")
    @blp.response(
        200,
        content_type=JSONL,
        description="Each entry's exact canonical bytes, one per line (`\\n`-terminated).",
    )
    def get(self, query: dict[str, Any]) -> Response:
        """Entries ``[start, end)`` in seq order, at most 1000 per page."""
        with work() as w:
            page = service.entry_page(
                w,
                principal=current_principal(),
                start=query["start"],
                end=query.get("end"),
                limit=service.MAX_PAGE,
            )
        response = Response(b"".join(line + b"\n" for line in page.lines), mimetype=JSONL)
        response.headers["X-Tree-Size"] = str(page.tree_size)
        if page.next_start is not None:
            args = {"start": page.next_start}
            if query.get("end") is not None:
                args["end"] = query["end"]
            link = f"{request.base_url}?{urllib.parse.urlencode(args)}"
            response.headers["Link"] = f'<{link}>; rel="next"'
        return _immutable(response) if page.complete else response


@blp.route("/entries/<int:seq>")
class EntryBySeq(MethodView):
    @blp.operation(
        Permission.LEDGER_READ,
        200,
        content_type="application/json",
        description="The exact entry bytes.",
    )
    def get(self, seq: int) -> Response:
        """One entry's canonical bytes."""
        with work() as w:
            body = service.entry(w, principal=current_principal(), seq=seq)
        return _immutable(Response(body, mimetype="application/json"))


@blp.route("/checkpoints/<int:size>")
class CheckpointBySize(MethodView):
    @blp.operation(
        Permission.LEDGER_READ, 200, content_type=TEXT, description="A C2SP signed note, verbatim."
    )
    def get(self, size: int) -> Response:
        """The signed checkpoint of an earlier tree size (every size has one)."""
        with work() as w:
            note = service.checkpoint_at(w, size=size)
        return _immutable(Response(note, content_type=TEXT))


@blp.route("/proofs/inclusion")
class Inclusion(MethodView):
    @blp.operation(Permission.LEDGER_READ, 200, InclusionProofSchema, query=InclusionQuerySchema)
    def get(self, query: dict[str, Any]) -> Response:
        """RFC 6962 inclusion proof of entry ``seq`` in the tree of ``size`` entries."""
        with work() as w:
            proof = service.inclusion(
                w, principal=current_principal(), seq=query["seq"], size=query["size"]
            )
        return _proof_json(proof)


@blp.route("/proofs/consistency")
class Consistency(MethodView):
    @blp.operation(
        Permission.LEDGER_READ, 200, ConsistencyProofSchema, query=ConsistencyQuerySchema
    )
    def get(self, query: dict[str, Any]) -> Response:
        """RFC 6962 consistency proof from tree size ``from`` to tree size ``to``."""
        with work() as w:
            proof = service.consistency(
                w, principal=current_principal(), first=query["first"], second=query["second"]
            )
        return _proof_json(proof, first="from", second="to")


def _tile(body: bytes, *, partial: bool, cache: str) -> Response:
    response = Response(body, mimetype=OCTETS)
    if partial:
        response.headers["Cache-Control"] = PARTIAL
        return response
    response.headers["Cache-Control"] = cache
    response.set_etag(hashlib.sha256(body).hexdigest())
    response.make_conditional(request)
    return response


@blp.route("/tile/<path:path>")
class HashTile(MethodView):
    @public
    @blp.response(
        200,
        content_type=OCTETS,
        description="The tile's hashes, 32 bytes each: 256 in a full tile, `W` in a partial.",
    )
    def get(self, path: str) -> Response:
        """A C2SP tlog-tiles hash tile, ``<L>/<N>[.p/<W>]`` (for example ``0/x001/234.p/5``).

        Public: a tile holds only hashes. Full tiles never change and are cached for a year;
        partial tiles (``.p/<W>``) are not cached.
        """
        with work() as w:
            body = service.hash_tile(w, path=path)
        return _tile(body, partial=".p/" in path, cache=PUBLIC_IMMUTABLE)


@blp.route("/tile/entries/<path:path>")
class EntryBundle(MethodView):
    @blp.operation(
        Permission.LEDGER_READ,
        200,
        content_type=OCTETS,
        description="Each entry's canonical bytes after its big-endian uint16 length.",
    )
    def get(self, path: str) -> Response:
        """A C2SP tlog-tiles entry bundle, ``<N>[.p/<W>]``: the entries of level-0 tile ``N``.

        Entries need ``ledger:read``, as at ``/entries``: a full bundle is cached for the caller
        alone (``private``), a partial one not at all.
        """
        with work() as w:
            body = service.entry_bundle(w, principal=current_principal(), path=path)
        return _tile(body, partial=".p/" in path, cache=IMMUTABLE)
