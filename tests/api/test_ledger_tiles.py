"""The ledger as C2SP tlog-tiles: public hash tiles, entry bundles under ``ledger:read``, and a
verifier that reads nothing else and computes every proof itself.

A log of its own with 600 entries (two full level-0 tiles and a partial one), on the suite's
database: SQLite, or PostgreSQL with FACEWARDEN_TEST_DATABASE_URL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.resources import ledger as resource
from governance.core.db import unit_of_work
from governance.core.recording import record
from ledger import bundle, cli, storage
from ledger.bundle import BundleError, Transport
from ledger.checks import VerificationError
from ledger.entry import Actor, EntryType
from ledger.hashing import leaf_hash
from ledger.receipt import verify_receipt_live
from ledger.tiles import TileError, TileFetcher, check_tiles, parse_bundle, parse_tile_path
from ledger.witness import verify_increment
from tests.api.helpers import Agent, make_admin, make_staff, problem, runtime_of
from tests.api.test_ledger_api import flask_transport
from tests.api.test_ledger_cut import _receipt
from tests.conftest import create_test_database, drop_test_database
from tests.outages.test_database import app_on

ENTRIES = 600


@dataclass
class Tiled:
    app: Flask
    client: FlaskClient
    oversight: Agent
    key: str


def append(app: Flask, count: int) -> None:
    """Write ``count`` entries through the recording path, one unit of work each."""
    rt = runtime_of(app)
    actor = Actor(kind="system", id="tiles-test")
    for i in range(count):
        with unit_of_work(rt.sessions) as session:
            record(
                session,
                keys=rt.keys,
                entry_type=EntryType.CLAIM_REISSUE,
                actor=actor,
                payload={"note": f"tiles test {i}"},
                now=rt.now(),
            )


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tiled]:
    home = tmp_path_factory.mktemp("tiles")
    server = os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or None
    url, admin = create_test_database(server, home)
    app = app_on(home / "var", url)
    client = app.test_client()
    oversight = make_staff(client, make_admin(app), "oversight")
    append(app, ENTRIES - _size(app))
    try:
        yield Tiled(app, client, oversight, runtime_of(app).signer.verifier_key)
    finally:
        runtime_of(app).engine.dispose()
        drop_test_database(admin, url)


def _size(app: Flask) -> int:
    with runtime_of(app).sessions() as session:
        return storage.tree_size(session)


def _fetcher(t: Tiled, transport: Transport | None = None) -> TileFetcher:
    return TileFetcher(
        "http://localhost",
        token=t.oversight.token,
        transport=transport or flask_transport(t.client),
    )


def test_hash_tiles_are_public_and_full_ones_immutable(tiled: Tiled) -> None:
    size = _size(tiled.app)
    full = tiled.client.get("/v1/ledger/tile/0/001")
    assert full.status_code == 200 and full.mimetype == "application/octet-stream"
    assert full.headers["Cache-Control"] == resource.PUBLIC_IMMUTABLE
    with runtime_of(tiled.app).sessions() as session:
        assert full.get_data() == storage.hash_tile(session, parse_tile_path("tile/0/001"))
    again = tiled.client.get(
        "/v1/ledger/tile/0/001", headers={"If-None-Match": full.headers["ETag"]}
    )
    assert again.status_code == 304
    width = size - 512
    partial = tiled.client.get(f"/v1/ledger/tile/0/002.p/{width}")
    assert partial.status_code == 200 and len(partial.get_data()) == 32 * width
    assert partial.headers["Cache-Control"] == "no-store"
    # A narrower partial tile is an earlier tree size's: every size was signed, so it is served.
    assert tiled.client.get("/v1/ledger/tile/0/002.p/1").get_data() == partial.get_data()[:32]
    assert len(tiled.client.get("/v1/ledger/tile/1/000.p/2").get_data()) == 64


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/003",  # not grown yet
        "tile/0/002",  # still partial
        "tile/0/002.p/255",  # wider than the log
        "tile/1/000",
        "tile/0/2",  # not 3-digit groups
        "tile/0/x000/001",  # not canonical
        "tile/0/001.p/256",
        "tile/64/000",
        "tile/0/000.p/0",
        "tile/nonsense",
        "tile/entries/x001/x002/003",  # an entry bundle the log has not grown
        "tile/tile/0/000",  # one tile has one path
        "tile/0/" + "x999/" * 1500 + "999",  # a huge index: a 404, not a 500
    ],
)
def test_a_tile_that_is_not_there_is_a_404_problem(tiled: Tiled, path: str) -> None:
    body = problem(tiled.client.get(f"/v1/ledger/{path}", headers=tiled.oversight.headers), 404)
    assert body["type"] == "/problems/tile-not-found"


def test_entry_bundles_need_ledger_read_and_hold_the_exact_entries(tiled: Tiled) -> None:
    assert tiled.client.get("/v1/ledger/tile/entries/000").status_code == 401
    response = tiled.client.get("/v1/ledger/tile/entries/000", headers=tiled.oversight.headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == resource.IMMUTABLE  # private: a key read it
    with runtime_of(tiled.app).sessions() as session:
        assert parse_bundle(response.get_data(), 256) == storage.entry_bytes(session, 0, 256)
    size = _size(tiled.app)
    partial = tiled.client.get(
        f"/v1/ledger/tile/entries/002.p/{size - 512}", headers=tiled.oversight.headers
    )
    assert partial.headers["Cache-Control"] == "no-store"
    assert len(parse_bundle(partial.get_data(), size - 512)) == size - 512


def test_a_verifier_reads_the_whole_log_from_tiles_and_rebuilds_every_tile(tiled: Tiled) -> None:
    fetcher = _fetcher(tiled)
    report, state = verify_increment(fetcher, pinned=[tiled.key], state=None)
    size = _size(tiled.app)
    assert report.size == size == ENTRIES
    lines = fetcher.entries(0, size)
    # 000 and 001 full, 002.p/88, and level 1's 000.p/2
    assert check_tiles(fetcher.tile, [leaf_hash(line) for line in lines]) == 4
    # Incrementally: the new entries from their bundles, the consistency proof from tiles.
    append(tiled.app, 3)
    again = _fetcher(tiled)
    report, _ = verify_increment(again, pinned=[tiled.key], state=state)
    assert (report.previous_size, report.new_entries) == (size, 3)
    assert again.fetched <= 6  # the right edge, a bundle and a few tiles: not the whole log


def test_a_forged_tile_is_caught(tiled: Tiled) -> None:
    honest = flask_transport(tiled.client)

    def forging(url: str, headers: dict[str, str]) -> bytes:
        body = honest(url, headers)
        if url.endswith("/tile/0/000"):
            return body[:40] + bytes([body[40] ^ 1]) + body[41:]
        return body

    fetcher = _fetcher(tiled, forging)
    fetcher.checkpoint()
    size = _size(tiled.app)
    with pytest.raises(TileError, match="does not hash to its slot"):
        fetcher.inclusion(3, size)
    lines = _fetcher(tiled).entries(0, size)
    with pytest.raises(TileError, match="tile/0/000 differs"):
        check_tiles(fetcher.tile, [leaf_hash(line) for line in lines])


def test_a_receipt_is_checked_against_the_live_log_from_tiles(tiled: Tiled) -> None:
    receipt = _receipt(tiled.app, 300)
    append(tiled.app, 2)
    live = verify_receipt_live(receipt, [tiled.key], _fetcher(tiled))
    assert live.size == _size(tiled.app)

    class Lying(TileFetcher):
        """Serves the right tiles, but an inclusion proof of the wrong path."""

        def inclusion(self, seq: int, size: int) -> list[bytes]:
            return [b"\0" * 32 for _ in super().inclusion(seq, size)]

    liar = Lying("http://localhost", transport=flask_transport(tiled.client))
    with pytest.raises(VerificationError, match="does not include the receipt's entry") as err:
        verify_receipt_live(receipt, [tiled.key], liar)
    assert err.value.step == 5


def test_the_verifier_cli_reads_tiles_with_full(
    tiled: Tiled,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(bundle, "urllib_transport", lambda **_: flask_transport(tiled.client))
    token = tmp_path / "token"
    token.write_text(tiled.oversight.token)
    state = tmp_path / "state.json"
    base = ["live", "http://localhost", "--key", tiled.key, "--token-file", str(token)]
    assert cli.main([*base, "--tiles", "--state", str(state)]) == 0
    append(tiled.app, 1)
    assert cli.main([*base, "--tiles", "--full", "--state", str(state), "--json"]) == 0
    out = capsys.readouterr().out
    body = json.loads(out[out.index("{") :])
    assert body["size"] == _size(tiled.app) and body["tiles_rebuilt"] == 4
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps({"receipt": _receipt(tiled.app, 10)}))
    assert (
        cli.main(
            [
                "receipt",
                str(receipt),
                "--key",
                tiled.key,
                "--live",
                "http://localhost",
                "--tiles",
                "--token-file",
                str(token),
            ]
        )
        == 0
    )
    assert "still in the live log" in capsys.readouterr().out


def test_an_anonymous_tile_reader_cannot_read_entries(tiled: Tiled) -> None:
    anonymous = TileFetcher("http://localhost", transport=flask_transport(tiled.client))
    anonymous.checkpoint()
    assert anonymous.inclusion(5, _size(tiled.app))  # hash tiles are public
    with pytest.raises(BundleError, match="401"):
        anonymous.entries(0, 1)
