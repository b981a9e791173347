"""Witness policies in the Sigsum policy style: which witnesses, in which groups, must have
cosigned a checkpoint before a verifier trusts it.

A policy file is lines of whitespace-separated words; ``#`` starts a comment::

    log     <log verifier key>                 # optional: trusted like --key
    witness <name> <cosigner verifier key> [URL]
    group   <name> <N|all|any> <member> ...    # members: witnesses or groups defined above
    quorum  <name>                             # the witness or group that must be satisfied

A witness is satisfied by a valid cosignature (C2SP tlog-cosignature) of its key; a group
when at least ``N`` of its members are (``all``: every one, ``any``: one). Names are the
policy's own; a verifier key carries its own name too, and both are reported.
Imports only the standard library and ``ledger``'s pure modules: the offline verifier uses it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from ledger.checkpoint import MalformedNote
from ledger.cosignature import CosignerKey, parse_cosigner_key
from ledger.entry import LedgerError

__all__ = ["Policy", "PolicyError", "load_policy", "parse_policy"]


class PolicyError(LedgerError):
    """A policy file that cannot be read or does not say one coherent thing."""


@dataclass(frozen=True, slots=True)
class _Group:
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """Parsed policy: log keys, witness keys by name, groups, and the quorum's name."""

    quorum: str
    logs: tuple[str, ...] = ()
    witnesses: dict[str, CosignerKey] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)

    def satisfied(self, cosigned: Collection[str], name: str | None = None) -> bool:
        """Whether the witnesses named in ``cosigned`` satisfy ``name`` (default: the quorum)."""
        name = self.quorum if name is None else name
        if name in self.witnesses:
            return name in cosigned
        group = self.groups[name]
        return sum(self.satisfied(cosigned, m) for m in group.members) >= group.threshold

    def describe(self, name: str | None = None) -> str:
        """The quorum in words, for an error: ``2 of (w1, w2, w3)``."""
        name = self.quorum if name is None else name
        if name in self.witnesses:
            return name
        group = self.groups[name]
        inner = ", ".join(self.describe(m) for m in group.members)
        return f"{group.threshold} of ({inner})"


def parse_policy(text: str) -> Policy:
    """Parse a policy. Raises PolicyError naming the line."""
    logs: list[str] = []
    witnesses: dict[str, CosignerKey] = {}
    groups: dict[str, _Group] = {}
    quorum: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue

        def fail(why: str, line: int = number) -> PolicyError:
            return PolicyError(f"policy line {line}: {why}")

        keyword, args = words[0], words[1:]
        if keyword in ("witness", "group") and args and args[0] in {*witnesses, *groups}:
            raise fail(f"{args[0]!r} is defined twice")
        if keyword == "log":
            if len(args) not in (1, 2):
                raise fail("expected: log <verifier key> [URL]")
            logs.append(args[0])
        elif keyword == "witness":
            if len(args) not in (2, 3):
                raise fail("expected: witness <name> <cosigner verifier key> [URL]")
            try:
                witnesses[args[0]] = parse_cosigner_key(args[1])
            except MalformedNote as exc:
                raise fail(f"witness {args[0]}: {exc}") from exc
        elif keyword == "group":
            if len(args) < 3:
                raise fail("expected: group <name> <N|all|any> <member> ...")
            name, count, members = args[0], args[1], tuple(args[2:])
            unknown = [m for m in members if m not in witnesses and m not in groups]
            if unknown:
                raise fail(f"group {name}: {', '.join(unknown)} not defined above")
            if len(set(members)) != len(members):
                raise fail(f"group {name} names a member twice")
            threshold = {"all": len(members), "any": 1}.get(count)
            if threshold is None:
                if not re.fullmatch(r"[1-9][0-9]{0,5}", count) or int(count) > len(members):
                    raise fail(f"group {name}: the threshold must be 1 to {len(members)}")
                threshold = int(count)
            groups[name] = _Group(threshold, members)
        elif keyword == "quorum":
            if len(args) != 1:
                raise fail("expected: quorum <name>")
            if quorum is not None:
                raise fail("a second quorum line")
            if args[0] not in witnesses and args[0] not in groups:
                raise fail(f"quorum {args[0]} is not a witness or group defined above")
            quorum = args[0]
        else:
            raise fail(f"unknown keyword {keyword!r} (log, witness, group or quorum)")
    if quorum is None:
        raise PolicyError("the policy has no quorum line")
    return Policy(quorum=quorum, logs=tuple(logs), witnesses=witnesses, groups=groups)


def load_policy(path: Path) -> Policy:
    """Read and parse a policy file. Raises PolicyError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the policy file {path}: {exc}") from exc
    return parse_policy(text)
