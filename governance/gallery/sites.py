"""Where gallery photos come from: source URLs, their sites, and the sites' opt-out policies.

A site is the registrable domain of a URL's host under the ICANN section of the Public Suffix
List (``www.facebook.com`` -> ``facebook.com``), so a platform's opt-out covers all its hosts.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.core.errors import InvalidInput, PolicyViolation
from governance.core.orm import table_of
from governance.gallery.models import PolicyStatus, SourcePolicy

__all__ = [
    "SourceBlocked",
    "blocked_sites",
    "check_site_allowed",
    "normalize_site",
    "site_of_url",
    "upsert_policy",
]

MAX_URL_LENGTH = 2048


class SourceBlocked(PolicyViolation):
    """The source site has opted out of the gallery."""

    code = "source-blocked"


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList(only_icann=True)


def normalize_site(value: str) -> str:
    """The site a host name, IP address or URL belongs to.

    Raises InvalidInput when ``value`` holds no usable host.
    """
    text = value.strip()
    try:
        host = urlsplit(text if "://" in text else f"//{text}").hostname
    except ValueError:  # an unbalanced "[" reads as a broken IPv6 literal
        host = None
    if not host:
        raise InvalidInput(
            "not a host name", fields={"site": ["Give a domain such as example.org."]}
        )
    return _site_of_host(host)


def _site_of_host(host: str) -> str:
    host = host.rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidInput(
            "not a valid host name", fields={"site": [f"{host!r} is not a valid host name."]}
        ) from exc
    labels = ascii_host.split(".")
    if len(labels) < 2 or not all(labels) or len(ascii_host) > 253:
        raise InvalidInput(
            "not a public host name",
            fields={"site": [f"{host!r} is not a public domain name."]},
        )
    site = _suffixes().privatesuffix(ascii_host)
    if site is None:
        raise InvalidInput(
            "a public suffix is not a site",
            fields={"site": [f"{host!r} is a public suffix, not a registrable domain."]},
        )
    return str(site)


def site_of_url(url: str) -> str:
    """The site of an http(s) source URL.

    Raises InvalidInput for other schemes, credentials in the URL, or a missing host.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(
            "source URL too long",
            fields={"source_url": [f"At most {MAX_URL_LENGTH} characters."]},
        )
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # an unbalanced "[" reads as a broken IPv6 literal
        raise InvalidInput(
            "malformed URL", fields={"source_url": ["Must be a well-formed http(s) URL."]}
        ) from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(
            "only http(s) sources", fields={"source_url": ["Must be an http:// or https:// URL."]}
        )
    if parts.username or parts.password:
        raise InvalidInput(
            "credentials in URL",
            fields={"source_url": ["Must not contain a user name or password."]},
        )
    if not parts.hostname:
        raise InvalidInput("no host", fields={"source_url": ["Must name a host."]})
    try:
        return _site_of_host(parts.hostname)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, fields={"source_url": exc.fields["site"]}) from exc


_POLICIES = table_of(SourcePolicy)
# Built once: every search reads it twice.
_BLOCKED = select(_POLICIES.c.site).where(_POLICIES.c.status == PolicyStatus.BLOCKED)


def blocked_sites(session: Session) -> frozenset[str]:
    """Every site whose policy is ``blocked``."""
    return frozenset(session.scalars(_BLOCKED))


def check_site_allowed(session: Session, site: str) -> None:
    """Raises SourceBlocked when ``site`` has opted out."""
    policy = session.get(SourcePolicy, site)
    if policy is not None and policy.status == PolicyStatus.BLOCKED:
        raise SourceBlocked(
            f"{site} has opted out of the gallery ({policy.reference}); photos from it are refused"
        )


def upsert_policy(
    session: Session,
    *,
    site: str,
    status: str,
    reason: str,
    reference: str,
    updated_by: str,
    now: datetime,
) -> SourcePolicy:
    """Create or replace the policy row of ``site`` (the caller records it in the ledger)."""
    policy = session.get(SourcePolicy, site, with_for_update=True)
    if policy is None:
        policy = SourcePolicy(site=site, faces_purged=0)
        session.add(policy)
    policy.status = status
    policy.reason = reason
    policy.reference = reference
    policy.updated_at = now
    policy.updated_by = updated_by
    session.flush()
    return policy
