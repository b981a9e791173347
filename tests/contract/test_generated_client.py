"""A client generated from the committed document runs the core story against a served instance.

``openapi-python-client`` builds a Python package from ``openapi/openapi.json`` in the test's temp
dir (it is never committed); every HTTP call below goes through that package, pinned to the
served certificate. Only the first administrator's key (``facewarden admin create``) and the
mailed claim secrets (the outbox the embedded default writes) come from outside the API, as they
do for a real integration.
"""

from __future__ import annotations

import importlib
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http import HTTPStatus
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.api.helpers import secret_in
from tests.conftest import REPO, shared_path

pytestmark = [pytest.mark.slow, pytest.mark.models]

PACKAGE = "facewarden_client"
GALLERY = ("Adam_McKay_729.jpg", "Adam_McKay_730.jpg", "Adrienne_Barbeau_9041.jpg")
PROBE = "Adam_McKay_733.jpg"
CLI = (sys.executable, "-m", "api.cli")


@pytest.fixture
def photos() -> Path:
    dev = shared_path() / "faces" / "dev"
    if not all((dev / name).is_file() for name in (*GALLERY, PROBE)):
        pytest.skip(f"the labelled dev photos ({', '.join(GALLERY)}, {PROBE}) are not in {dev}")
    return dev


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[None]:
    """The generated client, importable as ``facewarden_client`` for the length of the test."""
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    if generator is None:
        pytest.skip("openapi-python-client is not installed (the dev extra pins it)")
    search_path = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    config = tmp_path / "generator.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\n")
    run = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(REPO / "openapi" / "openapi.json"),
            "--output-path",
            str(tmp_path / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        # Its post-generation hooks call ruff, installed beside this interpreter.
        env={**os.environ, "PATH": search_path},
    )
    assert run.returncode == 0, f"the generator refused the document:\n{run.stdout}{run.stderr}"
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _call(operation: str, expected: HTTPStatus, **kwargs: Any) -> Any:
    """``api.<operation>.sync_detailed(**kwargs)``'s parsed body, once it answered ``expected``."""
    response = _module(f"api.{operation}").sync_detailed(**kwargs)
    assert response.status_code == expected, (
        f"{operation} answered {response.status_code}: {response.content!r}"
    )
    return response.parsed


def _approve(operation: str, approver: Any, reason: str, **path: Any) -> Any:
    """An approval with its reason, by ``approver``."""
    body = _model("Reason", {"reason": reason})
    return _call(operation, HTTPStatus.OK, client=approver, body=body, **path)


# The generated form model of each upload operation.
FORMS = {"gallery.post_gallery_photos": "EnrollForm", "searches.post_searches": "SearchForm"}


def _upload(operation: str, uploader: Any, photo: Path, **fields: Any) -> Any:
    """A multipart upload of ``photo`` with ``fields``, through the operation's form model."""
    form = getattr(_module(f"models.{_snake(FORMS[operation])}"), FORMS[operation])
    with photo.open("rb") as image:
        upload = _module("types").File(payload=image, file_name=photo.name, mime_type="image/jpeg")
        body = form(image=upload, **fields)
        return _call(operation, HTTPStatus.CREATED, client=uploader, body=body)


def _model(name: str, value: dict[str, Any]) -> Any:
    """The generated model ``name`` built from ``value`` by the client's own ``from_dict``."""
    module = _module(f"models.{_snake(name)}")
    return getattr(module, name).from_dict(value)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _secret(outbox: Path, address: str) -> str:
    """The claim secret last written to ``address`` in the served instance's outbox."""
    found = []
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(secret_in(message))
    assert found, f"no mail to {address} in {outbox}"
    return found[-1]


def _person(first: str, last: str, email: str, job: str) -> dict[str, str]:
    return {
        "first_name": first,
        "last_name": last,
        "phone": "+33 4 72 00 00 00",
        "email": email,
        "job_title": job,
    }


