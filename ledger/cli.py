"""``facewarden-verify``: check a ledger (an exported bundle or a live server), audit what it
records, and recompute the accountability report from it.

Exit status 0 when every step passes, 1 on a verification failure (with the evidence) or an
audit violation, 2 on a usage error. An API key for a live server comes from ``--token-file``
or ``FACEWARDEN_VERIFY_TOKEN``, never from the command line. Imports only the standard
library, ``cryptography`` and ``rfc8785``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.audit import RULES, AuditError, audit_entries, load_records
from ledger.bundle import BundleFetcher, HttpFetcher, TrustedState
from ledger.checkpoint import MalformedNote
from ledger.cosignature import Cosignature, parse_cosigner_key, verify_cosignatures
from ledger.entry import LedgerError
from ledger.hashing import leaf_hash
from ledger.policy import Policy, PolicyError, load_policy
from ledger.receipt import verify_receipt, verify_receipt_live
from ledger.report import build_report, report_csv, report_svg
from ledger.tiles import TileFetcher, check_tiles
from ledger.verify import Report, VerificationError, verify_log
from ledger.witness import WitnessReport, verify_increment

__all__ = ["TOKEN_ENV", "main"]

TOKEN_ENV = "FACEWARDEN_VERIFY_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


def _source_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="VKEY",
        help="pinned verifier key (name+keyid+base64); repeatable",
    )
    cmd.add_argument("--json", action="store_true", help="print a JSON report")
    cmd.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help=f"live: a file holding an oversight API key (or set {TOKEN_ENV})",
    )
    cmd.add_argument(
        "--cacert", type=Path, metavar="FILE", help="live: trust this CA or self-signed cert"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facewarden-verify",
        description="Verify a FaceWarden audit ledger: signatures, hash chain, Merkle roots, "
        "and consistency with the checkpoint you trusted last time; audit and report on it.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, target, helptext in (
        ("bundle", "DIR", "an exported bundle directory"),
        ("live", "URL", "a running FaceWarden API (base URL), incrementally with --state"),
    ):
        cmd = sub.add_parser(name, help=f"verify {helptext}")
        cmd.add_argument("target", metavar=target)
        _source_options(cmd)
        cmd.add_argument(
            "--state",
            type=Path,
            metavar="FILE",
            help="witness state: the last trusted checkpoint, advanced on success",
        )
        cmd.add_argument(
            "--workers",
            type=int,
            default=None,
            help="bundle: processes for signature checks (default: all cores)",
        )
        cmd.add_argument(
            "--witness",
            action="append",
            default=[],
            metavar="VKEY",
            help="a witness's cosigner key (C2SP tlog-cosignature); repeatable",
        )
        cmd.add_argument(
            "--quorum",
            type=int,
            default=None,
            metavar="N",
            help="how many of the --witness keys must have cosigned the checkpoint (default 1)",
        )
        _policy_option(cmd)
        if name == "live":
            cmd.add_argument(
                "--full",
                action="store_true",
                help="re-verify every entry from the first, not only those after --state",
            )
            _tiles_option(cmd)
    for name, helptext in (
        ("audit", "check every search, review and deadline against the rules, from the entries"),
        ("report", "recompute the accountability report from the entries"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("source", choices=("bundle", "live"))
        cmd.add_argument("target", metavar="DIR|URL")
        _source_options(cmd)
        if name == "audit":
            cmd.add_argument(
                "--grace-hours",
                type=float,
                default=1.0,
                help="how long past an urgent basis's deadline a missing lapse is tolerated",
            )
        else:
            cmd.add_argument("--from", dest="start", metavar="DATE", help="from (inclusive)")
            cmd.add_argument("--to", dest="end", metavar="DATE", help="to (exclusive)")
            cmd.add_argument("--csv", action="store_true", help="print CSV instead of JSON")
            cmd.add_argument("--svg", type=Path, metavar="FILE", help="write the monthly chart")
    receipt = sub.add_parser(
        "receipt", help="verify a search receipt (the search answer, or its `receipt` object)"
    )
    receipt.add_argument("target", metavar="FILE", help="a JSON file, or - for standard input")
    receipt.add_argument(
        "--key", action="append", required=True, metavar="VKEY", help="verifier key; repeatable"
    )
    receipt.add_argument("--json", action="store_true", help="print a JSON report")
    receipt.add_argument(
        "--live",
        metavar="URL",
        help="also check that the log at URL still contains the receipt's tree",
    )
    receipt.add_argument("--token-file", type=Path, metavar="FILE", help="live: an API key")
    receipt.add_argument("--cacert", type=Path, metavar="FILE", help="live: trust this cert")
    receipt.add_argument("--witness", action="append", default=[], metavar="VKEY")
    receipt.add_argument("--quorum", type=int, default=None, metavar="N")
    _policy_option(receipt)
    _tiles_option(receipt)
    _witness_parser(sub)
    return parser


def _policy_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="a witness policy file (log, witness, group and quorum lines), instead of "
        "--witness and --quorum",
    )


def _tiles_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--tiles",
        action="store_true",
        help="live: read only the C2SP tlog-tiles (checkpoint, hash tiles, entry bundles) and "
        "compute every proof here",
    )


def _witness_parser(sub: Any) -> None:
    witness = sub.add_parser("witness", help="run a C2SP tlog-witness that cosigns checkpoints")
    actions = witness.add_subparsers(dest="action", required=True)
    keygen = actions.add_parser("keygen", help="create a witness key; prints its verifier key")
    serve = actions.add_parser("serve", help="serve add-checkpoint until interrupted")
    for cmd in (keygen, serve):
        cmd.add_argument("--name", required=True, help="its name, e.g. witness.example/w1")
        cmd.add_argument("--key-file", required=True, type=Path, metavar="FILE")
    serve.add_argument(
        "--log",
        action="append",
        required=True,
        metavar="VKEY",
        help="a log verifier key to witness (its name is the log's origin); repeatable",
    )
    serve.add_argument("--state", required=True, type=Path, metavar="DIR", help="kept state")
    serve.add_argument("--listen", default="127.0.0.1:7380", metavar="HOST:PORT")
    serve.add_argument("--prefix", default="", help="URL prefix of add-checkpoint")


def _witness(args: argparse.Namespace) -> int:
    from ledger.checkpoint import parse_verifier_key
    from ledger.witness_server import (
        Witness,
        generate_witness_key,
        load_witness_key,
        make_server,
    )

    if args.action == "keygen":
        try:
            key = generate_witness_key(args.key_file, args.name)
        except FileExistsError:
            print(f"facewarden-verify: {args.key_file} exists; keep it", file=sys.stderr)
            return 2
        print(key.vkey)
        return 0
    try:
        logs = [parse_verifier_key(vkey) for vkey in args.log]
        key = load_witness_key(args.key_file, args.name)
    except (MalformedNote, ValueError) as exc:
        print(f"facewarden-verify: {exc}", file=sys.stderr)
        return 2
    host, _, port = args.listen.rpartition(":")
    server = make_server(Witness(key, logs, args.state), host, int(port), prefix=args.prefix)
    print(
        f"witness {key.vkey} on http://{args.listen}{args.prefix}/add-checkpoint for "
        + ", ".join(sorted({v.name for v in logs})),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


class _Kept:
    """A fetcher that keeps the entry lines it served from 0 on (the ones just verified)."""

    def __init__(self, inner: HttpFetcher | BundleFetcher) -> None:
        self.inner = inner
        self.lines: list[bytes] = []

    def checkpoint(self) -> str:
        return self.inner.checkpoint()

    def checkpoints(self) -> dict[int, str]:
        return self.inner.checkpoints()

    def entries(self, start: int, end: int) -> list[bytes]:
        got = self.inner.entries(start, end)
        if start == len(self.lines):
            self.lines += got
        return got

    def verifier_keys(self) -> list[str]:
        return self.inner.verifier_keys()

    def integrity_problems(self) -> list[str]:
        return self.inner.integrity_problems()

    def consistency(self, first: int, second: int) -> list[bytes]:
        if not isinstance(self.inner, HttpFetcher):
            raise LedgerError("a bundle serves no consistency proofs")
        return self.inner.consistency(first, second)

    def inclusion(self, seq: int, size: int) -> list[bytes]:
        if not isinstance(self.inner, HttpFetcher):
            raise LedgerError("a bundle serves no inclusion proofs")
        return self.inner.inclusion(seq, size)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        return Path(args.token_file).read_text(encoding="utf-8").strip() or None
    return os.environ.get(TOKEN_ENV) or None


def _http(args: argparse.Namespace, url: str | None = None) -> HttpFetcher:
    kind = TileFetcher if getattr(args, "tiles", False) else HttpFetcher
    return kind(url or args.target, token=_token(args), cafile=args.cacert)


def _pinned(args: argparse.Namespace) -> list[str]:
    """The --key verifier keys and the policy's ``log`` lines."""
    policy = _load_policy(args)
    return [*args.key, *(policy.logs if policy else ())]


