"""The console: server-rendered pages for people, over the same governance flows as the API.

``install_console(app)`` mounts the ``console`` blueprint group under ``/console``: its pages
(``pages``, ``signing``), its templates and its static files, which are served from this
package (no CDN). Errors on its pages are HTML pages with the API's status for the same error
(``api.errors.answer_for``), never problem JSON and never a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from api.console import pages, signing
from api.console.security import console_principal, csrf_token, install_security
from api.errors import answer_for, problem_response
from biometrics.errors import DomainError
from governance.identity.permissions import Permission, scope_for

__all__ = ["NAVIGATION", "NavItem", "install_console", "navigation"]

_HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class NavItem:
    """A page in the navigation, shown to roles that hold ``permission`` (None: everyone
    signed in)."""

    endpoint: str
    label: str
    permission: Permission | None = None


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("console.pages.home", "Home"),
    NavItem("console.signing.passkeys_page", "Passkeys"),
)


def navigation() -> list[NavItem]:
    """The pages the signed-in person's role may use (a template global)."""
    principal = console_principal()
    if principal is None:
        return []
    return [
        item
        for item in NAVIGATION
        if item.permission is None or scope_for(principal.role, item.permission) is not None
    ]


def install_console(app: Flask) -> None:
    """Mount the console under ``/console``."""
    console = Blueprint(
        "console",
        __name__,
        url_prefix="/console",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    install_security(console)
    console.register_blueprint(pages.bp)
    console.register_blueprint(signing.bp)
    console.register_error_handler(DomainError, _domain_error)
    console.register_error_handler(HTTPException, _http_error)
    console.app_context_processor(
        lambda: {"csrf_token": csrf_token, "navigation": navigation, "me": console_principal}
    )
    app.register_blueprint(console)


def _domain_error(error: DomainError) -> Response | tuple[str, int]:
    answer = answer_for(error)
    return _error_page(answer.status, answer.title, error.detail)


def _http_error(error: HTTPException) -> Response | tuple[str, int]:
    status = error.code or 500
    return _error_page(status, error.name, error.description or "")


def _error_page(status: int, title: str, detail: str) -> Response | tuple[str, int]:
    if request.accept_mimetypes.best == "application/json":  # the pages' script asked
        return problem_response(status, detail=detail, title=title)
    return render_template("console/error.html", status=status, title=title, detail=detail), status
