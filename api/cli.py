"""The ``facewarden`` command: set up, serve and administer the service.

Exit codes: 0 success, 1 a failure the message explains, 2 a usage error (click's).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from api.settings import ConfigError, Settings

__all__ = ["cli", "main"]


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _explained() -> Iterator[None]:
    """Turn expected failures into one clear line and exit code 1, never a traceback."""
    try:
        yield
    except click.ClickException:
        raise
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".strip()) from exc
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in {"governance", "ledger", "biometrics"}:
            raise click.ClickException(str(exc)) from exc
        if type(exc).__module__.startswith("sqlalchemy"):
            reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise click.ClickException(
                f"database error ({reason}): check FACEWARDEN_DATABASE_URL and run "
                "`facewarden db upgrade`"
            ) from exc
        raise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="facewarden")
def cli() -> None:
    """FaceWarden: accountable face search with a signed audit ledger.

    Settings come from FACEWARDEN_* environment variables (see the README).
    """


@cli.command()
@click.option("--no-tls", is_flag=True, help="Do not create a self-signed TLS certificate.")
def init(no_tls: bool) -> None:
    """Create the data directory, migrate the database, create the ledger key and a TLS cert."""
    from api.bootstrap import initialize

    settings = _settings()
    with _explained():
        report = initialize(settings, tls=not no_tls, progress=click.echo)
    if report.certificate_fingerprint:
        click.echo(f"TLS certificate SHA-256 fingerprint: {report.certificate_fingerprint}")
    click.echo(f"ready: data directory {report.data_dir}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8443, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256))
@click.option("--cert", type=click.Path(dir_okay=False, path_type=Path), help="TLS certificate.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="TLS private key.")
@click.option(
    "--http",
    "plain_http",
    is_flag=True,
    help="Serve plain HTTP behind a TLS-terminating proxy (trusts one X-Forwarded-* hop).",
)
def serve(
    host: str,
    port: int,
    workers: int,
    threads: int,
    cert: Path | None,
    key: Path | None,
    plain_http: bool,
) -> None:
    """Serve the API with gunicorn (HTTPS on 127.0.0.1:8443 by default)."""
    from api.bootstrap import certificate_fingerprint
    from api.server import run_server

    settings = _settings()
    if plain_http and (cert or key):
        raise click.UsageError("--http and --cert/--key exclude each other")
    if bool(cert) != bool(key):
        raise click.UsageError("give both --cert and --key")
    cert_path = cert or settings.tls_cert_path
    key_path = key or settings.tls_key_path
    with _explained():
        if not plain_http:
            for path, var in ((cert_path, "TLS_CERT_PATH"), (key_path, "TLS_KEY_PATH")):
                if not os.access(path, os.R_OK):
                    raise ConfigError(
                        f"cannot read {path}: run `facewarden init`, pass --cert/--key, or set "
                        f"FACEWARDEN_{var}"
                    )
            click.echo(f"TLS certificate SHA-256 fingerprint: {certificate_fingerprint(cert_path)}")
        scheme = "http" if plain_http else "https"
        click.echo(f"serving on {scheme}://{host}:{port} ({workers} worker(s) x {threads} threads)")
        run_server(
            settings,
            bind=f"{host}:{port}",
            workers=workers,
            threads=threads,
            tls=None if plain_http else (cert_path, key_path),
        )


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database to the newest (or the given) revision."""
    from api.bootstrap import ensure_sqlite_directory
    from governance.db import make_engine
    from governance.migrate import current_revision, upgrade

    settings = _settings()
    with _explained():
        ensure_sqlite_directory(settings.database_url)
        engine = make_engine(settings.database_url)
        upgrade(engine, revision)
        click.echo(f"database at revision {current_revision(engine)}")
        engine.dispose()


@cli.group()
def openapi() -> None:
    """The OpenAPI document."""


@openapi.command("write")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
def openapi_write(path: Path | None) -> None:
    """Write the OpenAPI document generated from the app (default: openapi/openapi.json)."""
    from api.spec import generate_spec

    target = path or Path("openapi") / "openapi.json"
    with _explained():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(generate_spec(), indent=2, sort_keys=True) + "\n")
    click.echo(f"wrote {target}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="facewarden")


if __name__ == "__main__":  # pragma: no cover
    main()
