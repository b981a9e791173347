"""The README's tour, ``docs/tour.sh``, runs against a served instance and prints what it shows.

A fresh data directory on the embedded defaults (milvus-lite, mail written to the outbox), the
test models, the suite's database server when there is one, a real ``facewarden serve`` on
loopback TLS, and photos of the labelled dev set.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import (
    REPO,
    shared_path,
)

pytestmark = [pytest.mark.slow, pytest.mark.models]

GALLERY = ("Adam_McKay_729.jpg", "Adam_McKay_730.jpg", "Adrienne_Barbeau_9041.jpg")
PROBE = "Adam_McKay_733.jpg"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

# What the README shows the tour printing: each step's status and key fields, in order.
EXPECTED = [
    r'^200 \{"status": "ready", '
    r'"checks\.model_pack\.detail": "starter 1 \(recognizer sha256 \w+\)"\}$',
    r"^ADMIN=fw_\w+…$",
    rf'^202 \{{"id": "{UUID}", "status": "pending"\}}$',
    rf'^200 \{{"status": "approved", "agency_id": "{UUID}", "account_id": "{UUID}"\}}$',
    r'^201 \{"credential\.status": "active", "credential\.expires_at": "\S+\+00:00"\}$',
    r'^409 \{"type": "/problems/already-claimed", "status": 409\}$',
    # the second supervisor, then the investigator
    rf'^202 \{{"id": "{UUID}", "status": "pending"\}}$',
    rf'^200 \{{"status": "approved", "role": "supervisor", "account_id": "{UUID}"\}}$',
    r'^201 \{"credential\.status": "active"\}$',
    rf'^202 \{{"id": "{UUID}", "status": "pending"\}}$',
    rf'^200 \{{"status": "approved", "role": "investigator", "account_id": "{UUID}"\}}$',
    r'^201 \{"credential\.status": "active"\}$',
    # the curator, created as staff and claimed at /v1/account-requests/{id}/claim
    rf'^201 \{{"id": "{UUID}", "status": "approved"\}}$',
    r'^201 \{"credential\.status": "active"\}$',
    *[
        r'^201 \{"source_site": "flickr\.com", "collection_basis": "public_record", '
        r'"pack_name": "starter"\}$'
    ]
    * len(GALLERY),
    r'^201 \{"status": "pending", "searches_used": 0, "searches_left": 5\}$',
    r'^403 \{"type": "/problems/legal-basis-pending", "status": 403, '
    r'"legal_basis_state": "pending"\}$',
    r'^200 \{"status": "approved", "searches_used": 0, "searches_left": 5\}$',
    rf'^201 \{{"gallery_size": {len(GALLERY)}, "threshold": 0\.35, "top_k": 3, '
    r'"receipt\.seq": \d+, "receipt\.tree_size": \d+\}$',
    r"^  rank 1  similarity 0\.\d{4}  https://www\.flickr\.com/photos/example/Adam_McKay_7\d\d\.jpg$",
    r'^201 \{"review_state": "in_review"\}$',
    r'^201 \{"review_state": "confirmed_lead"\}$',
    r'^200 \{"review_state": "confirmed_lead", "candidates\.0\.possible_match_votes": 2, '
    r'"candidates\.0\.confirmed_lead": true\}$',
    r"^OK  entry \d+ \(search:run\) is in the log of size \d+$",
    r"^exported \d+ entries to \S+/bundle$",
    r"^OK  facewarden\.local/ledger$",
    r"^    entries     \d+ verified in [\d.]+ s$",
]


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, Path]:
    return tour_photos(tmp_path)


def tour_photos(tmp_path: Path) -> tuple[Path, Path]:
    """The tour's gallery directory (a copy of GALLERY) and its probe; skips without them."""
    dev = shared_path() / "faces" / "dev"
    if not all((dev / name).is_file() for name in (*GALLERY, PROBE)):
        pytest.skip(f"the labelled dev photos ({', '.join(GALLERY)}, {PROBE}) are not in {dev}")
    gallery = tmp_path / "photos"
    gallery.mkdir()
    for name in GALLERY:
        shutil.copy(dev / name, gallery / name)
    return gallery, dev / PROBE


