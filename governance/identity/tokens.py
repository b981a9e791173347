"""Secrets handed to people once: API keys ``fw_<id>_<secret>``, console session tokens
``fws_<id>_<secret>`` (in a cookie) and one-time claim secrets.

Only SHA-256 digests are stored. A slow password hash buys nothing here: every secret carries
256 bits from ``secrets.token_bytes``, so inverting the digest is as hopeless as guessing the
secret, and a fast digest keeps authenticating each request cheap (no CPU lever for attackers).
Comparisons use ``hmac.compare_digest`` so their time does not depend on where bytes differ.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

__all__ = [
    "CLAIM_PREFIX",
    "KEY_PREFIX",
    "SESSION_PREFIX",
    "ApiKey",
    "digest",
    "matches",
    "new_api_key",
    "new_claim_secret",
    "new_session_token",
    "parse_api_key",
    "parse_session_token",
]

KEY_PREFIX = "fw"
CLAIM_PREFIX = "fwc"
SESSION_PREFIX = "fws"
SECRET_BYTES = 32  # 256 bits
LOOKUP_BYTES = 10  # 80 bits: unguessable enough to look up by, short enough to quote
_B32 = "[a-z2-7]"
_KEY = re.compile(rf"fw_({_B32}{{16}})_({_B32}{{52}})")
_SESSION = re.compile(rf"fws_({_B32}{{16}})_({_B32}{{52}})")
_CLAIM = re.compile(rf"fwc_{_B32}{{52}}")
# A digest no secret hashes to in practice: compared against when there is nothing to match,
# so a miss costs the same time as a hit.
_DUMMY = hashlib.sha256(b"facewarden: no such secret").digest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A parsed API key: the public lookup id and the secret part."""

    lookup_id: str
    secret: str
    prefix: str = KEY_PREFIX

    @property
    def token(self) -> str:
        """The full key as the holder sends it."""
        return f"{self.prefix}_{self.lookup_id}_{self.secret}"


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def new_api_key() -> ApiKey:
    """A fresh random API key."""
    return ApiKey(
        lookup_id=_b32(secrets.token_bytes(LOOKUP_BYTES)),
        secret=_b32(secrets.token_bytes(SECRET_BYTES)),
    )


def parse_api_key(token: str) -> ApiKey | None:
    """Split ``fw_<id>_<secret>``; None when the text is not shaped like a key."""
    match = _KEY.fullmatch(token)
    if match is None:
        return None
    return ApiKey(lookup_id=match.group(1), secret=match.group(2))


def new_session_token() -> ApiKey:
    """A fresh random console session token (``fws_<id>_<secret>``)."""
    return ApiKey(
        lookup_id=_b32(secrets.token_bytes(LOOKUP_BYTES)),
        secret=_b32(secrets.token_bytes(SECRET_BYTES)),
        prefix=SESSION_PREFIX,
    )


def parse_session_token(token: str) -> ApiKey | None:
    """Split ``fws_<id>_<secret>``; None when the text is not shaped like a session token."""
    match = _SESSION.fullmatch(token)
    if match is None:
        return None
    return ApiKey(lookup_id=match.group(1), secret=match.group(2), prefix=SESSION_PREFIX)


def new_claim_secret() -> str:
    """A fresh one-time claim secret ``fwc_<secret>``."""
    return f"{CLAIM_PREFIX}_{_b32(secrets.token_bytes(SECRET_BYTES))}"


def digest(secret: str) -> bytes:
    """The SHA-256 digest stored in place of ``secret``."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def matches(secret: str, stored: bytes | None) -> bool:
    """Whether ``secret`` hashes to ``stored``, in time independent of the contents."""
    expected = stored if stored is not None else _DUMMY
    ok = hmac.compare_digest(digest(secret), expected)
    return ok and stored is not None


def looks_like_claim_secret(text: str) -> bool:
    """Whether ``text`` has the shape of a claim secret (checked before any lookup)."""
    return _CLAIM.fullmatch(text) is not None
