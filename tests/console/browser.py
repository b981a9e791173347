"""A real browser for the console tests: Debian's Chromium driven by Playwright, with a
virtual passkey authenticator (Chrome DevTools' WebAuthn domain) and axe-core from npm.

``served_console`` runs ``facewarden serve`` over TLS at ``https://localhost:<port>`` (a
passkey's relying party must be a host name, never an IP address), on the test app's
database. Chromium trusts exactly that server's certificate, by its public key's hash: a
page with a certificate error may not use WebAuthn at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from api.settings import Settings
from tests.api.served import environment, free_port, with_certificate

__all__ = [
    "AXE",
    "CHROMIUM",
    "MISSING",
    "add_passkey_authenticator",
    "assert_accessible",
    "launch",
    "new_context",
    "own_deployment",
    "served_console",
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


def _missing() -> list[str]:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("Debian's chromium (apt-get install chromium)")
    if not AXE.exists():
        missing.append("axe-core (npm ci --prefix tests/console)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
    return missing


MISSING = _missing()


def spki_hash(cert_path: Path) -> str:
    """The base64 SHA-256 of a certificate's public key, as Chromium's SPKI list takes it."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@contextmanager
def served_console(settings: Settings, extra: Mapping[str, str] | None = None) -> Iterator[str]:
    """``facewarden serve`` over TLS on a free port, with ``extra`` settings in its
    environment; yields its ``https://localhost`` URL.

    What the server prints goes to a file, never to a pipe nobody reads while it runs: a full
    pipe (64 KiB of request log, some 150 requests) would block the thread that logs, and
    with it that request's answer.
    """
    settings = with_certificate(settings)
    port = free_port()
    url = f"https://localhost:{port}"
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
            env=environment(settings, {**(extra or {}), "FACEWARDEN_PUBLIC_URL": url}),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if proc.poll() is not None:
                    output.seek(0)
                    raise AssertionError(f"serve stopped:\n{output.read().decode()}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if os.environ.get("FACEWARDEN_TEST_SHOW_SERVE"):
                output.seek(0)
                print(output.read().decode()[-20000:])


@contextmanager
def own_deployment(root: Path, origin: str) -> Iterator[Settings]:
    """Settings of a deployment of its own: a fresh database (SQLite, or PostgreSQL under the
    application role when the suite runs there), data directory, ledger and vector index,
    initialised as ``facewarden init`` does. A served console that must search or enrol needs
    one: milvus-lite lets only one process hold an index, and the suite's app holds its own.
    """
    from api.bootstrap import initialize
    from tests.conftest import (
        _postgres_server_url,
        as_application_role,
        create_test_database,
        drop_test_database,
        ensure_starter_pack,
        models_dir_for_tests,
    )

    database_url, owner = create_test_database(_postgres_server_url(), root)
    try:
        settings = Settings.from_mapping(
            {
                "data_dir": str(root / "var"),
                "database_url": database_url,
                "ledger_origin": origin,
                "models_dir": str(models_dir_for_tests()),
            }
        )
        ensure_starter_pack(settings.models_dir)
        initialize(settings, tls=False, progress=lambda _msg: None)
        yield with_certificate(as_application_role(settings))
    finally:
        drop_test_database(owner, database_url)


@contextmanager
def launch(settings: Settings, profile: Path) -> Iterator[Any]:
    """A headless Chromium that trusts the served certificate; yields the Playwright browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--ignore-certificate-errors-spki-list={spki_hash(settings.tls_cert_path)}",
            ],
            env={**os.environ, "HOME": str(profile)},
        )
        try:
            yield browser
        finally:
            browser.close()


def add_passkey_authenticator(page: Any) -> Any:
    """A platform authenticator that verifies the user (as a fingerprint would) on ``page``."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def new_context(browser: Any, **options: Any) -> Any:
    """A browser context whose pages carry axe-core: loaded as DevTools loads a script on a
    new document, which the page's CSP does not govern (the page's own scripts it does)."""
    context = browser.new_context(**options)
    context.add_init_script(path=str(AXE))
    return context


def assert_accessible(page: Any) -> None:
    """axe-core finds no violation on the page as it stands (WCAG 2.2 A and AA rules)."""
    page.wait_for_load_state("load")  # its stylesheet applied: sizes and colours are final
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
    )
    violations = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "nodes": [(n["target"], n["failureSummary"]) for n in v["nodes"]][:5],
            "help": v["help"],
        }
        for v in result["violations"]
    ]
    assert violations == [], f"{page.url}:\n{json.dumps(violations, indent=2)}"
