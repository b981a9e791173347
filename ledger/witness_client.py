"""The log's side of C2SP tlog-witness: submit a checkpoint with its consistency proof to a
witness, and turn its answer into a verified cosignature, the size it holds, or a failure.

Imports only the standard library and the ledger's protocol modules.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.checkpoint import MalformedNote
from ledger.cosignature import Cosignature, CosignerKey, parse_cosigner_key, verify_cosignatures
from ledger.witness_server import SIZE_TYPE, request_body

__all__ = ["Cosigned", "Failed", "Outcome", "Stale", "WitnessEndpoint", "parse_witnesses", "submit"]


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """A witness the log submits to: its cosigner key and its add-checkpoint URL."""

    key: CosignerKey
    url: str

    @property
    def name(self) -> str:
        """The witness's name (its key's)."""
        return self.key.name


def parse_witnesses(text: str) -> list[WitnessEndpoint]:
    """``VKEY URL`` pairs separated by commas or newlines; the URL is the witness's
    submission prefix (``/add-checkpoint`` is appended) or its add-checkpoint URL itself, as
    ``witness serve`` prints it. Raises ValueError."""
    found: list[WitnessEndpoint] = []
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        parts = item.split()
        if len(parts) != 2 or not parts[1].startswith(("http://", "https://")):
            raise ValueError(f"{item.strip()!r} is not 'VKEY URL'")
        try:
            key = parse_cosigner_key(parts[0])
        except MalformedNote as exc:
            raise ValueError(f"{parts[0]!r} is not a witness key: {exc}") from exc
        if any(w.name == key.name for w in found):
            raise ValueError(f"the witness {key.name} is named twice")
        url = parts[1].rstrip("/").removesuffix("/add-checkpoint") + "/add-checkpoint"
        found.append(WitnessEndpoint(key=key, url=url))
    return found


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The witness cosigned: its verified line."""

    line: str
    cosignature: Cosignature


@dataclass(frozen=True, slots=True)
class Stale:
    """The witness holds another size (409): submit again from it."""

    size: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The witness refused, or could not be reached; ``status`` 0 when it did not answer."""

    status: int
    detail: str


Outcome = Cosigned | Stale | Failed


def submit(
    witness: WitnessEndpoint, old: int, proof: Sequence[bytes], note: str, *, timeout: float
) -> Outcome:
    """POST the checkpoint ``note`` with the proof from ``old`` and read the answer."""
    # parse_witnesses admits only http(s) URLs.
    request = urllib.request.Request(  # noqa: S310
        witness.url,
        data=request_body(old, proof, note),
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URL)
            body = response.read(16 * 1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        text = error.read(1024).decode("utf-8", "replace")
        if error.code == 409 and error.headers.get_content_type() == SIZE_TYPE:
            try:
                return Stale(size=int(text.strip()))
            except ValueError:
                pass
        return Failed(status=error.code, detail=text.strip()[:200])
    except (OSError, ValueError) as exc:
        return Failed(status=0, detail=str(exc))
    lines = [line + "\n" for line in body.splitlines() if line]
    for line in lines:
        try:
            found = verify_cosignatures(note + line, [witness.key])
        except MalformedNote as exc:
            return Failed(status=200, detail=f"an invalid cosignature: {exc}")
        if found:
            return Cosigned(line=line, cosignature=found[0])
    return Failed(status=200, detail="no cosignature by this witness's key in the answer")
