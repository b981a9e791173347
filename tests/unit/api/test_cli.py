"""The ``facewarden`` command: help everywhere, idempotent init, clear errors and exit codes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"FACEWARDEN_DATA_DIR": str(tmp_path / "var")}


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in getattr(group, "commands", {}).items():
        found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(p) or "facewarden")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_init_creates_the_embedded_setup_and_is_idempotent(
    env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["init"], env=env)
    assert first.exit_code == 0, first.output
    var = tmp_path / "var"
    key = var / "keys" / "ledger.pem"
    assert (var / "facewarden.db").is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "tls" / "key.pem").stat().st_mode) == 0o600
    assert "TLS certificate SHA-256 fingerprint: " in first.output
    fingerprint = first.output.split("fingerprint: ")[1].split()[0]
    assert len(fingerprint.split(":")) == 32

    key_before = key.read_bytes()
    second = runner.invoke(cli, ["init"], env=env)
    assert second.exit_code == 0, second.output
    assert key.read_bytes() == key_before, "init must never replace an existing signing key"
    assert f"fingerprint: {fingerprint}" in second.output


def test_init_closes_an_existing_data_directory(env: dict[str, str], tmp_path: Path) -> None:
    """An installation made before the directory was owner-only is closed by the next init."""
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    result = CliRunner().invoke(cli, ["init", "--no-tls"], env=env)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "photos").stat().st_mode) == 0o700


def test_db_upgrade_reports_the_revision(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert "database at revision" in result.output


def test_bad_settings_exit_1_with_the_variable_named(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["init"], env={**env, "FACEWARDEN_MAX_REQUEST_BYTES": "x"})
    assert result.exit_code == 1
    assert "FACEWARDEN_MAX_REQUEST_BYTES" in result.output
    assert "Traceback" not in result.output


def test_unreachable_database_is_explained(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        cli,
        ["db", "upgrade"],
        env={**env, "FACEWARDEN_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
    )
    assert result.exit_code == 1
    assert "FACEWARDEN_DATABASE_URL" in result.output


def test_serve_refuses_a_missing_certificate(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["serve"], env=env)
    assert result.exit_code == 1
    assert "facewarden init" in result.output


def test_serve_usage_errors_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    result = CliRunner().invoke(cli, ["serve", "--http", "--cert", str(cert), "--key", str(cert)])
    assert result.exit_code == 2
    result = CliRunner().invoke(cli, ["serve", "--port", "0"], env=env)
    assert result.exit_code == 2


def test_serve_refuses_several_workers_on_a_milvus_lite_3_file(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2.5 (the pinned release) shares the file over a socket (test_cli_gallery.py); 3.x serves
    # from threads, which a process that forks its workers must not start.
    monkeypatch.setattr("biometrics.index_server.milvus_lite_version", lambda: (3, 0, 0))
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"], env=env)
    assert result.exit_code == 2
    assert "biometrics.index_server" in result.output and "FACEWARDEN_MILVUS_URI" in result.output


def test_openapi_write(tmp_path: Path) -> None:
    target, problems = tmp_path / "spec.json", tmp_path / "problems.md"
    # Both paths under tmp_path: the default for --problems is the repository's docs/.
    result = CliRunner().invoke(cli, ["openapi", "write", str(target), "--problems", str(problems)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["openapi"].startswith("3.1")
    assert os.path.getsize(target) > 100
    assert "| `tile-not-found` | 404 |" in problems.read_text()


def test_ledger_key_rotation_and_export_verify_offline(env: dict[str, str], tmp_path: Path) -> None:
    from ledger.cli import main as verify_main

    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--no-tls"], env=env).exit_code == 0
    first_key = runner.invoke(cli, ["ledger", "key"], env=env).output.strip()
    assert first_key.startswith("facewarden.local/ledger+")

    empty = runner.invoke(cli, ["ledger", "export", str(tmp_path / "empty")], env=env)
    assert empty.exit_code == 1 and "empty" in empty.output

    rotated = runner.invoke(cli, ["ledger", "rotate-key", "--yes"], env=env)
    assert rotated.exit_code == 0, rotated.output
    second_key = runner.invoke(cli, ["ledger", "key"], env=env).output.strip()
    assert second_key != first_key and second_key in rotated.output

    bundle = tmp_path / "bundle"
    exported = runner.invoke(cli, ["ledger", "export", str(bundle)], env=env)
    assert exported.exit_code == 0, exported.output
    assert "exported 1 entries" in exported.output
    # The oversight body pins the FIRST key; the rotation entry announces the second.
    assert verify_main(["bundle", str(bundle), "--key", first_key]) == 0
    assert verify_main(["bundle", str(bundle), "--key", second_key]) != 0


def test_admin_create_prints_the_key_alone_on_the_last_line(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--no-tls"], env=env).exit_code == 0
    result = runner.invoke(
        cli, ["admin", "create", "--email", "Ada@Example.org", "--name", "Ada Lovelace"], env=env
    )
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("fw_") and last.count("_") == 2 and " " not in last


def test_admin_create_explains_bad_input(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--no-tls"], env=env).exit_code == 0
    result = runner.invoke(cli, ["admin", "create", "--email", "nope", "--name", "A"], env=env)
    assert result.exit_code == 1
    assert "email" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("remove", "setting"),
    [
        ("ledger.pem", "FACEWARDEN_LEDGER_KEY_PATH"),
        ("ledger-secret.key", "FACEWARDEN_LEDGER_SECRET_PATH"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [["ledger", "key"], ["admin", "create", "--email", "a@example.org", "--name", "A B"]],
    ids=" ".join,
)
def test_a_command_outside_its_data_directory_names_the_settings(
    env: dict[str, str], tmp_path: Path, command: list[str], remove: str, setting: str
) -> None:
    """Run from elsewhere (or with a key file gone), the error says what to set."""
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--no-tls"], env=env).exit_code == 0
    (tmp_path / "var" / "keys" / remove).unlink()
    result = runner.invoke(cli, command, env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "FACEWARDEN_DATA_DIR" in result.output
    assert setting in result.output
    assert "cannot load" not in result.output


def test_serve_without_a_model_pack_says_so_in_one_line_before_serving(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert CliRunner().invoke(cli, ["init", "--no-tls"], env=env).exit_code == 0
    result = CliRunner().invoke(
        cli,
        ["serve", "--http", "--port", "1"],
        env={
            **env,
            "FACEWARDEN_TRUSTED_PROXIES": "127.0.0.1",
            "FACEWARDEN_MODELS_DIR": str(tmp_path / "no-models"),
        },
    )
    assert result.exit_code == 1
    assert "facewarden models install starter" in result.output
    assert "serving on" not in result.output and "worker" not in result.output
    assert "Traceback" not in result.output
