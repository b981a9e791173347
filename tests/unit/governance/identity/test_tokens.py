"""Secrets: shapes, entropy, digests and constant-time matching."""

from __future__ import annotations

from governance.identity.tokens import (
    digest,
    looks_like_claim_secret,
    matches,
    new_api_key,
    new_claim_secret,
    parse_api_key,
)


def test_api_keys_round_trip_and_are_unique() -> None:
    keys = {new_api_key().token for _ in range(200)}
    assert len(keys) == 200
    for token in list(keys)[:20]:
        parsed = parse_api_key(token)
        assert parsed is not None and parsed.token == token
        assert len(parsed.lookup_id) == 16 and len(parsed.secret) == 52  # 80 and 256 bits


def test_malformed_keys_do_not_parse() -> None:
    token = new_api_key().token
    for bad in (
        token + "a",
        token[:-1],
        token.upper(),
        "fw__" + token[3:],
        token.replace("_", "-"),
        "Bearer " + token,
        token[:-1] + "1",
    ):
        assert parse_api_key(bad) is None, bad


def test_claim_secrets() -> None:
    secret = new_claim_secret()
    assert looks_like_claim_secret(secret) and not looks_like_claim_secret(secret + "a")
    assert matches(secret, digest(secret))
    assert not matches(secret[:-1] + ("a" if secret[-1] != "a" else "b"), digest(secret))
    assert not matches(secret, None)
