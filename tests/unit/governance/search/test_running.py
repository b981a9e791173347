"""The governed search flow (``governance.search.running``): parameters, the basis checked before
any biometric work, every refusal on record, and a real search recorded with its basis spent."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biometrics.errors import NoFaceFound
from governance.core.errors import GovernanceError
from governance.core.work import Units
from governance.gallery.blobs import FileBlobStore
from governance.gallery.photos import FaceEngines
from governance.legal_basis.models import LegalBasis
from governance.search.models import Search
from governance.search.running import ThresholdBelowFloor, search, search_parameters
from tests import factories
from tests.api.faces import dev_photos
from tests.unit.governance.search.conftest import SearchTeam, entries_since, next_seq

FLOOR = 0.4
PROBE = b"not even an image: the basis is refused before anyone looks"


class _Untouchable:
    """An analyzer or index that fails the test if the flow reaches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"biometric work ({name}) before the basis was checked")


@pytest.fixture
def no_models(app: Flask, tmp_path: Path) -> FaceEngines:
    """A gallery whose analyzer and index must not be reached."""
    return FaceEngines(
        analyzer=_Untouchable(),  # type: ignore[arg-type]
        index=_Untouchable(),  # type: ignore[arg-type]
        blobs=FileBlobStore(tmp_path),
        max_bytes=1 << 20,
        max_pixels=1 << 20,
        match_threshold=FLOOR,
        match_far=1e-4,
    )


@pytest.fixture
def models(app: Flask, shared_dir: Path) -> Iterator[FaceEngines]:
    """The app's gallery with the real models (skipped where the shared models are absent)."""
    from api.context import engines

    with app.app_context():
        yield engines()


def _search(
    units: Units, gallery: FaceEngines, team: SearchTeam, session: Session, **kw: Any
) -> Any:
    arguments: dict[str, Any] = {
        "image": PROBE,
        "legal_basis_id": team.basis.id,
        "purpose": "identify the suspect",
        "top_k": 5,
    } | kw
    return search(units, gallery, factories.principal(session, team.searcher), **arguments)


def _used(session: Session, basis: LegalBasis) -> int:
    session.expire_all()
    return session.get_one(LegalBasis, basis.id).searches_used


@pytest.mark.parametrize(
    ("threshold", "expected"), [(None, FLOOR), (FLOOR, FLOOR), (0.9, 0.9)], ids=str
)
def test_parameters_default_to_the_floor_and_keep_a_stricter_threshold(
    no_models: FaceEngines, threshold: float | None, expected: float
) -> None:
    parameters = search_parameters(
        no_models, legal_basis_id=uuid4(), purpose="p", top_k=3, threshold=threshold
    )
    assert parameters.threshold == expected


def test_a_threshold_below_the_floor_is_refused_naming_the_floor(no_models: FaceEngines) -> None:
    with pytest.raises(ThresholdBelowFloor, match=r"below 0\.4") as raised:
        search_parameters(no_models, legal_basis_id=uuid4(), purpose="p", top_k=3, threshold=0.1)
    assert raised.value.code == "threshold-below-floor"
    assert raised.value.extra == {"threshold_floor": FLOOR, "threshold_floor_far": 1e-4}


