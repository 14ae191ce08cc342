"""The `identity_providers` setting: TOML tables, or JSON in the environment (issue #14)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chorus.config import ConfigError, IdentityProvider, load_settings

CLERK = "https://clerk.example.com"


def test_toml_tables_give_each_provider(tmp_path: Path) -> None:
    config = tmp_path / "chorus.toml"
    config.write_text(
        "[[identity_providers]]\n"
        f'issuer = "{CLERK}"\n'
        'authorized_parties = ["https://chat.example.com", "https://admin.example.com"]\n'
        "\n"
        "[[identity_providers]]\n"
        'issuer = "https://sso.example.org/realms/staff"\n'
        'jwks_url = "https://sso.example.org/realms/staff/protocol/openid-connect/certs"\n'
        'audiences = "chorus"\n'
        'algorithms = ["ES256"]\n'
        "link_by_email = true\n"
    )
    clerk, keycloak = load_settings(None, {"CHORUS_CONFIG": str(config)}).identity_providers
    assert clerk.issuer == CLERK
    assert clerk.keys_url == f"{CLERK}/.well-known/jwks.json"
    assert clerk.authorized_parties == ("https://chat.example.com", "https://admin.example.com")
    assert clerk.algorithms == ("RS256", "ES256", "EdDSA")
    assert not clerk.link_by_email
    assert keycloak.keys_url.endswith("/protocol/openid-connect/certs")
    assert (keycloak.audiences, keycloak.algorithms) == (("chorus",), ("ES256",))
    assert keycloak.link_by_email


def test_the_environment_takes_a_json_array() -> None:
    value = json.dumps([{"issuer": CLERK, "audiences": ["a", "b"]}])
    (provider,) = load_settings(None, {"CHORUS_IDENTITY_PROVIDERS": value}).identity_providers
    assert provider == IdentityProvider(issuer=CLERK, audiences=("a", "b"))


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        ([{"issuer": CLERK}], "give audiences or authorized_parties"),
        ([{"issuer": "http://clerk.example.com", "audiences": "x"}], "must be an https:// URL"),
        ([{"issuer": CLERK, "audiences": "x", "algorithms": ["HS256"]}], "algorithms must be"),
        ([{"issuer": CLERK, "audiences": "x", "algorithms": ["none"]}], "algorithms must be"),
        ([{"issuer": CLERK, "audiences": "x", "jku": "y"}], "unknown identity provider keys"),
        ([{"issuer": CLERK, "audiences": "x"}] * 2, "each issuer may be configured once"),
        ({"issuer": CLERK}, "expected a list of tables"),
        ("not json", "expected a JSON array"),
    ],
)
def test_bad_providers_stop_the_node_naming_the_setting(providers: object, message: str) -> None:
    raw = providers if isinstance(providers, str) else json.dumps(providers)
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        load_settings(None, {"CHORUS_IDENTITY_PROVIDERS": raw})
    assert "CHORUS_IDENTITY_PROVIDERS" in str(refused.value)
