"""Node settings: one attrs object, layered defaults < TOML file < `CHORUS_*` environment < flags.

Every setting is declared once, as a field of `Settings` with a help text and
validators; the TOML keys, environment variables and command-line flags are
derived from the field names (`http_port` <-> `http_port = 8080`,
`CHORUS_HTTP_PORT`, `--http-port`).
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import attrs
import httpx

from chorus.admission import parse_networks
from chorus.protocol import MAX_BODY_CHARS, MAX_TEXT_CHARS

ENV_PREFIX = "CHORUS_"
CONFIG_ENV = "CHORUS_CONFIG"
"""Environment variable naming a TOML file (the `--config` flag wins over it)."""


class ConfigError(Exception):
    """A setting is unknown or invalid; the message names the setting and where it came from."""


def _setting(
    default: Any, help_text: str, *validators: Callable[..., Any], secret: bool = False
) -> Any:
    """A settings field; a `secret` one is left out of the settings' repr (never logged)."""
    return attrs.field(
        default=default, validator=list(validators), metadata={"help": help_text}, repr=not secret
    )


_positive = attrs.validators.gt(0)
_not_negative = attrs.validators.ge(0)
_port = attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(65535))


def _web_url(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    """Empty, or an http(s) URL with a host (checked at start, not at the first request)."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"'{attribute.name}' is not a valid URL: {exc}") from None
    if value and (url.scheme not in ("http", "https") or not url.host):
        raise ValueError(f"'{attribute.name}' must be an http:// or https:// URL with a host")


def _public_url(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    """Empty, or an http(s) URL with a host and at most a path: no query, no fragment."""
    _web_url(_inst, attribute, value)
    if value and (httpx.URL(value).query or httpx.URL(value).fragment):
        raise ValueError(f"'{attribute.name}' must have no query or fragment")


def _networks(
    _inst: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    """IP addresses or CIDR blocks (checked at start)."""
    try:
        parse_networks(value)
    except ValueError as exc:
        raise ValueError(f"'{attribute.name}': {exc}") from None


def _hex_key(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    """Empty, or 32 bytes written as 64 hexadecimal digits."""
    if not value:
        return
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError(f"'{attribute.name}' must be 64 hexadecimal digits (32 bytes)")


def _clamd_address(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    """Empty, tcp://host:port or unix:///path (the forms `chorus.files.ClamdScanner` takes)."""
    if not value:
        return
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    tcp = parts.scheme == "tcp" and parts.hostname and port
    unix = parts.scheme == "unix" and parts.path and not parts.netloc
    if not (tcp or unix):
        raise ValueError(
            f"'{attribute.name}' must be tcp://host:port or unix:///path, not {value!r}"
        )


_ALGORITHMS = ("RS256", "ES256", "EdDSA")


def _string_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError(f"expected a string or a list of strings, got {value!r}")


def _https_url(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    """An https URL, or http on a loopback host (a test or a local provider)."""
    url = httpx.URL(value)
    local = url.host in ("localhost", "127.0.0.1", "::1")
    if not (url.host and (url.scheme == "https" or (url.scheme == "http" and local))):
        raise ValueError(f"{attribute.name} must be an https:// URL, not {value!r}")


@attrs.frozen(kw_only=True)
class IdentityProvider:
    """One trusted issuer of sign-in tokens (Clerk, or any OIDC provider).

    A token is accepted only if its `iss` is exactly `issuer`, it is signed
    with one of `algorithms` by a key of `jwks_url`, and its `aud` is one
    of `audiences` and/or its `azp` one of `authorized_parties` (at least one
    of the two lists is required: without them, any token the provider
    issued for any application would sign in here).
    """

    issuer: str = attrs.field(validator=_https_url)
    jwks_url: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    """Where the provider publishes its keys; empty: `<issuer>/.well-known/jwks.json`."""
    audiences: tuple[str, ...] = attrs.field(default=(), converter=_string_tuple)
    authorized_parties: tuple[str, ...] = attrs.field(default=(), converter=_string_tuple)
    algorithms: tuple[str, ...] = attrs.field(default=_ALGORITHMS, converter=_string_tuple)
    link_by_email: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """A first sign-in whose verified e-mail is that of an identity already linked through
    another provider that also allows it signs in as that identity's user."""

    def __attrs_post_init__(self) -> None:
        if self.jwks_url:
            _https_url(self, attrs.fields(IdentityProvider).jwks_url, self.jwks_url)
        if not (self.audiences or self.authorized_parties):
            raise ValueError(f"{self.issuer}: give audiences or authorized_parties (or both)")
        if not self.algorithms or not set(self.algorithms) <= set(_ALGORITHMS):
            raise ValueError(f"{self.issuer}: algorithms must be among {', '.join(_ALGORITHMS)}")

    @property
    def keys_url(self) -> str:
        """`jwks_url`, or the default location next to the issuer (Clerk's, Auth0's)."""
        return self.jwks_url or self.issuer.rstrip("/") + "/.well-known/jwks.json"


def _identity_providers(value: object) -> tuple[IdentityProvider, ...]:
    """A list of tables (TOML) or a JSON array of objects (environment, flag)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON array of objects: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("expected a list of tables (objects) with at least an issuer")
    known = {field.name for field in attrs.fields(IdentityProvider)}
    providers = []
    for item in value:
        if unknown := set(item) - known:
            raise ValueError(f"unknown identity provider keys: {', '.join(sorted(unknown))}")
        try:
            providers.append(IdentityProvider(**item))
        except (TypeError, httpx.InvalidURL) as exc:
            raise ValueError(f"identity provider {item.get('issuer')!r}: {exc}") from None
    issuers = [provider.issuer for provider in providers]
    if len(set(issuers)) != len(issuers):
        raise ValueError("each issuer may be configured once")
    return tuple(providers)


@attrs.frozen(kw_only=True)
class Settings:
    """Everything a node can be configured with; the defaults run one laptop node."""

    data_dir: Path = _setting(
        Path("chorus-data"), "directory for the SQLite database and generated secrets"
    )
    database_url: str = _setting(
        "",
        "PostgreSQL URL shared by all nodes (postgresql://user:password@host:port/db);"
        " empty: embedded SQLite in data_dir",
    )
    database_pool_size: int = _setting(
        10,
        "PostgreSQL connections one node holds (its pool, opened in full at start); every"
        " node's, added up, must stay under the server's max_connections (see"
        " docs/operations.md)",
        _positive,
    )
    redis_url: str = _setting(
        "",
        "Redis shared by all nodes for the cross-node bus (redis://host:port/db), or a Redis"
        " Cluster (redis-cluster://host:port[,host:port...]); empty: a single node, no bus",
    )
    role: str = _setting(
        "all",
        "what this node serves: all, gateway (WebSockets only) or api (HTTP only)",
        attrs.validators.in_(("all", "gateway", "api")),
    )
    http_host: str = _setting("127.0.0.1", "address the HTTP API listens on")
    http_port: int = _setting(8080, "port of the HTTP API (0: any free port)", _port)
    gateway_host: str = _setting("127.0.0.1", "address the WebSocket gateway listens on")
    gateway_port: int = _setting(8081, "port of the WebSocket gateway (0: any free port)", _port)
    public_gateway_urls: tuple[str, ...] = _setting(
        (),
        "gateway URLs handed to clients by GET /api/v1/gateway, comma-separated"
        " (default: derived from this node's gateway)",
    )
    public_url: str = _setting(
        "",
        "the HTTP API's address as clients reach it (e.g. https://chat.example.com), used in"
        " the file URLs the nodes serve; empty: the address each request came to",
        _public_url,
    )
    allowed_origins: tuple[str, ...] = _setting(
        (), "browser origins allowed to open WebSockets (comma-separated; * allows any)"
    )
    log_format: str = _setting(
        "auto",
        "log format: auto (console on a terminal, else json), console or json",
        attrs.validators.in_(("auto", "console", "json")),
    )
    log_level: str = _setting(
        "info", "lowest level logged", attrs.validators.in_(("debug", "info", "warning", "error"))
    )
    heartbeat_interval: float = _setting(
        30.0, "seconds between client pings; silence for two intervals closes", _positive
    )
    auth_timeout: float = _setting(10.0, "seconds a new connection has to send hello", _positive)
    access_token_ttl: int = _setting(900, "lifetime of access tokens in seconds", _positive)
    refresh_token_ttl: int = _setting(
        30 * 24 * 3600,
        "lifetime of a refresh token in seconds: a session not refreshed for this long ends"
        " (idle expiry)",
        _positive,
    )
    session_max_age: int = _setting(
        90 * 24 * 3600,
        "seconds after its login that a session ends whatever its refreshes (absolute expiry)",
        _positive,
    )
    two_factor_key: str = _setting(
        "",
        "64 hex digits (32 bytes) that encrypt TOTP secrets and key recovery-code hashes;"
        " the same on every node. Empty: a key generated once and kept in the database"
        " (see docs/decisions.md)",
        _hex_key,
        secret=True,
    )
    two_factor_attempts_per_minute: int = _setting(
        5,
        "two-factor codes one user (and one login challenge) may try per minute, in bursts"
        " of as many (429 beyond; shared by nodes sharing redis_url)",
        _positive,
    )
    two_factor_challenge_ttl: int = _setting(
        300, "seconds the second login step may take after the password", _positive
    )
    audit_retention_days: int = _setting(
        365, "days audit log events are kept; older ones are deleted hourly", _positive
    )
    session_cache_ttl: float = _setting(
        5.0,
        "seconds a live session stays in the session cache (in-process, or in Redis when"
        " redis_url is set); a revocation removes it at once",
        _positive,
    )
    session_cache_entries: int = _setting(
        10_000, "sessions the in-process session cache holds at most", _positive
    )
    max_outbox_bytes: int = _setting(
        1 << 20, "bytes queued for a slow client before it is disconnected (4004)", _positive
    )
    resume_limit: int = _setting(
        1000, "most messages replayed per room on resume before too_far", _positive
    )
    # The SQLite store's own default (`chorus.persistence.COMMIT_WINDOW`, which
    # tests/config checks it equals), written out: importing the store would
    # load every database engine with the settings (issue #11).
    commit_window: float = _setting(
        0.0,
        "SQLite: seconds between group commits while writes keep coming (latency for"
        " fewer syncs and sends under load; a lone write never waits); 0 (the default):"
        " none, batches grow by themselves under load",
        _not_negative,
    )
    frames_per_second: float = _setting(
        20.0,
        "frames one WebSocket connection may send per second on average; refused frames"
        " are answered rate_limited and 20 in a row close the connection (4005)",
        _positive,
    )
    frame_burst: int = _setting(
        40, "frames one connection may send at once before frames_per_second applies", _positive
    )
    sends_per_second: float = _setting(
        20.0,
        "messages one user may send per second over all their connections (and all nodes"
        " sharing redis_url)",
        _positive,
    )
    send_burst: int = _setting(
        50, "messages one user may send at once before sends_per_second applies", _positive
    )
    auth_attempts_per_minute: int = _setting(
        30,
        "register, login, provider sign-in (HTTP exchange or hello) and failed refresh"
        " attempts per minute from one client IP address, in bursts of as many (429 beyond;"
        " shared by nodes sharing redis_url)",
        _positive,
    )
    registration_open: bool = _setting(
        True,
        "whether anyone may create an account with a password (POST /api/v1/auth/register);"
        " false: sign-up is refused, existing accounts and identity-provider sign-ins are"
        " unaffected (a run-time setting, see docs/operations.md)",
    )
    max_message_chars: int = _setting(
        MAX_BODY_CHARS,
        f"longest message body, in characters, sent or edited (at most {MAX_BODY_CHARS},"
        " the protocol's limit; a run-time setting)",
        _positive,
        attrs.validators.le(MAX_BODY_CHARS),
    )
    server_notice: str = _setting(
        "",
        f"a notice (message of the day, at most {MAX_TEXT_CHARS} characters) each client gets"
        " as an info notice frame right after ready; empty: none (a run-time setting)",
        attrs.validators.max_len(MAX_TEXT_CHARS),
    )
    store_poll_interval: float = _setting(
        5.0,
        "seconds between two reads of what `chorus admin` may have changed in the store:"
        " run-time settings, and sessions of open sockets it revoked (closed then). A change"
        " made through the admin API reaches every node at once over the bus",
        _positive,
    )
    max_group_size: int = _setting(
        10, "most users in a group direct conversation, its creator included", _positive
    )
    to_device_ttl: float = _setting(
        7 * 24 * 3600.0,
        "seconds a to-device message (end-to-end encryption) waits for its device before it"
        " expires unread",
        _positive,
    )
    notification_webhook_url: str = _setting(
        "",
        "URL that gets a signed POST for every notification (mentions, thread replies) so"
        " operators can send mobile push; empty: none (see docs/operations.md)",
        _web_url,
    )
    notification_webhook_secret: str = _setting(
        "", "key of the HMAC-SHA256 signature sent with each webhook request", secret=True
    )
    metrics_token: str = _setting(
        "",
        "bearer token that GET /metrics requires; empty: /metrics is open to anyone who"
        " reaches the HTTP port",
        secret=True,
    )
    sentry_dsn: str = _setting(
        "",
        "Sentry DSN: errors the node logs (crashes, HTTP 500s) are reported there; needs"
        " the sentry extra (sentry-sdk). Empty: no error tracking",
        secret=True,
    )
    shutdown_grace: float = _setting(
        10.0, "seconds to finish work after SIGINT/SIGTERM before cancelling", _positive
    )
    tls_cert_file: str = _setting(
        "",
        "PEM certificate chain: with tls_key_file, the HTTP API (https, with HSTS) and the"
        " gateway (wss) serve TLS; both files are read again on SIGHUP",
    )
    tls_key_file: str = _setting("", "PEM private key of tls_cert_file")
    drain_reconnect_window: float = _setting(
        2.0,
        "on SIGINT/SIGTERM, WebSocket clients are closed with 4007 and each told to"
        " reconnect after a random delay in [0, this many seconds), so the other nodes"
        " are not hit by all of them at once",
        _not_negative,
    )
    http_idle_timeout: float = _setting(
        5.0, "seconds an HTTP keep-alive connection may stay idle before it is closed", _positive
    )
    max_connections: int = _setting(
        10_000,
        "client connections one node holds, HTTP and WebSocket together; beyond, new ones"
        " are answered 503 and closed",
        _positive,
    )
    max_connections_per_address: int = _setting(
        1_000,
        "client connections one IP address (IPv6: one /64) may hold on one node, HTTP and"
        " WebSocket together (trusted_proxies are exempt); beyond, 503",
        _positive,
    )
    reserved_file_descriptors: int = _setting(
        128,
        "open files kept for the store, Redis and logs: new connections are refused (503)"
        " once client sockets reach the open-file limit minus this many",
        _not_negative,
    )
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        "reverse proxies (IP addresses or CIDR blocks, comma-separated) whose X-Forwarded-For"
        " names the client; they are exempt from max_connections_per_address. Empty: none",
        _networks,
    )

    files_max_bytes: int = _setting(
        100 * 1024 * 1024, "largest file one upload may carry, in bytes (413 beyond)", _positive
    )
    files_quota_bytes: int = _setting(
        1024 * 1024 * 1024,
        "bytes of files one user may keep, over all nodes (413 quota_exceeded beyond)",
        _positive,
    )
    files_concurrent_uploads: int = _setting(
        4, "uploads one user may stream to one node at once (429 beyond)", _positive
    )
    scanner: str = _setting(
        "none",
        "virus scanner of uploaded files: clamd (clamd_address), or none (files are"
        " marked unscanned and a warning is logged at start-up)",
        attrs.validators.in_(("none", "clamd")),
    )
    clamd_address: str = _setting(
        "", "where clamd listens: tcp://host:port or unix:///path/to/socket", _clamd_address
    )
    storage: str = _setting(
        "local",
        "where accepted files are kept: local (data_dir/files) or s3 (s3_bucket)",
        attrs.validators.in_(("local", "s3")),
    )
    s3_bucket: str = _setting("", "S3 bucket of the files (storage = s3)")
    s3_prefix: str = _setting("", "key prefix of the files in the S3 bucket (e.g. chorus/)")
    s3_region: str = _setting("", "region of the S3 bucket; empty: boto3's default")
    s3_endpoint_url: str = _setting(
        "", "URL of an S3-compatible store (MinIO, Ceph, ...); empty: AWS", _web_url
    )
    cdn_domain: str = _setting(
        "", "CloudFront domain serving the S3 bucket; file URLs are then CloudFront signed URLs"
    )
    cdn_key_id: str = _setting("", "id of the CloudFront public key that checks file URLs")
    cdn_private_key_file: str = _setting(
        "", "PEM file of the RSA private key that signs CloudFront file URLs"
    )
    file_url_ttl: int = _setting(
        300,
        "lifetime of a file download URL in seconds (the revocation delay of S3/CDN URLs)",
        _positive,
    )
    files_unattached_ttl: int = _setting(
        24 * 3600,
        "seconds after its upload a file never attached to a message is deleted (housekeeping)",
        _positive,
    )
    files_retention: int = _setting(
        7 * 24 * 3600,
        "seconds a deleted file's bytes are kept before housekeeping removes them"
        " (0: at the next sweep)",
        _not_negative,
    )
    files_housekeeping_interval: float = _setting(
        600.0,
        "mean seconds between two housekeeping sweeps of a node (each wait is jittered by"
        " up to a fifth either way, so nodes do not sweep together)",
        _positive,
    )
    image_max_pixels: int = _setting(
        50_000_000, "most pixels (width x height) an uploaded image may declare", _positive
    )
    image_max_frames: int = _setting(
        200, "most frames an uploaded animated image may have", _positive
    )
    identity_providers: tuple[IdentityProvider, ...] = _setting(
        (),
        "issuers whose tokens sign users in (Clerk, OIDC): TOML [[identity_providers]]"
        " tables, or a JSON array of objects in the environment or flag (see"
        " docs/operations.md); empty: password accounts only",
    )
    jwks_min_refresh_interval: float = _setting(
        30.0,
        "seconds between two fetches of one provider's keys caused by tokens with an"
        " unknown key id (a flood of made-up key ids fetches at most this often)",
        _not_negative,
    )
    jwks_cache_ttl: float = _setting(
        3600.0,
        "seconds a provider's fetched keys are used before they are fetched again",
        _positive,
    )

    def __attrs_post_init__(self) -> None:
        """Settings that only make sense together (attrs validators see one field each)."""
        if self.scanner == "clamd" and not self.clamd_address:
            raise ValueError("'clamd_address' is required when scanner = clamd")
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("'s3_bucket' is required when storage = s3")
        cdn = (self.cdn_domain, self.cdn_key_id, self.cdn_private_key_file)
        if any(cdn) and not all(cdn):
            raise ValueError(
                "'cdn_domain', cdn_key_id and cdn_private_key_file go together: set all or none"
            )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("'tls_cert_file' and tls_key_file go together: set both or none")
        if self.cdn_domain and self.storage != "s3":
            raise ValueError("'cdn_domain' needs storage = s3 (CloudFront serves the bucket)")
        if self.cdn_domain and any(char in self.cdn_domain for char in "/?#@ :"):
            raise ValueError(f"'cdn_domain' is a host name, not {self.cdn_domain!r}")

    @property
    def gateway_urls(self) -> list[str]:
        """Where clients connect: `public_gateway_urls`, or derived from the listen address."""
        if self.public_gateway_urls:
            return list(self.public_gateway_urls)
        scheme = "wss" if self.tls_cert_file else "ws"
        return [f"{scheme}://{self.gateway_host}:{self.gateway_port}/"]


def _parse_tuple(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _parse_bool,
    "Path": Path,
    "tuple[str, ...]": _parse_tuple,
}


_DESCRIPTIONS = {"int": "an integer", "float": "a number", "bool": "true or false"}


def _kind(field: attrs.Attribute[Any]) -> str:
    # `from __future__ import annotations` keeps attrs field types as their source text.
    return cast(str, field.type)


def _from_text(field: attrs.Attribute[Any], raw: str) -> Any:
    """Convert an environment variable or flag string to the field's type."""
    kind = _kind(field)
    if kind == "tuple[IdentityProvider, ...]":
        return _identity_providers(raw)  # its errors say more than "expected ..."
    try:
        return _PARSERS[kind](raw)
    except ValueError:
        raise ValueError(f"expected {_DESCRIPTIONS.get(kind, kind)}, got {raw!r}") from None


def _from_toml(field: attrs.Attribute[Any], value: object) -> Any:
    """Check a TOML value's type (TOML is typed: no guessing) and convert it."""
    kind = _kind(field)
    if kind == "tuple[str, ...]":
        if isinstance(value, str):
            return _parse_tuple(value)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
    elif kind == "tuple[IdentityProvider, ...]":
        return _identity_providers(value)
    elif kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif kind == "Path" and isinstance(value, str):
        return Path(value)
    elif type(value).__name__ == kind:
        return value
    raise ValueError(f"expected {kind}, got {type(value).__name__} {value!r}")


def _fields() -> tuple[attrs.Attribute[Any], ...]:
    return attrs.fields(Settings)


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add `--config` and one `--<setting>` flag per setting (all default to "not given")."""
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help=f"TOML settings file (or ${CONFIG_ENV})"
    )
    for field in _fields():
        flag = "--" + field.name.replace("_", "-")
        env = ENV_PREFIX + field.name.upper()
        default = field.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        parser.add_argument(
            flag,
            dest=f"setting_{field.name}",
            metavar=field.name.upper(),
            help=f"{field.metadata['help']} [${env}; default: {shown!s}]",
        )


def load_settings(
    flags: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build `Settings` from defaults < TOML file < environment < flags.

    Raises `ConfigError` naming the setting and its source for unknown keys,
    unreadable files, values of the wrong type and values out of range.
    """
    environ = os.environ if environ is None else environ
    given: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_path = getattr(flags, "config", None) or environ.get(CONFIG_ENV)
    if config_path:
        _layer(given, sources, _read_toml(Path(config_path)), f"file {config_path}", _from_toml)
    env_values = {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name != CONFIG_ENV
    }
    _layer(given, sources, env_values, "environment", _from_text, key=_env_name)
    if flags is not None:
        flag_values = {
            field.name: getattr(flags, f"setting_{field.name}")
            for field in _fields()
            if getattr(flags, f"setting_{field.name}", None) is not None
        }
        _layer(given, sources, flag_values, "command line", _from_text, key=_flag_name)
    try:
        return Settings(**given)
    except ValueError as exc:
        # attrs validators name the setting first, quoted; `in_` adds more args.
        message = str(exc.args[0])
        name = next((n for n in sources if message.startswith(f"'{n}'")), None)
        where = f" (from {sources[name]})" if name else ""
        raise ConfigError(f"invalid setting{where}: {message}") from None


def _env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _layer(
    given: dict[str, Any],
    sources: dict[str, str],
    values: Mapping[str, object],
    source: str,
    convert: Callable[[attrs.Attribute[Any], Any], Any],
    key: Callable[[str], str] = str,
) -> None:
    by_name = {field.name: field for field in _fields()}
    for name, raw in values.items():
        field = by_name.get(name)
        if field is None:
            known = ", ".join(sorted(key(n) for n in by_name))
            raise ConfigError(f"unknown setting {key(name)} in {source}; known: {known}")
        try:
            given[name] = convert(field, raw)
        except ValueError as exc:
            raise ConfigError(f"setting {key(name)} in {source}: {exc}") from None
        sources[name] = f"{key(name)} in {source}"


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