@pytest.mark.parametrize(
    ("basis_values", "reason"),
    [
        ({"status": "pending", "decided_by": None, "decided_at": None}, "legal-basis-pending"),
        ({"status": "revoked"}, "legal-basis-revoked"),
        ({"searches_used": 10, "max_searches": 10}, "legal-basis-exhausted"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_an_unusable_basis_is_refused_before_the_probe_and_the_refusal_recorded(
    session: Session,
    units: Units,
    team: SearchTeam,
    no_models: FaceEngines,
    basis_values: dict[str, Any],
    reason: str,
) -> None:
    for name, value in basis_values.items():
        setattr(team.basis, name, value)
    session.flush()
    used = team.basis.searches_used
    start = next_seq(session)
    with pytest.raises(GovernanceError) as raised:
        _search(units, no_models, team, session)
    assert raised.value.code == reason
    [refusal] = entries_since(session, start)
    assert refusal["type"] == "search:refuse"
    assert refusal["payload"] == {
        "agency_id": str(team.searcher.agency_id),
        "account_id": str(team.searcher.id),
        "credential_id": refusal["payload"]["credential_id"],
        "legal_basis_id": str(team.basis.id),
        "reason": reason,
        "probe_sha256": hashlib.sha256(PROBE).hexdigest(),
    }
    assert _used(session, team.basis) == used


def test_an_expired_basis_is_settled_on_record_even_though_the_search_is_refused(
    session: Session, units: Units, team: SearchTeam, no_models: FaceEngines
) -> None:
    team.basis.expires_at = factories.NOW - timedelta(minutes=1)
    session.flush()
    start = next_seq(session)
    with pytest.raises(GovernanceError, match="expired"):
        _search(units, no_models, team, session)
    recorded = entries_since(session, start)
    assert [e["type"] for e in recorded] == ["legal_basis:expire", "search:refuse"]
    assert recorded[1]["payload"]["reason"] == "legal-basis-expired"
    session.expire_all()
    assert session.get_one(LegalBasis, team.basis.id).status == "expired"


def test_another_agencys_basis_is_refused_as_not_found(
    session: Session, units: Units, team: SearchTeam, no_models: FaceEngines
) -> None:
    other_author = factories.account(session)
    other = factories.approved_basis(session, other_author, factories.account(session))
    start = next_seq(session)
    with pytest.raises(GovernanceError) as raised:
        _search(units, no_models, team, session, legal_basis_id=other.id)
    assert raised.value.code == "legal-basis-not-found"
    assert [e["payload"]["reason"] for e in entries_since(session, start)] == [
        "legal-basis-not-found"
    ]


def test_a_threshold_below_the_floor_is_refused_on_record_and_spends_nothing(
    session: Session, units: Units, team: SearchTeam, no_models: FaceEngines
) -> None:
    start = next_seq(session)
    with pytest.raises(ThresholdBelowFloor):
        _search(units, no_models, team, session, threshold=FLOOR - 0.1)
    assert [e["payload"]["reason"] for e in entries_since(session, start)] == [
        "threshold-below-floor"
    ]
    assert _used(session, team.basis) == 0


def test_a_search_is_recorded_with_its_basis_spent(
    session: Session, units: Units, team: SearchTeam, models: FaceEngines, shared_dir: Path
) -> None:
    probe = next(iter(dev_photos(shared_dir).values()))[0].read_bytes()
    start = next_seq(session)
    outcome = _search(units, models, team, session, image=probe, purpose="case 7")
    [entry] = entries_since(session, start)
    assert entry["type"] == "search:run"
    assert outcome.receipt.seq == start
    payload = entry["payload"]
    assert payload["search_id"] == str(outcome.id)
    assert payload["legal_basis_id"] == str(team.basis.id)
    assert payload["case_number"] == team.basis.case_number
    assert payload["purpose"] == "case 7"
    assert payload["probe_sha256"] == hashlib.sha256(probe).hexdigest()
    assert payload["threshold"] == f"{models.match_threshold:.4f}"
    assert _used(session, team.basis) == 1
    stored = session.get_one(Search, outcome.id)
    assert (stored.ledger_seq, stored.agency_id) == (start, team.searcher.agency_id)


def test_a_probe_without_a_face_is_refused_on_record_and_spends_nothing(
    session: Session, units: Units, team: SearchTeam, models: FaceEngines
) -> None:
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(blank, "JPEG")
    start = next_seq(session)
    searches = session.scalar(select(func.count()).select_from(Search))
    with pytest.raises(NoFaceFound):
        _search(units, models, team, session, image=blank.getvalue())
    assert [e["payload"]["reason"] for e in entries_since(session, start)] == ["no-face"]
    assert _used(session, team.basis) == 0
    assert session.scalar(select(func.count()).select_from(Search)) == searches


def test_a_basis_that_expires_during_the_analysis_is_not_spent(
    session: Session, units: Units, team: SearchTeam, models: FaceEngines, shared_dir: Path
) -> None:
    # Valid when the request starts, expired by the time the search would be recorded: the
    # spend is checked at the instant of recording, not at the request's start.
    team.basis.expires_at = factories.NOW + timedelta(seconds=30)
    session.flush()
    later = replace(units, clock=lambda: factories.NOW + timedelta(minutes=1))
    probe = next(iter(dev_photos(shared_dir).values()))[0].read_bytes()
    start = next_seq(session)
    with pytest.raises(GovernanceError) as refused:
        _search(later, models, team, session, image=probe)
    assert refused.value.code == "legal-basis-expired"
    assert _used(session, team.basis) == 0
    [entry] = entries_since(session, start)
    assert (entry["type"], entry["payload"]["reason"]) == ("search:refuse", "legal-basis-expired")
