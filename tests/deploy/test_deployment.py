"""The one-machine production deployment of ``deploy/run`` (docs/deploy.md), started for real.

One deployment for the module: nginx (TLS) in front of ``serve --http --workers 2``, a private
PostgreSQL cluster with the service under a role that does not own the tables, a Milvus
standalone server with HNSW, and Redis holding the rate limits. Every request goes through
nginx over HTTPS, pinned to the deployment's certificate.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator

import psycopg
import pytest
import redis
import requests
from sqlalchemy.engine import make_url

from tests.api.helpers import registration_body
from tests.conftest import REPO
from tests.deploy.deployment import MISSING, Deployment, deployed
from tests.test_tour import run_tour, tour_photos

REGISTRATIONS_PER_HOUR = 10  # FACEWARDEN_REGISTRATION_RATE_LIMIT's default: the deployment's

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"the deployment needs {', '.join(MISSING)}"),
]


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    with deployed(workers=2) as made:
        started = made.started
        assert started.returncode == 0, f"deploy/run start:\n{started.stdout}\n{started.stderr}"
        yield made


def test_start_printed_the_url_the_certificate_and_how_to_stop(deployment: Deployment) -> None:
    status = deployment.run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    for part in ("postgres", "redis", "milvus", "serve", "nginx"):
        assert any(line.startswith(part) and " running (pid " in line for line in lines), part
    assert lines[-1] == f"ready: {deployment.url}/readyz"
    # The settings file and the passwords it holds are the owner's alone.
    for name in ("env", "owner.env", "deploy.conf"):
        assert (deployment.directory / name).stat().st_mode & 0o777 == 0o600, name


def test_docs_explain_every_setting_the_deployment_uses(deployment: Deployment) -> None:
    explained = (REPO / "docs" / "deploy.md").read_text()
    assert {name for name in deployment.settings if f"`{name}`" not in explained} == set()


def test_a_second_start_is_refused_while_it_runs(deployment: Deployment) -> None:
    again = deployment.run("start")
    assert again.returncode == 1
    assert "holds a running deployment" in again.stderr
    assert deployment.run("status").returncode == 0


def test_readyz_through_nginx_reports_every_part_ready(deployment: Deployment) -> None:
    response = requests.get(f"{deployment.url}/readyz", verify=deployment.cert, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {
        "database",
        "vector_index",
        "model_pack",
        "ledger_key",
        "ledger",
        "disk",
        "photo_store",
        "rate_limits",
    }
    assert all(check["ok"] for check in body["checks"].values()), body
    assert body["checks"]["database"]["detail"] == "postgresql"
    assert response.headers["Server"] == "nginx"
    settings = deployment.settings
    assert settings["FACEWARDEN_MILVUS_INDEX"] == "HNSW"
    assert settings["FACEWARDEN_MILVUS_URI"].startswith("http://127.0.0.1:")
    assert settings["FACEWARDEN_RATELIMIT_STORAGE_URI"].startswith("redis://")
    assert make_url(settings["FACEWARDEN_DATABASE_URL"]).username == "facewarden_app"


def test_the_tour_runs_against_the_deployment(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The README's governed flow: an admin, an agency's supervisors and investigator, a
    curator, a gallery, a legal basis, searches, reviews and the ledger checked offline."""
    gallery, probe = tour_photos(tmp_path_factory.mktemp("tour"))
    env = deployment.process_env | deployment.settings
    lines = run_tour(env, str(deployment.directory), gallery, probe)
    assert any(line.startswith("OK  facewarden.local/ledger") for line in lines), lines


def test_the_tour_s_photos_are_in_the_s3_bucket(deployment: Deployment) -> None:
    if "FACEWARDEN_PHOTO_STORE" not in deployment.settings:
        pytest.skip("this FaceWarden has no S3 photo store: the deployment keeps photos on disk")
    import boto3  # with the S3 photo store only

    settings = deployment.settings
    s3 = boto3.client(
        "s3",
        endpoint_url=settings["FACEWARDEN_S3_ENDPOINT_URL"],
        aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        region_name=settings["AWS_DEFAULT_REGION"],
    )
    bucket = settings["FACEWARDEN_PHOTO_STORE"].removeprefix("s3://")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) >= 1
    assert not any((deployment.directory / "data" / "photos").rglob("*.*"))