@pytest.fixture
def instance(request: pytest.FixtureRequest) -> dict[str, str]:
    """A served instance (see ``served_instance``), when curl is there to speak to it."""
    if shutil.which("curl") is None:
        pytest.skip("the tour needs curl")
    served: dict[str, str] = request.getfixturevalue("served_instance")
    return served


def test_the_tour_runs_and_prints_what_the_readme_shows(
    instance: dict[str, str], photos: tuple[Path, Path]
) -> None:
    env = dict(instance)
    cwd = env.pop("cwd")
    started = time.monotonic()
    lines = run_tour(env, cwd, *photos)
    assert time.monotonic() - started < 60
    # The outputs the README shows are the ones the script printed.
    printed = {_masked(line) for line in lines}
    shown = _blocks("text")
    assert len(shown) > 25
    output = "\n".join(lines)
    for line in shown:
        assert _masked(line) in printed, f"the README shows {line!r}, the tour printed:\n{output}"


def run_tour(env: dict[str, str], cwd: str, gallery: Path, probe: Path) -> list[str]:
    """Run ``docs/tour.sh`` against the instance ``env`` reaches and return its printed lines,
    checked to hold each EXPECTED line in order."""
    run = subprocess.run(
        ["bash", str(REPO / "docs" / "tour.sh"), str(gallery), str(probe)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"the tour failed:\n{run.stdout}\n{run.stderr}"
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    # Each expected line appears, in the README's order.
    position = 0
    for pattern in EXPECTED:
        for index in range(position, len(lines)):
            if re.match(pattern, lines[index]):
                position = index + 1
                break
        else:
            raise AssertionError(
                f"no line matches {pattern!r} after line {position}:\n{run.stdout}"
            )
    return lines


def _tour_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]


def _blocks(language: str) -> list[str]:
    """The lines of the tour section's fenced blocks in ``language``."""
    found = re.findall(rf"^```{language}\n(.*?)^```$", _tour_section(), flags=re.M | re.S)
    return [line for block in found for line in block.splitlines() if line.strip()]


def _masked(line: str) -> str:
    """A printed line with what differs between runs (ids, keys, hashes, times, counts) masked."""
    for pattern, mask in (
        (UUID, "<uuid>"),
        (r"fw_\w+", "<key>"),
        (r"facewarden-tour\.\w+", "<out>"),
        (r"ledger\+[0-9a-f]{8}\+\S+", "ledger+<key>"),
        (r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "<time>"),
        (r"\b[0-9a-f]{12,}\b", "<hex>"),
        (r"(?<=\S)( +)\d+(\.\d+)?\b", r"\1<n>"),
        (r'(": )\d+(\.\d+)?', r"\1<n>"),
    ):
        line = re.sub(pattern, mask, line)
    return line


def test_the_readme_shows_the_script() -> None:
    """Every request the README's tour shows is a line of the script CI runs."""
    script = {line.strip() for line in (REPO / "docs" / "tour.sh").read_text().splitlines()}
    shown = _blocks("sh")
    assert len(shown) > 50
    for line in shown:
        assert line.strip() in script, f"the README shows a line the tour does not run: {line}"
    tour = _tour_section()
    for needed in ("/v1/account-requests/{id}/claim", "/v1/staff", "second supervisor"):
        assert needed in tour, needed


def test_the_script_assigns_every_variable_it_uses() -> None:
    script = (REPO / "docs" / "tour.sh").read_text()
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", script))
    assigned = set(re.findall(r"(?:^|[\s(])(?:local )?([A-Za-z_][A-Za-z0-9_]*)=", script, re.M))
    assigned |= set(re.findall(r"\bfor (\w+) in\b", script))
    assigned |= set(re.findall(r"mapfile -t (\w+)", script))
    assigned |= set(re.findall(r"^\s*local (\w+)$", script, re.M))
    # The environment the server shares, and bash's own.
    given = {v for v in used if v.startswith("FACEWARDEN_")} | {"TMPDIR"}
    assert used - assigned - given == set()