def _load_policy(args: argparse.Namespace) -> Policy | None:
    if getattr(args, "policy", None) is None:
        return None
    if args.witness or args.quorum:
        raise VerificationError(
            "--policy replaces --witness and --quorum: give one or the other", step=1
        )
    try:
        return load_policy(args.policy)
    except PolicyError as exc:
        raise VerificationError(str(exc), step=1) from exc


def _check_receipt(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.target == "-" else Path(args.target).read_text("utf-8")
        document = json.loads(text)
    except (OSError, ValueError) as exc:
        print(f"cannot read the receipt: {exc}", file=sys.stderr)
        return 2
    found = document.get("receipt", document) if isinstance(document, dict) else None
    try:
        if not isinstance(found, dict):
            raise VerificationError("the file holds no receipt object", step=0)
        pinned = _pinned(args)
        report = verify_receipt(found, pinned)
        live = cosigned = None
        if args.live:
            live = verify_receipt_live(found, pinned, _http(args, args.live))
            cosigned = _witness_policy(args, live.note)
        elif args.witness or args.policy:
            cosigned = _witness_policy(args, str(found.get("checkpoint")))
    except LedgerError as exc:
        print(_failure(_as_failure(exc), args.json), file=sys.stdout if args.json else sys.stderr)
        return 1
    if args.json:
        body: dict[str, Any] = {"ok": True, **asdict(report)}
        if live is not None:
            body["live"] = {"size": live.size, "root": live.root}
        if cosigned is not None:
            body["cosignatures"] = [{"witness": c.name, "timestamp": c.timestamp} for c in cosigned]
        print(json.dumps(body, indent=2))
        return 0
    print(
        f"OK  entry {report.seq} ({report.entry_type}) is in the log of size "
        f"{report.tree_size}\n    root      {report.root}\n    signed by {report.signed_by}"
    )
    if live is not None:
        print(f"    still in the live log of size {live.size} (root {live.root})")
    for c in cosigned or []:
        when = datetime.fromtimestamp(c.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"    cosigned  by {c.name} at {when}")
    return 0


def _human(report: Report | WitnessReport, seconds: float) -> str:
    lines = [f"OK  {report.origin}"]
    if isinstance(report, WitnessReport):
        lines.append(
            f"    entries     {report.size} ({report.new_entries} new verified in {seconds:.2f} s)"
        )
    else:
        lines.append(f"    entries     {report.size} verified in {seconds:.2f} s")
    lines.append(f"    root        {report.root.hex()}")
    if isinstance(report, Report):
        lines.append(f"    checkpoints {report.checkpoints_checked} checked")
    lines.append(f"    keys        {len(report.keys)} in the rotation chain")
    if report.previous_size is not None:
        lines.append(f"    consistent with the trusted checkpoint of size {report.previous_size}")
    return "\n".join(lines)


def _failure(exc: VerificationError, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "ok": False,
                "step": exc.step,
                "seq": exc.seq,
                "error": str(exc),
                "evidence": exc.evidence,
            },
            indent=2,
        )
    lines = [f"FAILED at step ({exc.step}): {exc}"]
    if exc.seq is not None:
        lines.append(f"first bad seq: {exc.seq}")
    for key, value in exc.evidence.items():
        shown = "\n".join(value) if isinstance(value, list) else str(value)
        lines.append(f"--- {key}\n{shown.rstrip()}")
    return "\n".join(lines)


