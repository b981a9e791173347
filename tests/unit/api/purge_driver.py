"""Subprocess steps of the kill -9 test of a purge, on the embedded index (one process at a time
may open its file, so nothing in the test process opens it).

``python -m tests.unit.api.purge_driver block SITE`` blocks and purges the site as
``facewarden gallery block`` does, in batches of one photo, then hangs once the first batch has
committed and before its effects outside the database are applied: the vector index it is given
prints ``committed`` at its first delete (the first effect) and waits to be killed.
``... left`` reads ``[{"files": [...], "faces": {face_id: embedding_hex}}]`` on stdin and prints
the files still stored and the face ids still indexed, as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from api.context import build_engines, loaded_signing_keys, open_index
from api.settings import Settings
from biometrics.index import VectorIndex
from biometrics.packs import load_pack
from governance import wiring
from governance.core.db import make_engine, make_session_factory
from governance.core.work import Units
from governance.gallery.blobs import FileBlobStore
from governance.gallery.opt_outs import block_site
from governance.gallery.photos import FaceEngines
from ledger.entry import Actor


class _HangingIndex:
    """The real index, whose first delete never comes: the process is killed in it."""

    def __init__(self, index: VectorIndex) -> None:
        self._index = index

    def delete(self, _face_ids: Sequence[str]) -> None:
        print("committed", flush=True)
        time.sleep(600)
        raise SystemExit("not killed")

    def __getattr__(self, name: str) -> object:
        return getattr(self._index, name)


def block(settings: Settings, site: str) -> None:
    engine = make_engine(settings.database_url)
    keys = loaded_signing_keys(settings)
    units = Units(make_session_factory(engine), keys, datetime.now(UTC), wiring.hooks())

    def engines() -> FaceEngines:
        built = build_engines(
            settings, model_pack=load_pack(settings.models_dir / settings.model_pack)
        )
        return replace(built, index=_HangingIndex(built.index))  # type: ignore[arg-type]

    actor = Actor(kind="operator", id="crash-test", agency=None)
    block_site(
        units, engines, site=site, reason="letter", reference="L-9", actor=actor, batch_size=1
    )


def left(settings: Settings) -> None:
    photos = json.load(sys.stdin)
    blobs = FileBlobStore(settings.photos_dir)
    pack = load_pack(settings.models_dir / settings.model_pack)
    index = open_index(settings, pack)
    index.ensure_collection(pack.dimension)
    vectors = [
        face_id
        for photo in photos
        for face_id, embedding in photo["faces"].items()
        for hit in index.search(np.frombuffer(bytes.fromhex(embedding), dtype=np.float32), 5)
        if hit.face_id == face_id
    ]
    index.close()
    files = [d for photo in photos for d in photo["files"] if blobs.exists(d)]
    print(json.dumps({"files": files, "vectors": vectors}))


if __name__ == "__main__":
    if sys.argv[1] == "block":
        block(Settings.from_env(), sys.argv[2])
    else:
        left(Settings.from_env())
