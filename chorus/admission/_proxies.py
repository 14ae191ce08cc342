"""`TrustedProxies`: which TCP peers may say who the client is (`X-Forwarded-For`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> IPAddress | None:
    """The address in `text` (an IPv4-mapped IPv6 address as IPv4), or None if it is not one."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses and CIDR blocks (`10.0.0.0/8`, `::1`); ValueError names a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR block") from None
    return tuple(networks)


class TrustedProxies:
    """The reverse proxies (load balancers) whose `X-Forwarded-For` header is believed.

    Only a connection whose TCP peer is one of them has its client address
    taken from the header; anyone else could write anything there. The
    client is the rightmost entry that is not itself a trusted proxy: each
    proxy appends the address it received the request from, so entries
    left of that were written by the client and prove nothing.
    """

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self._networks = parse_networks(entries)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, peer: str) -> bool:
        """True if the TCP peer `peer` (an IP address text) is a trusted proxy."""
        address = parse_address(peer)
        return address is not None and self._trusted(address)

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)

    def client_address(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address: from the `X-Forwarded-For` values if `peer` is trusted.

        `forwarded_for` holds the header's values in the order received (a
        request may repeat the header). No header, an empty one or one with
        any entry that is not an IP address gives `peer` itself; so does an
        untrusted peer, whatever it sent.
        """
        if not self.trusts(peer):
            return peer
        addresses = []
        for value in forwarded_for:
            for entry in value.split(","):
                address = parse_address(entry)
                if address is None:
                    return peer
                addresses.append(address)
        if not addresses:
            return peer
        client = next((a for a in reversed(addresses) if not self._trusted(a)), addresses[0])
        return str(client)  # addresses[0]: a chain of trusted proxies only, the first is the client
