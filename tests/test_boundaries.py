"""Imports run api -> governance -> {ledger, biometrics}, never back, and never Flask below api."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

FORBIDDEN = {
    "governance": {"api", "flask", "flask_smorest", "werkzeug", "marshmallow"},
    "ledger": {"api", "governance", "biometrics", "flask", "flask_smorest", "werkzeug"},
    "biometrics": {"api", "governance", "ledger", "flask", "flask_smorest", "werkzeug"},
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upwards(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_roots(path) & FORBIDDEN[package])
        for path in sorted((REPO / package).rglob("*.py"))
        if _imported_roots(path) & FORBIDDEN[package]
    }
    assert offenders == {}


# Between the governance domains: identity stands on the core alone; the gallery and the legal
# basis on identity; the search on all three; oversight reads the ledger for identified callers.
# A call against the grain (a lapsed basis deleting search results) is a hook in
# governance.core.work, registered once in governance.wiring.
DOMAINS = ("core", "identity", "legal_basis", "gallery", "search", "oversight")
MAY_IMPORT = {
    "core": set(),
    "identity": {"core"},
    "legal_basis": {"core", "identity"},
    "gallery": {"core", "identity"},
    "search": {"core", "identity", "legal_basis", "gallery"},
    "oversight": {"core", "identity"},
}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def _domains_imported(path: Path) -> set[str]:
    parts = (m.split(".") for m in _imported_modules(path))
    return {p[1] for p in parts if len(p) > 1 and p[0] == "governance" and p[1] in DOMAINS}


def test_governance_is_domain_packages_and_the_wiring() -> None:
    loose = sorted(
        p.name
        for p in (REPO / "governance").glob("*.py")
        if p.name not in {"__init__.py", "wiring.py"}
    )
    assert loose == []
    assert sorted(
        p.name for p in (REPO / "governance").iterdir() if p.is_dir() and p.name != "__pycache__"
    ) == sorted([*DOMAINS, "migrations"])


@pytest.mark.parametrize("domain", DOMAINS)
def test_domains_import_only_what_they_stand_on(domain: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(_domains_imported(path) - MAY_IMPORT[domain] - {domain})
        for path in sorted((REPO / "governance" / domain).rglob("*.py"))
        if _domains_imported(path) - MAY_IMPORT[domain] - {domain}
    }
    assert offenders == {}


def test_the_ledger_verifier_runs_without_the_server_stack() -> None:
    code = (
        "import sys, ledger.cli, ledger.verify, ledger.checkpoint, ledger.entry, ledger.hashing\n"
        "import ledger.cosignature, ledger.witness_server\n"
        "heavy = {'flask', 'sqlalchemy', 'numpy', 'onnxruntime', 'pymilvus', 'click'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# Comparing a face with the gallery identifies people: only the governed search and the erasure
# preview may do it, and each records itself in the ledger (a new path must join them there).
COMPARERS = {"governance/search/running.py", "governance/gallery/erasure_requests.py"}
_COMPARING_METHODS = {"search", "search_many"}
# Calibrating a pack scores the labelled dev photos against each other; it opens no gallery.
_NON_GALLERY_EVALUATION = {"calibrate_set"}


def _compares_with_the_index(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "biometrics.evaluation"
            and {alias.name for alias in node.names} - _NON_GALLERY_EVALUATION
        ):
            return True
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
        if node.func.attr in _COMPARING_METHODS and "index" in name.lower():
            return True
    return False


def test_only_the_governed_paths_compare_faces_with_the_gallery() -> None:
    comparing = {
        str(path.relative_to(REPO))
        for package in ("api", "governance")
        for path in sorted((REPO / package).rglob("*.py"))
        if _compares_with_the_index(path)
    }
    assert comparing == COMPARERS