def _app(deployment: Deployment) -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(deployment.settings["FACEWARDEN_DATABASE_URL"]).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False))


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE ledger_entries SET type = 'x'", "permission denied for table ledger_entries"),
        ("DELETE FROM ledger_nodes", "permission denied for table ledger_nodes"),
        ("TRUNCATE ledger_checkpoints", "permission denied for table ledger_checkpoints"),
        ("UPDATE ledger_keys SET vkey = 'x'", "permission denied for table ledger_keys"),
        ("ALTER TABLE ledger_entries DISABLE TRIGGER USER", "must be owner of table ledger_"),
        ("DROP TABLE ledger_entries", "must be owner of table ledger_entries"),
        ("ALTER TABLE accounts ADD COLUMN x int", "must be owner of table accounts"),
        ("DROP TABLE accounts", "must be owner of table accounts"),
        ("TRUNCATE accounts", "permission denied for table accounts"),
        ("CREATE TABLE x (i int)", "permission denied for schema public"),
        ("SET session_replication_role = replica", 'permission denied to set parameter "session'),
        ("UPDATE alembic_version SET version_num = 'x'", "permission denied for table alembic"),
    ],
)
def test_the_application_role_cannot_rewrite_the_ledger_or_the_schema(
    deployment: Deployment, statement: str, refusal: str
) -> None:
    with _app(deployment) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        conn.execute(statement)
    assert refusal in str(refused.value)


def test_the_application_role_reads_and_appends(deployment: Deployment) -> None:
    with _app(deployment) as conn:
        size = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
        assert size is not None
        privileges = conn.execute(
            "SELECT has_table_privilege('ledger_entries', 'INSERT'), "
            "has_table_privilege('accounts', 'UPDATE'), "
            "has_table_privilege('alembic_version', 'SELECT')"
        ).fetchone()
        assert privileges == (True, True, True)
        conn.rollback()


def test_even_the_owner_meets_the_append_only_triggers(deployment: Deployment) -> None:
    url = make_url(deployment.owner_url).set(drivername="postgresql")
    assert url.username == "facewarden_owner"
    owner = psycopg.connect(url.render_as_string(hide_password=False))
    with owner as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        conn.execute("DELETE FROM ledger_entries")
    assert "ledger_entries is append-only: DELETE refused" in str(refused.value)


def _register(deployment: Deployment, source: str, spoofed: str | None = None) -> int:
    """One registration from ``source``, on a connection of its own (so nginx opens a new one
    upstream too, accepted by whichever worker takes it)."""
    conn = http.client.HTTPSConnection(
        "127.0.0.1",
        deployment.port,
        context=ssl.create_default_context(cafile=deployment.cert),
        source_address=(source, 0),
        timeout=30,
    )
    headers = {"Content-Type": "application/json"}
    if spoofed:
        headers["X-Forwarded-For"] = spoofed
    conn.request("POST", "/v1/registrations", json.dumps(registration_body()), headers)
    status = conn.getresponse().status
    conn.close()
    return status


def test_the_registration_limit_is_one_count_for_all_workers(deployment: Deployment) -> None:
    statuses = [_register(deployment, "127.0.0.20") for _ in range(REGISTRATIONS_PER_HOUR + 1)]
    # Each of the two workers counting alone would let the eleventh through.
    assert statuses == [202] * REGISTRATIONS_PER_HOUR + [429]
    store = redis.Redis.from_url(deployment.settings["FACEWARDEN_RATELIMIT_STORAGE_URI"])
    keys = [key.decode() for key in store.scan_iter("*127.0.0.20*")]
    assert keys, "no rate-limit key for 127.0.0.20 in Redis"


def test_the_limit_is_per_real_client_whatever_it_claims(deployment: Deployment) -> None:
    # nginx replaces a client's X-Forwarded-For with its real address: new claims, one count.
    statuses = [
        _register(deployment, "127.0.0.21", spoofed=f"203.0.113.{n}")
        for n in range(REGISTRATIONS_PER_HOUR + 1)
    ]
    assert statuses == [202] * REGISTRATIONS_PER_HOUR + [429]
    # The service honours the header nginx sets: another client has a count of its own (were
    # every request counted against nginx's address, this one would be refused too).
    assert _register(deployment, "127.0.0.22", spoofed="127.0.0.21") == 202
