"""`TrustedProxies`: X-Forwarded-For is believed from trusted peers only, read from the right."""

from __future__ import annotations

import pytest

from chorus.admission import TrustedProxies, parse_networks

PROXIES = TrustedProxies(["10.0.0.0/8", "127.0.0.2", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("10.1.2.3", ["198.51.100.7"], "198.51.100.7"),
        # The client may write anything on the left; the first untrusted from the right counts.
        ("10.1.2.3", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),
        ("10.1.2.3", ["6.6.6.6, 198.51.100.7, 10.9.9.9"], "198.51.100.7"),
        ("10.1.2.3", ["6.6.6.6", "198.51.100.7, 10.9.9.9"], "198.51.100.7"),  # repeated header
        ("10.1.2.3", ["10.4.4.4, 10.9.9.9"], "10.4.4.4"),  # proxies only: the first
        ("::ffff:10.1.2.3", ["2001:db8::1, 2a00::5"], "2a00::5"),  # IPv4-mapped peer
        # Malformed, empty or missing: the peer itself.
        ("10.1.2.3", ["198.51.100.7, not-an-ip"], "10.1.2.3"),
        ("10.1.2.3", ["198.51.100.7:443"], "10.1.2.3"),
        ("10.1.2.3", [""], "10.1.2.3"),
        ("10.1.2.3", [], "10.1.2.3"),
        # An untrusted peer's header is never believed.
        ("192.0.2.1", ["198.51.100.7"], "192.0.2.1"),
        ("127.0.0.3", ["198.51.100.7"], "127.0.0.3"),
    ],
)
def test_the_client_address(peer: str, header: list[str], client: str) -> None:
    assert PROXIES.client_address(peer, header) == client


def test_no_trusted_proxies_trusts_nobody() -> None:
    proxies = TrustedProxies()
    assert not proxies
    assert not proxies.trusts("127.0.0.1")
    assert proxies.client_address("127.0.0.1", ["198.51.100.7"]) == "127.0.0.1"


def test_entries_are_addresses_or_cidr_blocks() -> None:
    assert [str(n) for n in parse_networks([" 10.0.0.0/8", "::1", "192.168.1.7/24"])] == [
        "10.0.0.0/8",
        "::1/128",
        "192.168.1.0/24",
    ]
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300' is not an IP address or CIDR block"):
        parse_networks(["10.0.0.300"])
