"""Witness policy files in the Sigsum policy style."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.cosignature import cosigner_vkey
from ledger.policy import PolicyError, load_policy, parse_policy


def _vkey(name: str) -> str:
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return cosigner_vkey(name, public)


W1, W2, W3, W4 = (_vkey(f"witness.example/w{n}") for n in range(1, 5))
POLICY = f"""
# Two of our three witnesses, and the regulator's own.
log     test.facewarden.local/ledger+0123abcd+AXXX   https://log.example
witness w1 {W1} https://w1.example
witness w2 {W2}
witness w3 {W3}
witness regulator {W4}   # kept by the oversight body itself
group   ours 2 w1 w2 w3
group   both all ours regulator
quorum  both
"""


def test_a_policy_is_satisfied_only_by_its_quorum() -> None:
    policy = parse_policy(POLICY)
    assert policy.logs == ("test.facewarden.local/ledger+0123abcd+AXXX",)
    assert set(policy.witnesses) == {"w1", "w2", "w3", "regulator"}
    assert policy.satisfied({"w1", "w3", "regulator"})
    assert not policy.satisfied({"w1", "w2", "w3"})  # the regulator has not cosigned
    assert not policy.satisfied({"w1", "regulator"})  # one of ours is not two
    assert policy.describe() == "2 of (2 of (w1, w2, w3), regulator)"
    assert parse_policy(f"witness w1 {W1}\nquorum w1").satisfied({"w1"})
    anyone = parse_policy(f"witness a {W1}\nwitness b {W2}\ngroup g any a b\nquorum g")
    assert anyone.satisfied({"b"}) and not anyone.satisfied(set())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no quorum line"),
        (f"witness w1 {W1}", "no quorum line"),
        (f"witness w1 {W1}\nwitness w1 {W2}\nquorum w1", "line 2: 'w1' is defined twice"),
        ("witness w1 not-a-key\nquorum w1", "line 1: witness w1"),
        (f"witness w1 {W1}\ngroup g 2 w1\nquorum g", "threshold must be 1 to 1"),
        (f"witness w1 {W1}\ngroup g 0 w1\nquorum g", "threshold must be 1 to 1"),
        (f"witness w1 {W1}\ngroup g \u00b2 w1\nquorum g", "threshold must be 1 to 1"),
        (f"witness w1 {W1}\ngroup g 1 w1 w2\nquorum g", "w2 not defined above"),
        (f"witness w1 {W1}\ngroup g 1 w1 w1\nquorum g", "names a member twice"),
        (f"witness w1 {W1}\nquorum w2", "not a witness or group defined above"),
        (f"witness w1 {W1}\nquorum w1\nquorum w1", "a second quorum line"),
        (f"witness w1 {W1}\nquorum", "expected: quorum <name>"),
        (f"witnesses w1 {W1}\nquorum w1", "unknown keyword 'witnesses'"),
        ("log\nquorum x", "expected: log <verifier key>"),
    ],
)
def test_a_policy_that_does_not_say_one_thing_is_refused(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_an_unreadable_policy_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "missing.policy")
