"""The ledger over HTTP: public checkpoint and keys, guarded entries and proofs, caching, bad
ranges, and ``HttpFetcher`` reading exactly these endpoints."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.resources import ledger as resource
from governance.oversight import reports
from ledger.bundle import BundleError, HttpFetcher, Transport
from ledger.checkpoint import parse_checkpoint, split_note
from ledger.hashing import leaf_hash
from ledger.storage import tree_size
from ledger.verify import verify_consistency, verify_inclusion
from ledger.witness import verify_increment
from tests.api.helpers import Agent, make_admin, make_staff, problem, runtime_of

BASE = "/v1/ledger"


def flask_transport(client: FlaskClient) -> Transport:
    """An ``HttpFetcher`` transport over the Flask test client (no sockets)."""

    def get(url: str, headers: Mapping[str, str]) -> bytes:
        parts = urllib.parse.urlsplit(url)
        response = client.get(
            parts.path + (f"?{parts.query}" if parts.query else ""), headers=dict(headers)
        )
        if response.status_code != 200:
            raise BundleError(f"GET {url} answered {response.status_code}")
        return response.get_data()

    return get


@pytest.fixture(scope="module")
def oversight_agent(app: Flask) -> Agent:
    client = app.test_client()
    return make_staff(client, make_admin(app), "oversight")


def size_of(app: Flask) -> int:
    with runtime_of(app).sessions() as session:
        return tree_size(session)


def test_checkpoint_and_keys_are_public(
    client: FlaskClient, app: Flask, oversight_agent: Agent
) -> None:
    response = client.get(f"{BASE}/checkpoint")
    assert response.status_code == 200
    assert response.content_type == "text/plain; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    checkpoint = parse_checkpoint(split_note(response.get_data(as_text=True)).text)
    assert checkpoint.origin == runtime_of(app).settings.ledger_origin
    keys = client.get(f"{BASE}/keys").get_json()
    assert keys[0]["since_seq"] == 0
    assert keys[-1]["key"] == runtime_of(app).signer.verifier_key
    assert keys[-1]["key_id"] == runtime_of(app).signer.key_id
    text = client.get(f"{BASE}/keys", headers={"Accept": "text/plain"})
    assert text.content_type.startswith("text/plain")
    assert text.get_data(as_text=True) == "".join(k["key"] + "\n" for k in keys)
    assert client.get(f"{BASE}/keys?format=text").get_data(as_text=True) == text.get_data(True)


def test_entries_are_exact_bytes_and_immutable(
    client: FlaskClient, app: Flask, oversight_agent: Agent
) -> None:
    headers = oversight_agent.headers
    response = client.get(f"{BASE}/entries?start=1&end=4", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/jsonl"
    with runtime_of(app).sessions() as session:
        from ledger.storage import entry_bytes

        expected = entry_bytes(session, 1, 4)
    assert response.get_data() == b"".join(e + b"\n" for e in expected)
    assert response.headers["Cache-Control"] == resource.IMMUTABLE
    etag = response.headers["ETag"]
    again = client.get(f"{BASE}/entries?start=1&end=4", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    one = client.get(f"{BASE}/entries/2", headers=headers)
    assert one.get_data() == expected[1] and one.headers["Cache-Control"] == resource.IMMUTABLE

    size = size_of(app)
    tail = client.get(f"{BASE}/entries?start={size - 1}&end={size + 50}", headers=headers)
    assert len(tail.get_data().split(b"\n")) == 2  # one entry, then the final newline
    assert tail.headers["Cache-Control"] == "no-store"  # the tail will grow
    assert tail.headers["X-Tree-Size"] == str(size)
    assert client.get(f"{BASE}/entries?start={size}", headers=headers).get_data() == b""


def test_pages_link_to_the_next(
    client: FlaskClient, oversight_agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "MAX_PAGE", 2)
    response = client.get(f"{BASE}/entries?start=0&end=5", headers=oversight_agent.headers)
    assert len(response.get_data().split(b"\n")) == 3
    assert response.headers["Link"].endswith('/v1/ledger/entries?start=2&end=5>; rel="next"')
    assert "immutable" not in response.headers["Cache-Control"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("entries?start=-1", 422),
        ("entries?start=5&end=2", 422),
        ("entries?start=999999999", 404),
        ("entries/999999999", 404),
        ("checkpoints/999999999", 404),
        ("proofs/inclusion?seq=3&size=3", 422),
        ("proofs/inclusion?seq=0&size=999999999", 404),
        ("proofs/inclusion?seq=0", 422),
        ("proofs/consistency?from=4&to=2", 422),
        ("proofs/consistency?from=1&to=999999999", 404),
    ],
)
def test_bad_ranges_are_problems(
    client: FlaskClient, oversight_agent: Agent, query: str, status: int
) -> None:
    problem(client.get(f"{BASE}/{query}", headers=oversight_agent.headers), status)


def test_proofs_verify_against_the_checkpoints(
    client: FlaskClient, app: Flask, oversight_agent: Agent
) -> None:
    headers = oversight_agent.headers
    size = size_of(app)
    note = client.get(f"{BASE}/checkpoints/{size}", headers=headers)
    assert note.headers["Cache-Control"] == resource.IMMUTABLE
    root = parse_checkpoint(split_note(note.get_data(as_text=True)).text).root
    small = parse_checkpoint(
        split_note(client.get(f"{BASE}/checkpoints/3", headers=headers).get_data(True)).text
    )
    inclusion = client.get(f"{BASE}/proofs/inclusion?seq=2&size={size}", headers=headers)
    body = inclusion.get_json()
    entry = client.get(f"{BASE}/entries/2", headers=headers).get_data()
    assert body["leaf_hash"] == leaf_hash(entry).hex() and body["root"] == root.hex()
    verify_inclusion(2, size, leaf_hash(entry), [bytes.fromhex(h) for h in body["proof"]], root)
    consistency = client.get(f"{BASE}/proofs/consistency?from=3&to={size}", headers=headers)
    proof = consistency.get_json()
    assert proof["from"] == 3 and proof["to"] == size
    assert consistency.headers["Cache-Control"] == resource.IMMUTABLE
    verify_consistency(3, size, small.root, root, [bytes.fromhex(h) for h in proof["proof"]])


def test_http_fetcher_reads_these_endpoints(
    client: FlaskClient, app: Flask, oversight_agent: Agent
) -> None:
    pinned = [client.get(f"{BASE}/keys").get_json()[0]["key"]]
    fetcher = HttpFetcher(
        "http://localhost", token=oversight_agent.token, page=7, transport=flask_transport(client)
    )
    report, state = verify_increment(fetcher, pinned=pinned, state=None)
    assert report.size >= size_of(app) - 1 and state.incremental
    anonymous = HttpFetcher("http://localhost", transport=flask_transport(client))
    assert anonymous.checkpoint() and anonymous.verifier_keys()
    with pytest.raises(BundleError, match="401"):
        anonymous.entries(0, 1)
