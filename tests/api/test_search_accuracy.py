"""Accuracy through the API equals the models' own: no loss in our pipeline.

Two photos of every identity of the labelled dev set are enrolled through the HTTP API and
every other photo is searched with. Rank-1 and TAR at FAR 1e-3 are computed from the answers,
and from the same models run directly on the same split, both keeping only what the service
may return (nothing below the pack's calibrated threshold); the API must keep >= 99% of both.
The gallery is a fresh one of its own, so other tests' faces cannot interfere.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask

from api.app import create_app
from api.bootstrap import initialize
from api.context import engines
from api.settings import Settings
from biometrics.evaluation import (
    LabelledPhoto,
    SearchAccuracy,
    embed_photos,
    read_manifest,
    search_accuracy,
)
from tests.api.bases import make_team
from tests.api.helpers import Agent, make_staff

pytestmark = [pytest.mark.models, pytest.mark.slow]

TOP_K = 20  # the API's bound; with two photos enrolled per identity it holds every mate


@pytest.fixture(scope="module")
def fresh_app(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    data = tmp_path_factory.mktemp("accuracy")
    own = Settings.from_mapping(
        {
            "data_dir": str(data),
            "ledger_origin": "accuracy.facewarden.local/ledger",
            "models_dir": str(settings.models_dir),
            "max_searches_per_basis": "50",
            "search_rate_limit": "100000 per minute",
            "account_rate_limit": "100000 per minute",
        }
    )
    initialize(own, tls=False, progress=lambda _m: None)
    application = create_app(own)
    yield application
    with application.app_context():
        engines().index.close()


def _split(photos: list[LabelledPhoto]) -> tuple[list[LabelledPhoto], list[LabelledPhoto]]:
    by_identity: dict[str, list[LabelledPhoto]] = defaultdict(list)
    for photo in photos:
        by_identity[photo.identity].append(photo)
    enrolled = [p for group in by_identity.values() for p in group[:2]]
    probes = [p for group in by_identity.values() for p in group[2:]]
    return enrolled, probes


def _search(client: Any, agent: Agent, basis: str, data: bytes, **extra: str) -> Any:
    return client.post(
        "/v1/searches",
        data={
            "image": (io.BytesIO(data), "probe.jpg"),
            "legal_basis_id": basis,
            "purpose": "accuracy evaluation",
            "top_k": str(TOP_K),
            **extra,
        },
        content_type="multipart/form-data",
        headers=agent.headers,
    )


def _through_the_api(
    app: Flask, enrolled: list[LabelledPhoto], probes: list[LabelledPhoto]
) -> SearchAccuracy:
    from tests.api.bases import approved
    from tests.api.faces import enroll

    client = app.test_client()
    team = make_team(app)
    curator = make_staff(client, team.admin, "curator")
    identity_of: dict[str, str] = {}
    gallery_identities: list[str] = []
    for photo in enrolled:
        response = enroll(
            client,
            curator,
            photo.path.read_bytes(),
            url=f"https://dev.example.org/{photo.path.name}",
        )
        if response.status_code == 422:  # no face: not in the gallery, as in the direct run
            continue
        assert response.status_code == 201, response.get_json()
        faces = response.get_json()["faces"]
        largest = max(
            faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1])
        )
        for face in faces:
            identity_of[face["id"]] = photo.identity if face is largest else f"other:{face['id']}"
        gallery_identities.append(photo.identity)

    ranked: list[list[tuple[str, float]]] = []
    basis, left = "", 0
    for photo in probes:
        if left == 0:
            basis, left = approved(client, app, team, max_searches=50)["id"], 50
        data = photo.path.read_bytes()
        response = _search(client, team.inv, basis, data)
        left -= 1
        if (
            response.status_code == 422
            and response.get_json()["type"] == "/problems/multiple-faces"
        ):
            faces = response.get_json()["faces"]
            largest = max(
                faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1])
            )
            if left == 0:
                basis, left = approved(client, app, team, max_searches=50)["id"], 50
            response = _search(client, team.inv, basis, data, face_index=str(largest["index"]))
            left -= 1
        if response.status_code == 422:
            ranked.append([])
            continue
        assert response.status_code == 201, response.get_json()
        ranked.append(
            [
                (identity_of[c["face_id"]], c["similarity"])
                for c in response.get_json()["candidates"]
            ]
        )
    return search_accuracy(ranked, [p.identity for p in probes], gallery_identities)


def _directly(
    app: Flask, enrolled: list[LabelledPhoto], probes: list[LabelledPhoto]
) -> SearchAccuracy:
    with app.app_context():
        pipeline = engines().analyzer
        floor = engines().match_threshold
    gallery_matrix, gallery_identities, _ = embed_photos(pipeline, enrolled)  # type: ignore[arg-type]
    # In batches: a photo's faces do not depend on the rest of its batch (tests/unit/biometrics).
    probe_matrix, _, missed = embed_photos(pipeline, probes)  # type: ignore[arg-type]
    faceless = set(missed)
    rows = iter(probe_matrix)  # one per probe with a face, in order
    ranked: list[list[tuple[str, float]]] = []
    for photo in probes:
        if photo.path in faceless:
            ranked.append([])
            continue
        scores = gallery_matrix @ next(rows)
        order = np.argsort(-scores)[:TOP_K]
        # What the service may answer: nothing below the pack's calibrated threshold.
        ranked.append(
            [(gallery_identities[i], float(scores[i])) for i in order if scores[i] >= floor]
        )
    assert next(rows, None) is None
    return search_accuracy(ranked, [p.identity for p in probes], gallery_identities)


def test_search_accuracy_through_the_api_matches_the_models(
    fresh_app: Flask, shared_dir: Path
) -> None:
    photos = read_manifest(shared_dir / "faces" / "dev")
    enrolled, probes = _split(photos)
    api = _through_the_api(fresh_app, enrolled, probes)
    direct = _directly(fresh_app, enrolled, probes)
    print("\n" + api.table("through the API") + "\n" + direct.table("models directly"))
    assert api.probes == direct.probes == len(probes)
    assert api.rank1 >= 0.99 * direct.rank1
    assert api.tar >= 0.99 * direct.tar
    assert api.rank1 >= 0.95
