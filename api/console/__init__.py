"""The console: server-rendered pages for people, over the same governance flows as the API.

``install_console(app)`` mounts the ``console`` blueprint group under ``/console``: every
module of this package with a ``bp`` blueprint (one per task: ``pages``, ``signing``, ...),
listing its pages in ``NAVIGATION``, with the templates and static files served from this
package (no CDN). Errors on its pages are HTML pages with the API's status for the same error
(``api.errors.answer_for``), never problem JSON and never a stack trace.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from types import ModuleType

from flask import Blueprint, Flask, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException, NotFound

from api.console.nav import NavItem, visible
from api.console.security import anyone, console_principal, csrf_token, install_security
from api.errors import answer_for, problem_response
from biometrics.errors import DomainError

__all__ = ["NavItem", "install_console", "navigation", "page_modules"]

log = logging.getLogger("facewarden.api")


@functools.cache
def page_modules() -> tuple[ModuleType, ...]:
    """The modules of the console's pages: each has a ``bp`` and may list ``NAVIGATION``."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "bp", None), Blueprint):
            found.append(module)
    return tuple(found)


def navigation() -> list[NavItem]:
    """The pages the signed-in person's role may use (a template global)."""
    return visible(tuple(item for m in page_modules() for item in getattr(m, "NAVIGATION", ())))


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
    for module in page_modules():
        console.register_blueprint(module.bp)
    console.register_error_handler(DomainError, _domain_error)
    console.register_error_handler(HTTPException, _http_error)
    console.register_error_handler(Exception, _unexpected)
    # A path under /console that no page has: matched here, so it gets the console's 404
    # page (an unmatched path belongs to no blueprint, whose error handlers would not run).
    console.add_url_rule("/<path:unknown>", "unknown", _unknown)
    console.app_context_processor(
        lambda: {"csrf_token": csrf_token, "navigation": navigation, "me": console_principal}
    )
    app.register_blueprint(console)
    # The service's address leads people to the console (integrations use /v1 and /docs).
    app.add_url_rule("/", "root", lambda: redirect(url_for("console.pages.home"), 302))


def _domain_error(error: DomainError) -> Response | tuple[str, int]:
    answer = answer_for(error)
    return _error_page(answer.status, answer.title, error.detail)


def _http_error(error: HTTPException) -> Response | tuple[str, int]:
    status = error.code or 500
    return _error_page(status, error.name, error.description or "")


@anyone
def _unknown(unknown: str) -> Response:
    raise NotFound(f"There is no page at /console/{unknown}.")


def _unexpected(error: Exception) -> Response | tuple[str, int]:
    log.exception("unhandled error", extra={"request_id": g.get("request_id")})
    return _error_page(
        500,
        "Something went wrong",
        "The service could not answer this request. Try again; if it happens again, tell the "
        f"service's operators this reference: {g.get('request_id')}.",
    )


def _error_page(status: int, title: str, detail: str) -> Response | tuple[str, int]:
    if request.accept_mimetypes.best == "application/json":  # the pages' script asked
        return problem_response(status, detail=detail, title=title)
    return render_template("console/error.html", status=status, title=title, detail=detail), status
