"""Settings layering and validation: defaults < TOML < environment < flags."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import attrs
import pytest

from chorus.config import ConfigError, Settings, add_flags, load_settings
from chorus.persistence import COMMIT_WINDOW


def flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_flags(parser)
    return parser.parse_args(argv)


def test_defaults_run_one_laptop_node() -> None:
    settings = load_settings(flags(), {})
    assert settings == Settings()
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert (settings.gateway_host, settings.gateway_port) == ("127.0.0.1", 8081)
    assert settings.data_dir == Path("chorus-data")
    assert settings.gateway_urls == ["ws://127.0.0.1:8081/"]
    several = load_settings(
        flags("--public-gateway-urls", "wss://a.example/, wss://b.example/"), {}
    )
    assert several.gateway_urls == ["wss://a.example/", "wss://b.example/"]


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    config = tmp_path / "chorus.toml"
    config.write_text('http_port = 1001\ngateway_port = 1002\nlog_level = "debug"\n')
    env = {"CHORUS_CONFIG": str(config), "CHORUS_GATEWAY_PORT": "2002", "CHORUS_LOG_LEVEL": "error"}
    settings = load_settings(flags("--log-level", "warning"), env)
    assert settings.http_port == 1001  # file
    assert settings.gateway_port == 2002  # environment over file
    assert settings.log_level == "warning"  # flag over environment


def test_config_flag_wins_over_config_environment(tmp_path: Path) -> None:
    chosen, ignored = tmp_path / "a.toml", tmp_path / "b.toml"
    chosen.write_text("http_port = 1\n")
    ignored.write_text("http_port = 2\n")
    settings = load_settings(flags("--config", str(chosen)), {"CHORUS_CONFIG": str(ignored)})
    assert settings.http_port == 1


def test_values_are_converted_to_their_types(tmp_path: Path) -> None:
    config = tmp_path / "chorus.toml"
    config.write_text('allowed_origins = ["https://a.example", "https://b.example"]\n')
    env = {"CHORUS_HEARTBEAT_INTERVAL": "2.5", "CHORUS_DATA_DIR": "/var/lib/chorus"}
    settings = load_settings(flags("--config", str(config)), env)
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.heartbeat_interval == 2.5
    assert settings.data_dir == Path("/var/lib/chorus")
    from_env = load_settings(flags(), {"CHORUS_ALLOWED_ORIGINS": "https://a.example, *"})
    assert from_env.allowed_origins == ("https://a.example", "*")


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        (
            {"CHORUS_HTTP_PORT": "eighty"},
            (),
            "CHORUS_HTTP_PORT in environment: expected an integer",
        ),
        (
            {},
            ("--http-port", "70000"),
            r"--http-port in command line\): 'http_port' must be <= 65535",
        ),
        (
            {"CHORUS_LOG_FORMAT": "xml"},
            (),
            r"'log_format' must be in \('auto', 'console', 'json'\) \(got 'xml'\)",
        ),
        (
            {"CHORUS_AUTH_TIMEOUT": "0"},
            (),
            r"from CHORUS_AUTH_TIMEOUT in environment\): 'auth_timeout' must be > 0: 0",
        ),
        ({"CHORUS_HTTP_PORTT": "1"}, (), "unknown setting CHORUS_HTTP_PORTT"),
        # Else the notifier would crash on its first push (httpx.InvalidURL), again and again.
        (
            {"CHORUS_NOTIFICATION_WEBHOOK_URL": "http://[::1"},
            (),
            "'notification_webhook_url' is not a valid URL",
        ),
        (
            {"CHORUS_NOTIFICATION_WEBHOOK_URL": "hooks.example/push"},
            (),
            "'notification_webhook_url' must be an http:// or https:// URL",
        ),
        # Else a typo would silently trust nobody (or, worse, be read some other way).
        (
            {"CHORUS_TRUSTED_PROXIES": "10.0.0.0/8, 10.0.0.300"},
            (),
            r"CHORUS_TRUSTED_PROXIES in environment\): 'trusted_proxies': '10\.0\.0\.300' is not",
        ),
        (
            {},
            ("--max-connections-per-address", "0"),
            "'max_connections_per_address' must be > 0",
        ),
    ],
)
def test_bad_values_name_the_setting_and_its_source(
    env: dict[str, str], argv: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(flags(*argv), env)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("http_port = '8080'\n", "http_port in file .*expected int, got str"),
        ("http_port = true\n", "expected int, got bool"),
        ("nope = 1\n", "unknown setting nope"),
        ("http_port = \n", "not valid TOML"),
    ],
)
def test_bad_files_are_reported_clearly(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "chorus.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(flags("--config", str(config)), {})


def test_a_missing_file_is_reported_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(flags("--config", str(tmp_path / "missing.toml")), {})


def test_every_setting_has_a_flag_with_help() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser)
    text = parser.format_help()
    assert "--gateway-port" in text
    assert "$CHORUS_GATEWAY_PORT" in text


def test_every_setting_is_documented_in_operations_md() -> None:
    text = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    for field in attrs.fields(Settings):
        flag, env = "--" + field.name.replace("_", "-"), "CHORUS_" + field.name.upper()
        assert f"| `{field.name}` | `{flag}` / `{env}` |" in text, field.name


def test_the_commit_window_default_is_the_stores() -> None:
    assert Settings().commit_window == COMMIT_WINDOW


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CHORUS_SCANNER": "clamd"}, "'clamd_address' is required when scanner = clamd"),
        ({"CHORUS_SCANNER": "sophos"}, "'scanner' must be in"),
        ({"CHORUS_CLAMD_ADDRESS": "localhost:3310"}, "must be tcp://host:port or unix:///path"),
        ({"CHORUS_CLAMD_ADDRESS": "tcp://localhost"}, "must be tcp://host:port or unix:///path"),
        ({"CHORUS_STORAGE": "s3"}, "'s3_bucket' is required when storage = s3"),
        ({"CHORUS_STORAGE": "gcs"}, "'storage' must be in"),
        ({"CHORUS_CDN_DOMAIN": "cdn.example"}, "set all or none"),
        ({"CHORUS_FILES_MAX_BYTES": "0"}, "'files_max_bytes' must be > 0"),
        ({"CHORUS_FILE_URL_TTL": "-5"}, "'file_url_ttl' must be > 0"),
        # Else every file URL would be broken, found only when someone clicks one.
        ({"CHORUS_PUBLIC_URL": "chat.example.com"}, "'public_url' must be an http:// or https://"),
        ({"CHORUS_PUBLIC_URL": "https://[::1"}, "'public_url' is not a valid URL"),
        ({"CHORUS_PUBLIC_URL": "https://chat.example/?a=b"}, "'public_url' must have no query"),
        ({"CHORUS_PUBLIC_URL": "https://chat.example/#x"}, "'public_url' must have no query"),
    ],
)
def test_file_settings_are_checked_with_clear_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ=environ)


def test_a_cdn_needs_s3_storage() -> None:
    with pytest.raises(ValueError, match="needs storage = s3"):
        Settings(cdn_domain="d.example", cdn_key_id="K1", cdn_private_key_file="k.pem")
    settings = Settings(
        storage="s3",
        s3_bucket="b",
        cdn_domain="d.example",
        cdn_key_id="K1",
        cdn_private_key_file="k.pem",
    )
    assert settings.cdn_domain == "d.example"


def test_good_file_settings_load() -> None:
    environ = {
        "CHORUS_SCANNER": "clamd",
        "CHORUS_CLAMD_ADDRESS": "unix:///run/clamav/clamd.ctl",
        "CHORUS_STORAGE": "s3",
        "CHORUS_S3_BUCKET": "chorus-files",
    }
    settings = load_settings(environ=environ)
    assert (settings.scanner, settings.storage) == ("clamd", "s3")
    assert load_settings(environ={"CHORUS_PUBLIC_URL": "https://chat.example/chorus/"}).public_url
    assert load_settings(environ={"CHORUS_CLAMD_ADDRESS": "tcp://127.0.0.1:3310"}).scanner == "none"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CHORUS_MAX_MESSAGE_CHARS": "4001"}, "'max_message_chars' must be <= 4000"),
        ({"CHORUS_REGISTRATION_OPEN": "perhaps"}, "expected true or false, got 'perhaps'"),
        ({"CHORUS_SERVER_NOTICE": "x" * 1025}, "'server_notice' must be <= 1024"),
        ({"CHORUS_STORE_POLL_INTERVAL": "0"}, "'store_poll_interval' must be > 0"),
    ],
)
def test_run_time_setting_defaults_are_checked_with_clear_errors(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ=environ)


def test_run_time_setting_defaults_come_from_the_configuration() -> None:
    settings = load_settings(
        environ={"CHORUS_REGISTRATION_OPEN": "false", "CHORUS_SERVER_NOTICE": "hello"}
    )
    assert (settings.registration_open, settings.server_notice) == (False, "hello")
