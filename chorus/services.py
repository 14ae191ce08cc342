"""`Services`: what one node's HTTP API and gateway share (built by `chorus.node`)."""

from __future__ import annotations

import attrs

from chorus.actors.connection import Sessions
from chorus.actors.memberships import Memberships
from chorus.actors.presence import Presence
from chorus.actors.rooms import Rooms
from chorus.admission import Admission
from chorus.auth import AuthService
from chorus.config import Settings
from chorus.gateway import Gateway
from chorus.persistence import Store
from chorus.ratelimit import LocalRateLimiter, RateLimiter


@attrs.frozen(kw_only=True)
class Services:
    settings: Settings
    store: Store
    auth: AuthService
    rooms: Rooms
    presence: Presence
    sessions: Sessions
    memberships: Memberships
    """Tells users' open connections, on every node, about rooms they joined or left."""
    admission: Admission
    """Admits (or refuses) every client connection of both listeners (`chorus.admission`)."""
    gateway: Gateway | None = None
    """This node's gateway, if it runs one (its bound port is what clients need)."""
    limiter: RateLimiter = attrs.field(factory=LocalRateLimiter)
    """Rate limits (in Redis when nodes share it): e.g. auth attempts per client IP address."""

    @property
    def auth_rate(self) -> float:
        """Register, login and refresh attempts per second per client IP (`limit:auth:<ip>`)."""
        return self.settings.auth_attempts_per_minute / 60

    @property
    def auth_burst(self) -> int:
        """How many such attempts one address may make at once."""
        return self.settings.auth_attempts_per_minute

    @property
    def gateway_urls(self) -> list[str]:
        """Where clients connect, as handed out by `GET /api/v1/gateway`."""
        settings = self.settings
        if not settings.public_gateway_urls and self.gateway and self.gateway.address:
            host, port = self.gateway.address
            return [f"ws://{host}:{port}/"]
        return settings.gateway_urls
