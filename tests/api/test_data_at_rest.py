"""What ``init`` and ``serve`` write under the data directory is the owner's alone (0700 / 0600).

The commands run from a shell with the common umask 022, so the modes seen are the ones the
commands set themselves.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from api.settings import Settings
from tests.api.faces import dev_photos, variant
from tests.api.helpers import person, secret_in
from tests.api.served import environment, start, stop

pytestmark = pytest.mark.slow


def _modes(root: Path) -> dict[str, str]:
    """Every path under ``root`` (``root`` itself as ".") with its permission bits in octal."""
    paths = [root, *sorted(root.rglob("*"))]
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.lstat().st_mode)) for p in paths}


def _loose(modes: dict[str, str], root: Path) -> dict[str, str]:
    """The paths whose mode is not 0700 (directories) or 0600 (files)."""
    expected = {True: "0o700", False: "0o600"}
    return {p: m for p, m in modes.items() if m != expected[(root / p).is_dir()]}


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        umask=0o022,
    )
    return done.stdout


def test_init_serve_and_an_enrolment_leave_everything_owner_only(
    tmp_path: Path, settings: Settings, shared_dir: Path
) -> None:
    data = tmp_path / "var"
    # The embedded default (SQLite and milvus-lite files under the data directory), whatever
    # database the rest of the suite runs on; the model pack is read from elsewhere.
    env = {
        **environment(settings),
        "FACEWARDEN_DATA_DIR": str(data),
        "FACEWARDEN_DATABASE_URL": f"sqlite:///{data}/facewarden.db",
        "FACEWARDEN_LEDGER_ORIGIN": "facewarden.test/modes",
    }
    _cli(env, "init")
    admin_key = _cli(env, "admin", "create", "--email", "a@modes.example", "--name", "A").split()[
        -1
    ]
    served_settings = Settings.from_env(env)
    proc, port = start(served_settings, umask=0o022)
    try:
        base = f"https://127.0.0.1:{port}"
        verify = str(served_settings.tls_cert_path)
        holder = person()
        staff = requests.post(
            f"{base}/v1/staff",
            json={"role": "curator", "person": holder},
            headers={"Authorization": f"Bearer {admin_key}"},
            verify=verify,
            timeout=30,
        )
        assert staff.status_code == 201, staff.text
        receipt = staff.json()
        issued = requests.post(
            f"{base}/v1/account-requests/{receipt['id']}/claim",
            json={"claim_secret": _mailed_secret(served_settings, holder["email"])},
            verify=verify,
            timeout=30,
        )
        assert issued.status_code == 201, issued.text
        photo = next(iter(dev_photos(shared_dir).values()))[0]
        enrolled = requests.post(
            f"{base}/v1/gallery/photos",
            files={"image": ("photo.png", variant(photo), "image/png")},
            data={
                "source_url": "https://photos.example.org/p/1.jpg",
                "collected_at": "2026-01-15T10:00:00Z",
                "collection_basis": "public_record",
            },
            headers={"Authorization": f"Bearer {issued.json()['api_key']}"},
            verify=verify,
            timeout=120,
        )
        assert enrolled.status_code == 201, enrolled.text
        while_serving = _modes(data)
    finally:
        stop(proc)
    after = _modes(data)

    # What there is to protect is there: the database and its WAL, the index, a photo, keys.
    names = set(while_serving)
    assert {"facewarden.db", "facewarden.db-wal", "keys/ledger.pem", "tls/key.pem"} <= names
    assert any(n.startswith("milvus/") and not (data / n).is_dir() for n in names), names
    assert any(n.startswith("photos/") and not (data / n).is_dir() for n in names), names
    assert _loose(while_serving, data) == {}
    assert _loose(after, data) == {}


def _mailed_secret(settings: Settings, address: str) -> str:
    """The claim secret the served instance wrote to ``address`` in its outbox."""
    for path in sorted(settings.mail_outbox_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            return secret_in(message)
    raise AssertionError(f"no mail to {address} in {settings.mail_outbox_dir}")
