"""Settings come from FACEWARDEN_* variables and an optional TOML file, and fail clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.settings import ConfigError, Settings


def test_defaults_live_under_one_data_directory() -> None:
    s = Settings.from_env({"FACEWARDEN_DATA_DIR": "/srv/fw"})
    assert s.database_url == "sqlite:////srv/fw/facewarden.db"
    assert s.milvus_uri == "/srv/fw/milvus/gallery.db"
    assert s.ledger_key_path == Path("/srv/fw/keys/ledger.pem")
    assert s.models_dir == Path("/srv/fw/models")
    assert s.tls_cert_path == Path("/srv/fw/tls/cert.pem")
    assert s.milvus_is_local


def test_production_values_use_the_same_settings(tmp_path: Path) -> None:
    token = tmp_path / "milvus-token"
    token.write_text("root:Milvus\n")
    passphrase = tmp_path / "pass"
    passphrase.write_text("correct horse\n")
    s = Settings.from_env(
        {
            "FACEWARDEN_DATABASE_URL": "postgresql+psycopg://fw@db/fw",
            "FACEWARDEN_MILVUS_URI": "https://milvus.internal:19530",
            "FACEWARDEN_MILVUS_TOKEN_FILE": str(token),
            "FACEWARDEN_LEDGER_KEY_PASSPHRASE_FILE": str(passphrase),
        }
    )
    assert s.database_url.startswith("postgresql")
    assert not s.milvus_is_local
    assert s.milvus_token == "root:Milvus"
    assert s.ledger_key_passphrase == "correct horse"
    assert "correct horse" not in repr(s) and "Milvus" not in repr(s).split("milvus_uri")[0]


def test_environment_wins_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "facewarden.toml"
    config.write_text('model_pack = "buffalo_l"\ncredential_ttl_days = 30\n')
    s = Settings.from_env({"FACEWARDEN_CONFIG": str(config), "FACEWARDEN_CREDENTIAL_TTL_DAYS": "7"})
    assert s.model_pack == "buffalo_l"
    assert s.credential_ttl_days == 7


def test_a_milvus_server_may_use_hnsw_with_session_reads() -> None:
    s = Settings.from_env(
        {
            "FACEWARDEN_MILVUS_URI": "http://milvus:19530",
            "FACEWARDEN_MILVUS_INDEX": "HNSW",
            "FACEWARDEN_MILVUS_HNSW_EF": "512",
            "FACEWARDEN_MILVUS_CONSISTENCY": "Session",
        }
    )
    assert (s.milvus_index, s.milvus_hnsw_ef, s.milvus_consistency) == ("HNSW", 512, "Session")
    default = Settings.from_env({})
    assert (default.milvus_index, default.milvus_consistency) == ("FLAT", "Strong")


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.model_pack = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FACEWARDEN_MAX_REQUEST_BYTES": "lots"}, "FACEWARDEN_MAX_REQUEST_BYTES"),
        ({"FACEWARDEN_CREDENTIAL_TTL_DAYS": "-1"}, "FACEWARDEN_CREDENTIAL_TTL_DAYS"),
        ({"FACEWARDEN_MODLE_PACK": "x"}, "unknown setting(s): FACEWARDEN_MODLE_PACK"),
        ({"FACEWARDEN_MILVUS_TOKEN_FILE": "/nonexistent/token"}, "FACEWARDEN_MILVUS_TOKEN_FILE"),
        ({"FACEWARDEN_CONFIG": "/nonexistent/fw.toml"}, "FACEWARDEN_CONFIG"),
        ({"FACEWARDEN_MILVUS_INDEX": "hnsw2"}, "FACEWARDEN_MILVUS_INDEX='hnsw2' is not one of"),
        ({"FACEWARDEN_MILVUS_CONSISTENCY": "strong"}, "FACEWARDEN_MILVUS_CONSISTENCY"),
        ({"FACEWARDEN_MILVUS_HNSW_EF": "0"}, "FACEWARDEN_MILVUS_HNSW_EF"),
        ({"FACEWARDEN_MILVUS_INDEX": "HNSW"}, "HNSW needs a Milvus server"),
        ({"FACEWARDEN_SMTP_URL": "mail.example.org:25"}, "FACEWARDEN_SMTP_URL must start with"),
        ({"FACEWARDEN_SMTP_URL": "smtp://u:pw@mail.example.org"}, "must not hold a password"),
        ({"FACEWARDEN_SMTP_PASSWORD_FILE": "/nonexistent/pw"}, "FACEWARDEN_SMTP_PASSWORD_FILE"),
        ({"FACEWARDEN_CLAIM_TTL_DAYS": "0"}, "FACEWARDEN_CLAIM_TTL_DAYS"),
        ({"FACEWARDEN_MAIL_FROM": "facewarden"}, "FACEWARDEN_MAIL_FROM"),
        ({"FACEWARDEN_PUBLIC_URL": "127.0.0.1:8443"}, "FACEWARDEN_PUBLIC_URL"),
    ],
)
def test_bad_settings_name_the_variable_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_a_malformed_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("model_pack = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.from_env({"FACEWARDEN_CONFIG": str(config)})


def test_mail_defaults_to_an_outbox_under_the_data_directory(tmp_path: Path) -> None:
    password = tmp_path / "smtp-password"
    password.write_text("s3cret\n")
    default = Settings.from_env({"FACEWARDEN_DATA_DIR": "/srv/fw"})
    assert default.mail_outbox_dir == Path("/srv/fw/mail/outbox")
    assert (default.smtp_url, default.claim_ttl_days) == ("", 7)
    relay = Settings.from_env(
        {
            "FACEWARDEN_SMTP_URL": "smtp://facewarden@relay.example.org",
            "FACEWARDEN_SMTP_PASSWORD_FILE": str(password),
        }
    )
    assert relay.smtp_password == "s3cret" and "s3cret" not in repr(relay)


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings.from_env({"FACEWARDEN_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"})
    assert [str(n) for n in settings.trusted_proxy_networks] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    assert Settings.from_env({}).trusted_proxy_networks == ()


def test_a_malformed_trusted_proxy_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=re.escape("FACEWARDEN_TRUSTED_PROXIES='10.0.0.1/8'")):
        Settings.from_env({"FACEWARDEN_TRUSTED_PROXIES": "10.0.0.1/8"})


@pytest.mark.parametrize(
    ("values", "location"),
    [
        ({}, None),
        ({"photo_store": "file"}, None),
        ({"photo_store": "s3://facewarden-photos"}, ("facewarden-photos", "")),
        ({"photo_store": "s3://bucket.one/a/b/"}, ("bucket.one", "a/b")),
        (
            {"photo_store": "s3://facewarden-photos", "s3_endpoint_url": "http://127.0.0.1:9000"},
            ("facewarden-photos", ""),
        ),
    ],
)
def test_the_photo_store_is_the_data_directory_or_an_s3_bucket(
    values: dict[str, str], location: tuple[str, str] | None
) -> None:
    assert Settings.from_mapping(values).s3_location == location


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"photo_store": "s3://Photos"}, "FACEWARDEN_PHOTO_STORE='s3://Photos' is neither"),
        ({"photo_store": "s3://bucket//x"}, "FACEWARDEN_PHOTO_STORE='s3://bucket//x' is neither"),
        ({"photo_store": "/var/photos"}, "FACEWARDEN_PHOTO_STORE='/var/photos' is neither"),
        ({"photo_store": "s3://" + "b" * 64}, "FACEWARDEN_PHOTO_STORE="),
        (
            {"photo_store": "s3://bucket", "s3_endpoint_url": "ftp://host"},
            "FACEWARDEN_S3_ENDPOINT_URL='ftp://host' is not an http(s) URL",
        ),
        (
            {"s3_endpoint_url": "http://127.0.0.1:9000"},
            "FACEWARDEN_S3_ENDPOINT_URL is set but FACEWARDEN_PHOTO_STORE is 'file'",
        ),
    ],
)
def test_a_bad_photo_store_setting_is_named(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_mapping(values)
    assert message in str(raised.value)
