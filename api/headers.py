"""Headers every response carries: caching that keeps personal data out of shared caches, and
the browser protections (nosniff, no framing, a Content-Security-Policy).

An authenticated answer is never ``public``: it gets ``no-store`` unless its view chose a
cache policy, which is then made ``private`` and varies on ``Authorization``. Only the views
that need no key (the ledger's checkpoint and keys) may be cached by anyone.
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Request, Response, g

__all__ = ["API_CSP", "DOCS_PATH", "secure_response"]

DOCS_PATH = "/docs"
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI, served from local files: its scripts and styles, the spec it fetches, and the
# inline start-up script of its page, allowed by hash (computed from the page served).
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def secure_response(request: Request, response: Response) -> Response:
    """Set the caching and browser-protection headers of ``response`` to ``request``."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path == DOCS_PATH and response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = _docs_csp(response.get_data())
    else:
        response.headers.setdefault("Content-Security-Policy", API_CSP)
    if g.get("principal") is not None or "Authorization" in request.headers:
        response.headers["Cache-Control"] = _private(response.headers.get("Cache-Control", ""))
        response.vary.add("Authorization")
    else:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _private(policy: str) -> str:
    """``policy`` for one caller's eyes: ``public`` becomes ``private``; none is ``no-store``."""
    directives = [d.strip() for d in policy.split(",") if d.strip()]
    directives = [d for d in directives if d.lower() != "public"]
    if not directives:
        return "no-store"
    if not any(d.lower() in ("private", "no-store") for d in directives):
        directives.insert(0, "private")
    return ", ".join(directives)


def _docs_csp(page: bytes) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return _DOCS_CSP.format(hashes=hashes)
