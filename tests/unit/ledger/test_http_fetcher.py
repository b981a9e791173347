"""``HttpFetcher`` over real loopback HTTP servers: the API key never follows a redirect to
another origin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ledger.bundle import BundleError, HttpFetcher, urllib_transport

TOKEN = "fw_abcdefghijklmnop_secretsecretsecretsecretsecretsecretsecret"


class _Server:
    """A loopback HTTP server that answers each path from ``routes`` and logs what it got."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.seen.append((self.path, self.headers.get("Authorization")))
                status, headers, body = owner.routes.get(self.path.split("?")[0], (404, {}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def servers() -> Iterator[tuple[_Server, _Server]]:
    first, second = _Server(), _Server()
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_is_refused_and_gets_no_key(
    servers: tuple[_Server, _Server], code: int
) -> None:
    server, elsewhere = servers
    server.routes["/v1/ledger/keys"] = (code, {"Location": f"{elsewhere.url}/steal"}, b"")
    elsewhere.routes["/steal"] = (200, {}, b"k\n")
    fetcher = HttpFetcher(server.url, token=TOKEN)
    with pytest.raises(BundleError, match=r"redirected .* to another origin.*refused"):
        fetcher.verifier_keys()
    assert server.seen == [("/v1/ledger/keys", f"Bearer {TOKEN}")]
    assert elsewhere.seen == []


def test_another_port_of_the_same_host_is_another_origin(
    servers: tuple[_Server, _Server],
) -> None:
    server, elsewhere = servers
    # Same scheme and host (127.0.0.1), other port: a different origin all the same.
    server.routes["/v1/ledger/entries"] = (302, {"Location": f"{elsewhere.url}/x"}, b"")
    with pytest.raises(BundleError, match="another origin"):
        HttpFetcher(server.url, token=TOKEN).entries(0, 1)
    assert elsewhere.seen == []


def test_a_redirect_within_the_origin_is_followed_with_the_key(
    servers: tuple[_Server, _Server],
) -> None:
    server, _ = servers
    server.routes["/v1/ledger/keys"] = (307, {"Location": "/v2/ledger/keys"}, b"")
    server.routes["/v2/ledger/keys"] = (200, {}, b"log+1+AAAA\n")
    assert HttpFetcher(server.url, token=TOKEN).verifier_keys() == ["log+1+AAAA"]
    assert server.seen[-1] == ("/v2/ledger/keys", f"Bearer {TOKEN}")


def test_an_answer_over_the_limit_is_refused_not_read_to_its_end(
    servers: tuple[_Server, _Server],
) -> None:
    server, _ = servers
    server.routes["/v1/ledger/keys"] = (200, {}, b"k" * 5000)
    get = urllib_transport(max_bytes=4096)
    with pytest.raises(BundleError, match="more than 4096 bytes"):
        HttpFetcher(server.url, transport=get).verifier_keys()
    assert HttpFetcher(server.url, transport=urllib_transport(max_bytes=5000)).verifier_keys()
