"""`Services`: what one node's HTTP API and gateway share (built by `chorus.node`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from chorus.actors.connection import Sessions
from chorus.actors.devices import DeviceMail
from chorus.actors.memberships import Memberships
from chorus.actors.presence import Presence
from chorus.actors.rooms import Rooms
from chorus.admission import Admission
from chorus.auth import AuthService, ExternalSignIn
from chorus.config import Settings
from chorus.files import Scanner, Storage, UrlSigner
from chorus.gateway import Gateway
from chorus.persistence import Store
from chorus.ratelimit import LocalRateLimiter, RateLimiter
from chorus.runtime import LiveSettings
from chorus.tls import ServerTls

if TYPE_CHECKING:
    from chorus.actors.files import FilePipeline
    from chorus.files import CdnUrlSigner, S3Storage


class UploadSlots:
    """Uploads each user is streaming to this node now, up to `limit` at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._busy: dict[str, int] = {}

    def take(self, user_id: str) -> bool:
        """Take one of the user's slots; False (nothing taken) when all are busy."""
        busy = self._busy.get(user_id, 0)
        if busy >= self.limit:
            return False
        self._busy[user_id] = busy + 1
        return True

    def give_back(self, user_id: str) -> None:
        """Return a slot that `take` gave."""
        busy = self._busy.pop(user_id) - 1
        if busy:
            self._busy[user_id] = busy


@attrs.frozen(kw_only=True)
class FileServices:
    """What uploads, the file pipeline and downloads share (issue #13), built from settings."""

    node_name: str
    """This node's stable name: its spool's files are found again after a restart by it."""
    spool_dir: Path
    """Where uploads are streamed before they are checked (`data_dir/spool`)."""
    storage: Storage
    """Where accepted files are kept (local directory or S3)."""
    scanner: Scanner
    """The virus scanner (`NoScanner` when `scanner = none`)."""
    url_signer: UrlSigner
    """Signs the node's own download URLs (local storage); its key is shared by all nodes."""
    s3: S3Storage | None = None
    """The same object as `storage` when files are in S3 (its URLs are presigned GETs)."""
    cdn: CdnUrlSigner | None = None
    """CloudFront URL signer, when a CDN serves the bucket (its URLs win over S3's)."""
    uploads: UploadSlots
    """Uploads in progress per user on this node (`files_concurrent_uploads`)."""


@attrs.frozen(kw_only=True)
class Services:
    settings: Settings
    store: Store
    auth: AuthService
    external: ExternalSignIn | None = None
    """Sign-in with tokens of identity providers (`identity_providers`); None without any."""
    rooms: Rooms
    presence: Presence
    sessions: Sessions
    memberships: Memberships
    device_mail: DeviceMail
    """Wakes devices' connections for to-device messages and key alerts, on every node."""
    """Tells users' open connections, on every node, about rooms they joined or left."""
    admission: Admission
    """Admits (or refuses) every client connection of both listeners (`chorus.admission`)."""
    gateway: Gateway | None = None
    """This node's gateway, if it runs one (its bound port is what clients need)."""
    files: FileServices
    """Storage, scanner and URL signing of uploaded files."""
    pipeline: FilePipeline
    """Checks uploaded files on this node (`submit` a spooled file's id)."""
    tls: ServerTls | None = None
    """The listeners' TLS (`tls_cert_file`), or None: plain HTTP."""
    live: LiveSettings
    """The run-time settings that apply now (`live.current`): read them at each use."""
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
            scheme = "wss" if self.tls is not None else "ws"
            return [f"{scheme}://{host}:{port}/"]
        return settings.gateway_urls