def test_a_generated_client_runs_the_core_story(
    generated: None, served_instance: dict[str, str], photos: Path
) -> None:
    started = time.monotonic()
    env = dict(served_instance)
    home = Path(env.pop("cwd"))
    outbox = home / "var" / "mail" / "outbox"
    client_module = _module("client")

    opened: list[Any] = []

    def client(token: str | None = None) -> Any:
        """A client of the served instance that trusts exactly its certificate."""
        options = {
            "base_url": env["FACEWARDEN_PUBLIC_URL"],
            "verify_ssl": ssl.create_default_context(cafile=str(home / "var" / "tls" / "cert.pem")),
            "raise_on_unexpected_status": True,
        }
        if token is None:
            made = client_module.Client(**options)
        else:
            made = client_module.AuthenticatedClient(token=token, **options)
        opened.append(made)
        return made

    try:
        _story(client, lambda address: _secret(outbox, address), photos, home=home, env=env)
    finally:  # its keep-alive connections would hold the server's shutdown
        for made in opened:
            made.get_httpx_client().close()
    assert time.monotonic() - started < 60


def _story(
    client: Callable[..., Any],
    claim_secret: Callable[[str], str],
    photos: Path,
    *,
    home: Path,
    env: dict[str, str],
) -> None:
    """Register, approve, claim, enrol, record and approve a basis, search, review, read."""

    def claim(operation: str, request_id: Any, address: str) -> str:
        issued = _call(
            operation,
            HTTPStatus.CREATED,
            client=client(),
            body=_model("Claim", {"claim_secret": claim_secret(address)}),
            **{"registration_id" if "registration" in operation else "request_id": request_id},
        )
        assert issued.credential.status == "active"
        key: str = issued.api_key
        return key

    # The first administrator, on the server's command line.
    created = subprocess.run(
        [*CLI, "admin", "create", "--email", "admin@example.org", "--name", "Ada Admin"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    admin = client(created.stdout.strip().splitlines()[-1])
    assert _call("health.get_readyz", HTTPStatus.OK, client=client()).status == "ready"

    # An agency applies; the administrator approves; its contact claims the first key.
    submitted = _call(
        "registrations.post_registrations",
        HTTPStatus.ACCEPTED,
        client=client(),
        body=_model(
            "RegistrationSubmit",
            {
                "agency": {
                    "name": "Police judiciaire de Lyon",
                    "kind": "police",
                    "country": "FR",
                    "jurisdiction": "Rhône",
                },
                "contact": _person(
                    "Camille", "Martin", "camille.martin@police.example", "Commissaire"
                ),
                "intended_use": "Identify suspects in serious crimes from CCTV stills, "
                "under a judge's warrant.",
            },
        ),
    )
    assert submitted.status == "pending"
    approved = _approve(
        "registrations.post_registrations_by_registration_id_approve",
        admin,
        "Warrant-based use confirmed with the Lyon prosecutor",
        registration_id=submitted.id,
    )
    assert approved.status == "approved"
    supervisor = client(
        claim(
            "registrations.post_registrations_by_registration_id_claim",
            submitted.id,
            "camille.martin@police.example",
        )
    )

    # A second supervisor (four-eyes needs one) and an investigator, by account requests.
    def request_account(role: str, person: dict[str, str]) -> Any:
        asked = _call(
            "account_requests.post_account_requests",
            HTTPStatus.ACCEPTED,
            client=supervisor,
            body=_model("AccountRequestCreate", {"role": role, "person": person}),
        )
        decided = _approve(
            "account_requests.post_account_requests_by_request_id_approve",
            admin,
            "Named by the agency's supervisor",
            request_id=asked.id,
        )
        assert (decided.status, decided.role) == ("approved", role)
        return client(
            claim(
                "account_requests.post_account_requests_by_request_id_claim",
                asked.id,
                person["email"],
            )
        )

    supervisor2 = request_account(
        "supervisor",
        _person("Louis", "Bernard", "louis.bernard@police.example", "Commandant"),
    )
    investigator = request_account(
        "investigator", _person("Inès", "Moreau", "ines.moreau@police.example", "Capitaine")
    )

    # A gallery curator, created by the administrator as staff and claimed the same way.
    curator_person = _person("Jean", "Dupont", "jean.dupont@gallery.example", "Gallery curator")
    staff = _call(
        "staff.post_staff",
        HTTPStatus.CREATED,
        client=admin,
        body=_model("StaffCreate", {"role": "curator", "person": curator_person}),
    )
    curator = client(
        claim(
            "account_requests.post_account_requests_by_request_id_claim",
            staff.id,
            curator_person["email"],
        )
    )

    # The curator enrols the gallery with its provenance: multipart uploads.
    basis_kind = _module("models.enroll_form_collection_basis").EnrollFormCollectionBasis
    collected_at = datetime.now(UTC) - timedelta(days=30)
    for name in GALLERY:
        photo = _upload(
            "gallery.post_gallery_photos",
            curator,
            photos / name,
            source_url=f"https://www.flickr.com/photos/example/{name}",
            collected_at=collected_at,
            collection_basis=basis_kind("public_record"),
        )
        assert (photo.source_site, photo.collection_basis) == ("flickr.com", "public_record")

    # The investigator records a legal basis; the other supervisor approves it.
    now = datetime.now(UTC).replace(microsecond=0)
    basis = _call(
        "legal_bases.post_legal_bases",
        HTTPStatus.CREATED,
        client=investigator,
        body=_model(
            "LegalBasisCreate",
            {
                "case_number": f"PJ-LYON-{now.year}-00417",
                "offence_category": "kidnapping_hostage_taking",
                "legal_provision": "Code de procédure pénale, art. 706-96",
                "authorisation": {
                    "kind": "judicial",
                    "reference": "JLD-2026-1187",
                    "authority": "Tribunal judiciaire de Lyon",
                    "issued_at": now.isoformat(),
                    "expires_at": (now + timedelta(days=30)).isoformat(),
                },
                "justification": f"A child was abducted on {(now - timedelta(days=7)).date()}; "
                "the CCTV still of the suspect must be compared with the gallery.",
                "max_searches": 5,
            },
        ),
    )
    assert (basis.status, basis.searches_left) == ("pending", 5)
    basis = _approve(
        "legal_bases.post_legal_bases_by_basis_id_approve",
        supervisor2,
        "Warrant JLD-2026-1187 checked",
        basis_id=basis.id,
    )
    assert basis.status == "approved"

    # The search: candidates and a ledger receipt.
    outcome = _upload(
        "searches.post_searches",
        investigator,
        photos / PROBE,
        legal_basis_id=basis.id,
        purpose="identify the abductor",
        top_k=3,
    )
    assert (outcome.gallery_size, outcome.top_k, outcome.legal_basis_id) == (3, 3, basis.id)
    first = outcome.candidates[0]
    assert first.rank == 1 and first.similarity >= outcome.threshold
    assert first.source_url.startswith("https://www.flickr.com/photos/example/Adam_McKay_")
    receipt = outcome.receipt
    assert 0 <= receipt.seq < receipt.tree_size
    assert receipt.leaf_hash and receipt.entry and receipt.checkpoint
    assert isinstance(receipt.inclusion_proof, list)

    # Two colleagues of the investigator review the first candidate: a confirmed lead.
    states = []
    for reviewer in (supervisor, supervisor2):
        reviewed = _call(
            "searches.post_searches_by_search_id_reviews",
            HTTPStatus.CREATED,
            search_id=outcome.id,
            client=reviewer,
            body=_model(
                "ReviewRequest",
                {
                    "reviews": [
                        {
                            "face_id": str(first.face_id),
                            "verdict": "possible_match",
                            "note": "Same scar above the left eyebrow",
                        }
                    ]
                },
            ),
        )
        states.append(reviewed.review_state)
    assert states == ["in_review", "confirmed_lead"]
    read = _call(
        "searches.get_searches_by_search_id",
        HTTPStatus.OK,
        search_id=outcome.id,
        client=investigator,
    )
    assert read.review_state == "confirmed_lead"
    assert (read.candidates[0].possible_match_votes, read.candidates[0].confirmed_lead) == (2, True)
    assert read.ledger_seq == receipt.seq
    # What the server always sends, the document marks required: no field the story read is
    # typed as possibly missing (``Unset``) in the generated models.
    for model in ("SearchOutcome", "Candidate", "Receipt", "SearchView", "CandidateView"):
        optional = [
            field.name
            for field in attrs.fields(getattr(_module(f"models.{_snake(model)}"), model))
            if field.default is not attrs.NOTHING and field.name != "additional_properties"
        ]
        assert optional == [], f"{model} types {optional} as possibly missing"
