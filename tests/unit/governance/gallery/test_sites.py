"""Source URLs reduce to the registrable domain that a platform's opt-out covers."""

from __future__ import annotations

import pytest

from governance.core.errors import InvalidInput
from governance.gallery.sites import normalize_site, site_of_url


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.facebook.com/photo.php?fbid=1", "facebook.com"),
        ("http://m.facebook.com/x", "facebook.com"),
        ("https://news.bbc.co.uk/a/b.jpg", "bbc.co.uk"),
        ("https://WWW.Example.ORG./x", "example.org"),
        ("https://user-content.github.io/a.png", "github.io"),
        ("https://bücher.example.de/x", "example.de"),
        ("https://xn--bcher-kva.de/", "xn--bcher-kva.de"),
        ("https://[2001:db8::1]/a.jpg", "2001:db8::1"),
        ("http://192.0.2.7:8080/a.jpg", "192.0.2.7"),
    ],
)
def test_site_of_url(url: str, site: str) -> None:
    assert site_of_url(url) == site


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/a.jpg", "http"),
        ("javascript:alert(1)", "http"),
        ("file:///etc/passwd", "http"),
        ("https://user:pw@example.org/a.jpg", "user name or password"),
        ("https:///nohost", "host"),
        ("https://co.uk/a.jpg", "public suffix"),
        ("https://localhost/a.jpg", "public domain"),
        ("https://example.org/" + "a" * 2100, "2048"),
    ],
)
def test_unusable_source_urls_are_refused_per_field(url: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        site_of_url(url)
    assert "source_url" in caught.value.fields
    assert message in " ".join(caught.value.fields["source_url"])


@pytest.mark.parametrize(
    ("value", "site"),
    [("facebook.com", "facebook.com"), ("https://www.facebook.com/x", "facebook.com")],
)
def test_normalize_site_accepts_domains_and_urls(value: str, site: str) -> None:
    assert normalize_site(value) == site


@pytest.mark.parametrize("value", ["1G\x0b\x0cTZOfj=\r6\x03h[!\x1a", "[::1", "http://[bad/"])
def test_a_broken_ipv6_literal_is_invalid_input_not_a_crash(value: str) -> None:
    # Found by schemathesis: urlsplit raises ValueError on an unbalanced "[" (a 500).
    with pytest.raises(InvalidInput):
        normalize_site(value)
    with pytest.raises(InvalidInput, match="malformed URL"):
        site_of_url("https://" + value.removeprefix("http://"))
