"""A software WebAuthn authenticator for tests that drive the console without a browser.

It makes an ES256 key per credential, answers creation options with ``none`` attestation
and request options with a signed assertion, exactly as the browser's JSON serialisation
(``PublicKeyCredential.toJSON``) gives them to the page, so the server's checks run on real
signatures. The browser tests use Chromium's own virtual authenticator instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["Authenticator", "b64url"]

_UP, _UV, _AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class _Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    count: int = 0


@dataclass
class Authenticator:
    """Passkeys held for ``origin``; ``verified`` is whether it verifies the user (PIN,
    fingerprint)."""

    origin: str
    verified: bool = True
    credentials: list[_Credential] = field(default_factory=list)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin},
            separators=(",", ":"),
        ).encode()

    def _flags(self) -> int:
        return _UP | (_UV if self.verified else 0)

    def create(self, options_json: str, *, origin: str | None = None) -> str:
        """The JSON of a new credential for ``navigator.credentials.create`` options."""
        options = json.loads(options_json)
        rp_id = options["rp"]["id"]
        credential = _Credential(
            id=secrets.token_bytes(32),
            key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id,
            user_handle=_unb64url(options["user"]["id"]),
        )
        numbers = credential.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags() | _AT])
            + struct.pack(">I", 0)
            + bytes(16)  # AAGUID
            + struct.pack(">H", len(credential.id))
            + credential.id
            + cose
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        self.credentials.append(credential)
        return json.dumps(
            {
                "id": b64url(credential.id),
                "rawId": b64url(credential.id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )

    def get(self, options_json: str, *, origin: str | None = None, credential: int = -1) -> str:
        """The JSON of an assertion for ``navigator.credentials.get`` options, by the
        ``credential``-th passkey held (the newest by default)."""
        options = json.loads(options_json)
        held = self.credentials[credential]
        held.count += 1
        auth_data = (
            hashlib.sha256(options["rpId"].encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", held.count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = held.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": b64url(held.id),
                "rawId": b64url(held.id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(held.user_handle),
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )
