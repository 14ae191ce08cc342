"""`Admission`: the one rule deciding whether a new client connection may stay open.

Both listeners (the HTTP API and the WebSocket gateway) ask the node's one
`Admission` about every socket they accept and give the `Ticket` back when it
closes, so the caps are per node, over both.
"""

from __future__ import annotations

import enum
import ipaddress
import resource

import attrs
import structlog

from chorus.metrics import CLIENT_CONNECTIONS, CONNECTIONS_REFUSED

from ._proxies import TrustedProxies, parse_address

_log = structlog.get_logger("chorus.admission")

RECOVERY = 0.9
"""A limit's episode ends (and is logged as over) once use falls to this share of the limit,
so a node hovering at its limit logs one episode, not one per connection."""
IPV6_PREFIX = 64
"""IPv6 clients are counted per /64: one subscriber usually holds a whole /64."""


class Listener(enum.StrEnum):
    """Which listener accepted a connection (a metrics label)."""

    HTTP = "http"
    GATEWAY = "gateway"


class Refusal(enum.StrEnum):
    """Why a connection was refused (a metrics label: these values only)."""

    PER_ADDRESS = "per_address"
    """The client's address (its /64 for IPv6) holds `max_connections_per_address`."""
    TOTAL = "total"
    """The node holds `max_connections`."""
    FILE_LIMIT = "file_limit"
    """The node is within `reserved_file_descriptors` of its open-file limit."""
    OUT_OF_DESCRIPTORS = "out_of_descriptors"
    """`accept()` itself failed with EMFILE/ENFILE: the connection was shed at once."""


@attrs.frozen(kw_only=True)
class ConnectionLimits:
    """The admission settings (see docs/operations.md, "Connection limits")."""

    max_connections: int = 10_000
    max_connections_per_address: int = 1_000
    reserved_file_descriptors: int = 128
    trusted_proxies: tuple[str, ...] = ()


def open_file_limit() -> int | None:
    """The process's soft RLIMIT_NOFILE; None if unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_file_limit() -> None:
    """Raise the soft open-file limit to the hard one (as nginx or Go do), logging both.

    The soft limit is often 1024 while the hard one is far higher; every
    client connection costs a descriptor.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            _log.warning("admission.file_limit_not_raised", soft=soft, hard=hard, error=str(exc))
            return
    _log.info("admission.file_limit", soft=hard if soft != hard else soft, hard=hard)


@attrs.define(eq=False)
class Ticket:
    """An admitted connection's place; give it back with `release()` when its socket closes."""

    _admission: Admission
    listener: Listener
    address: str | None
    """The key its address is counted under; None for a trusted proxy (not counted)."""
    _released: bool = False

    def release(self) -> None:
        """Free the place (idempotent)."""
        if not self._released:
            self._released = True
            self._admission._release(self)


