"""Run the app under gunicorn, with TLS or behind a proxy (``--http`` with ProxyFix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from werkzeug.middleware.proxy_fix import ProxyFix

from api.settings import Settings

__all__ = ["build_wsgi", "run_server"]


def build_wsgi(settings: Settings, *, behind_proxy: bool) -> Flask:
    """The app, wrapped in ProxyFix when a TLS-terminating proxy sits in front."""
    from api.app import create_app

    app = create_app(settings)
    if behind_proxy:
        # Trust exactly one hop: the proxy's X-Forwarded-For/-Proto/-Host.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    return app


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any], behind_proxy: bool) -> None:
        self._settings = settings
        self._options = options
        self._behind_proxy = behind_proxy
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return build_wsgi(self._settings, behind_proxy=self._behind_proxy)


def run_server(
    settings: Settings,
    *,
    bind: str,
    workers: int,
    threads: int,
    tls: tuple[Path, Path] | None,
) -> None:
    """Block serving requests until gunicorn is stopped."""
    options: dict[str, Any] = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 120,
        "graceful_timeout": 20,
        "accesslog": None,  # the app logs each request as JSON, without query strings
        "errorlog": "-",
        "forwarded_allow_ips": "*" if tls is None else "127.0.0.1",
    }
    if tls is not None:
        options["certfile"] = str(tls[0])
        options["keyfile"] = str(tls[1])
    _Gunicorn(settings, options, behind_proxy=tls is None).run()