def _as_failure(exc: LedgerError) -> VerificationError:
    return exc if isinstance(exc, VerificationError) else VerificationError(str(exc), step=5)


def _verify(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    report: Report | WitnessReport
    tiles: int | None = None
    try:
        state = TrustedState.load(args.state) if args.state else None
        if args.command == "live":
            live = _Kept(_http(args))
            report, new_state = verify_increment(
                live, pinned=_pinned(args), state=state, full=args.full
            )
            if args.full and isinstance(live.inner, TileFetcher):
                tiles = check_tiles(live.inner.tile, [leaf_hash(line) for line in live.lines])
        else:
            fetcher = BundleFetcher(Path(args.target))
            report = verify_log(fetcher, pinned=_pinned(args), state=state, workers=args.workers)
            new_state = TrustedState(
                origin=report.origin,
                size=report.size,
                root=report.root,
                checkpoint=fetcher.checkpoint(),
            )
        cosigned = _witness_policy(args, new_state.checkpoint)
    except LedgerError as exc:
        print(_failure(_as_failure(exc), args.json), file=sys.stdout if args.json else sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    if args.state:
        new_state.save(args.state)
    if args.json:
        witnesses = [{"witness": c.name, "timestamp": c.timestamp} for c in cosigned]
        body = {**report.to_json(), "cosignatures": witnesses, "seconds": round(elapsed, 3)}
        if tiles is not None:
            body["tiles_rebuilt"] = tiles
        print(json.dumps(body, indent=2))
    else:
        print(_human(report, elapsed))
        if tiles is not None:
            print(f"    tiles       {tiles} hash tiles match the tree the entries rebuild")
        for c in cosigned:
            when = datetime.fromtimestamp(c.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            print(f"    cosigned    by {c.name} at {when}")
    return 0


def _witness_policy(args: argparse.Namespace, note: str | None) -> list[Cosignature]:
    """The cosignatures of ``note`` by the --witness keys; at least --quorum of them. With
    --policy, by the policy's witnesses, which must satisfy its quorum.

    Raises VerificationError when the policy is not met, or a witness key is malformed.
    """
    policy = _load_policy(args)
    if policy is not None:
        try:
            found = verify_cosignatures(note, policy.witnesses.values()) if note else []
        except MalformedNote as exc:
            raise VerificationError(f"witness policy: {exc}", step=1) from exc
        by_key = {k.key_id: name for name, k in policy.witnesses.items()}
        if not policy.satisfied({by_key[c.key_id] for c in found}):
            names = ", ".join(by_key[c.key_id] for c in found) or "none"
            raise VerificationError(
                f"witness policy not met: the checkpoint is cosigned by {names}; the policy's "
                f"quorum {policy.quorum} needs {policy.describe()}",
                step=1,
            )
        return found
    if not args.witness:
        if args.quorum:
            raise VerificationError("--quorum needs --witness keys", step=1)
        return []
    quorum = 1 if args.quorum is None else args.quorum
    try:
        keys = [parse_cosigner_key(vkey) for vkey in args.witness]
        if quorum < 1 or quorum > len(keys):
            raise VerificationError(
                f"--quorum {quorum} must be between 1 and the {len(keys)} --witness keys", step=1
            )
        found = verify_cosignatures(note or "", keys) if note else []
    except MalformedNote as exc:
        raise VerificationError(f"witness policy: {exc}", step=1) from exc
    if len(found) < quorum:
        names = ", ".join(c.name for c in found) or "none"
        raise VerificationError(
            f"witness policy not met: the checkpoint carries {len(found)} valid cosignature(s) "
            f"of the {len(keys)} witnesses named ({names}), {quorum} required",
            step=1,
        )
    return found


def _verified_lines(args: argparse.Namespace) -> list[bytes]:
    """Every entry of the log, verified first. Raises LedgerError."""
    if args.source == "live":
        kept = _Kept(_http(args))
        verify_increment(kept, pinned=_pinned(args), state=None)
    else:
        kept = _Kept(BundleFetcher(Path(args.target)))
        verify_log(kept, pinned=_pinned(args))
    return kept.lines


def _audit(args: argparse.Namespace) -> int:
    try:
        lines = _verified_lines(args)
        result = audit_entries(lines, grace=timedelta(hours=args.grace_hours))
    except LedgerError as exc:
        print(_failure(_as_failure(exc), args.json), file=sys.stdout if args.json else sys.stderr)
        return 1
    except AuditError as exc:
        print(f"cannot audit: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        verdict = "OK " if result.ok else "FAILED"
        print(
            f"{verdict} {len(result.violations)} violation(s) in {result.entries} entries "
            f"({result.searches} searches, {result.refusals} refused)"
        )
        for v in result.violations:
            print(f"  seq {v.seq:<6} {v.rule:<22} {v.message}")
        for rule in sorted({v.rule for v in result.violations}):
            print(f"  {rule}: {RULES[rule]}")
    return 0 if result.ok else 1


def _report(args: argparse.Namespace) -> int:
    try:
        lines = _verified_lines(args)
        figures = build_report(load_records(lines), start=args.start, end=args.end)
    except LedgerError as exc:
        print(_failure(_as_failure(exc), args.json), file=sys.stdout if args.json else sys.stderr)
        return 1
    except (AuditError, ValueError) as exc:
        print(f"cannot build the report: {exc}", file=sys.stderr)
        return 2
    if args.svg is not None:
        Path(args.svg).write_text(report_svg(figures), encoding="utf-8")
    if args.csv:
        sys.stdout.write(report_csv(figures))
    else:
        print(json.dumps(figures, indent=2))
    return 0


def quiet_on_closed_pipe(run: Callable[[], int | None]) -> int:
    """Run a command; if the reader of its output has gone (``… | head``), end quietly.

    The status is then 1, as click gives. As the Python documentation advises (signal, "Note on
    SIGPIPE"), stdout is pointed at /dev/null so that the interpreter's last flush does not
    raise a second time.
    """
    try:
        try:
            status = run()
        except SystemExit:  # argparse and click end with sys.exit: flush before it
            sys.stdout.flush()
            raise
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status or 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier; returns the exit status."""
    return quiet_on_closed_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "receipt":
        return _check_receipt(args)
    if args.command == "witness":
        return _witness(args)
    try:
        if args.command == "audit":
            return _audit(args)
        if args.command == "report":
            return _report(args)
        return _verify(args)
    except BrokenPipeError:
        raise
    except OSError as exc:
        print(f"facewarden-verify: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