class Admission:
    """Per-node connection caps: per client address, in total, and by open-file headroom.

    `admit` answers at once from counters (no system call), so a listener
    can ask it for every accepted socket. The file cap is the soft
    RLIMIT_NOFILE read at construction minus `reserved_file_descriptors`
    (the store, Redis, logs, listeners and refusals in progress use those);
    it is compared with the node's own count of client sockets, which
    includes sockets being refused. Each limit logs one warning when first
    hit and one line when use has fallen back below `RECOVERY` of it.
    Connections from trusted proxies count toward the totals but not
    toward any address.
    """

    def __init__(self, limits: ConnectionLimits, *, file_limit: int | None = None) -> None:
        self.limits = limits
        self.proxies = TrustedProxies(limits.trusted_proxies)
        self.file_limit = open_file_limit() if file_limit is None else file_limit
        self.file_cap = (
            None if self.file_limit is None else self.file_limit - limits.reserved_file_descriptors
        )
        """Client sockets the node may hold before refusing for lack of descriptors."""
        self.open = 0
        """Admitted connections, both listeners."""
        self.refusing = 0
        """Refused sockets still open (being answered 503)."""
        self._per_address: dict[str, int] = {}
        self._reached: set[Refusal] = set()
        self._full_addresses: set[str] = set()
        """Addresses at their cap that were refused; at most max_connections / per-address cap."""
        if self.file_cap is not None and self.file_cap < 1:
            _log.error(
                "admission.no_file_headroom",
                open_file_limit=self.file_limit,
                reserved=limits.reserved_file_descriptors,
            )

    def admit(self, listener: Listener, peer: str) -> Ticket | Refusal:
        """A place for a connection from TCP peer `peer` (an IP address text), or why not."""
        limits = self.limits
        if self.file_cap is not None and self.open + self.refusing >= self.file_cap:
            return self._refuse(listener, Refusal.FILE_LIMIT)
        if self.open >= limits.max_connections:
            return self._refuse(listener, Refusal.TOTAL)
        address = None if self.proxies.trusts(peer) else address_key(peer)
        if address is not None:
            held = self._per_address.get(address, 0)
            if held >= limits.max_connections_per_address:
                if address not in self._full_addresses:
                    self._full_addresses.add(address)
                    _log.warning(
                        "admission.address_limit_reached",
                        address=address,
                        limit=limits.max_connections_per_address,
                    )
                return self._refuse(listener, Refusal.PER_ADDRESS, log=False)
            self._per_address[address] = held + 1
        self.open += 1
        CLIENT_CONNECTIONS.labels(listener).inc()
        return Ticket(self, listener, address)

    def shed(self, listener: Listener) -> None:
        """Count (and log once) a connection dropped because `accept()` ran out of descriptors."""
        self._refuse(listener, Refusal.OUT_OF_DESCRIPTORS)

    def refusal_started(self) -> None:
        """A refused socket stays open a moment (answered, then drained): it holds a descriptor."""
        self.refusing += 1

    def refusal_finished(self) -> None:
        self.refusing -= 1
        if self._reached:
            self.check_recovery()

    def _refuse(self, listener: Listener, reason: Refusal, *, log: bool = True) -> Refusal:
        CONNECTIONS_REFUSED.labels(listener, reason).inc()
        if log and reason not in self._reached:
            self._reached.add(reason)
            _log.warning(
                "admission.limit_reached",
                reason=str(reason),
                listener=str(listener),
                open=self.open,
                limit=self._limit_of(reason),
                open_file_limit=self.file_limit,
            )
        return reason

    def _limit_of(self, reason: Refusal) -> int | None:
        if reason is Refusal.TOTAL:
            return self.limits.max_connections
        if reason is Refusal.FILE_LIMIT:
            return self.file_cap
        return None

    def _release(self, ticket: Ticket) -> None:
        self.open -= 1
        CLIENT_CONNECTIONS.labels(ticket.listener).dec()
        address = ticket.address
        if address is not None:
            held = self._per_address.pop(address) - 1
            if held:
                self._per_address[address] = held
            if address in self._full_addresses and held < _recovered(
                self.limits.max_connections_per_address
            ):
                self._full_addresses.discard(address)
                _log.info("admission.address_limit_recovered", address=address, open=held)
        if self._reached:
            self.check_recovery()

    def check_recovery(self) -> None:
        """Log the end of each limit episode whose use has fallen back (see `RECOVERY`)."""
        in_use = self.open + self.refusing
        for reason in list(self._reached):
            limit = self._limit_of(reason)
            if limit is None or in_use < _recovered(limit):
                self._reached.discard(reason)
                _log.info("admission.limit_recovered", reason=str(reason), open=self.open)


def _recovered(limit: int) -> int:
    return max(1, int(limit * RECOVERY))


def address_key(peer: str) -> str:
    """What a peer is counted under: its IPv4 address, or its IPv6 /64."""
    address = parse_address(peer)
    if address is None:
        return peer  # not an IP address (a Unix socket path): itself
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
