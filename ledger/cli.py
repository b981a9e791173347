"""``facewarden-verify``: check an exported ledger bundle (or, later, a live log) offline.

Exit status 0 when every step passes, 1 on a verification failure (with the evidence),
2 on a usage error. Imports only the standard library, ``cryptography`` and ``rfc8785``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ledger.bundle import BundleFetcher, Fetcher, HttpFetcher, TrustedState
from ledger.entry import LedgerError
from ledger.receipt import verify_receipt
from ledger.verify import Report, VerificationError, verify_log

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facewarden-verify",
        description="Verify a FaceWarden audit ledger: signatures, hash chain, Merkle roots, "
        "and consistency with the checkpoint you trusted last time.",
    )
    sub = parser.add_subparsers(dest="source", required=True)
    for name, target, helptext in (
        ("bundle", "DIR", "an exported bundle directory"),
        ("live", "URL", "a running FaceWarden API (base URL)"),
    ):
        cmd = sub.add_parser(name, help=f"verify {helptext}")
        cmd.add_argument("target", metavar=target)
        cmd.add_argument(
            "--key",
            action="append",
            required=True,
            metavar="VKEY",
            help="pinned verifier key (name+keyid+base64); repeatable",
        )
        cmd.add_argument(
            "--state",
            type=Path,
            metavar="FILE",
            help="witness state: the last trusted checkpoint, advanced on success",
        )
        cmd.add_argument("--json", action="store_true", help="print a JSON report")
        cmd.add_argument(
            "--workers",
            type=int,
            default=None,
            help="processes for signature checks (default: all cores)",
        )
    receipt = sub.add_parser(
        "receipt", help="verify a search receipt (the search answer, or its `receipt` object)"
    )
    receipt.add_argument("target", metavar="FILE", help="a JSON file, or - for standard input")
    receipt.add_argument(
        "--key", action="append", required=True, metavar="VKEY", help="verifier key; repeatable"
    )
    receipt.add_argument("--json", action="store_true", help="print a JSON report")
    return parser


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
        report = verify_receipt(found, args.key)
    except VerificationError as exc:
        print(_failure(exc, args.json), file=sys.stdout if args.json else sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"ok": True, **asdict(report)}, indent=2))
    else:
        print(
            f"OK  entry {report.seq} ({report.entry_type}) is in the log of size "
            f"{report.tree_size}\n    root      {report.root}\n    signed by {report.signed_by}"
        )
    return 0


def _human(report: Report, seconds: float) -> str:
    lines = [
        f"OK  {report.origin}",
        f"    entries     {report.size} verified in {seconds:.2f} s",
        f"    root        {report.root.hex()}",
        f"    checkpoints {report.checkpoints_checked} checked",
        f"    keys        {len(report.keys)} in the rotation chain",
    ]
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.source == "receipt":
        return _check_receipt(args)
    fetcher: Fetcher = (
        BundleFetcher(Path(args.target)) if args.source == "bundle" else HttpFetcher(args.target)
    )
    started = time.perf_counter()
    try:
        state = TrustedState.load(args.state) if args.state else None
        report = verify_log(fetcher, pinned=args.key, state=state, workers=args.workers)
    except LedgerError as exc:
        if not isinstance(exc, VerificationError):
            exc = VerificationError(str(exc), step=5)
        print(_failure(exc, args.json), file=sys.stdout if args.json else sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    if args.state:
        checkpoint = fetcher.checkpoint()
        TrustedState(
            origin=report.origin, size=report.size, root=report.root, checkpoint=checkpoint
        ).save(args.state)
    if args.json:
        print(json.dumps({**report.to_json(), "seconds": round(elapsed, 3)}, indent=2))
    else:
        print(_human(report, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
