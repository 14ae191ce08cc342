"""One Chorus node: its services and its root supervision tree."""

from __future__ import annotations

import functools
import gc
import secrets
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import structlog
import trio

from chorus import protocol
from chorus.actors import Registry
from chorus.actors.connection import ChatConnection, ChatContext, ChatLimits, Sessions
from chorus.actors.devices import DEVICES_TOPIC, DeviceMail
from chorus.actors.files import FILES_TOPIC, FileNotices, FilePipeline, PipelineLimits
from chorus.actors.housekeeping import Housekeeper, HousekeepingLimits
from chorus.actors.memberships import MEMBERSHIPS_TOPIC, Memberships
from chorus.actors.notifications import NOTIFICATIONS_TOPIC, Notifier
from chorus.actors.presence import Presence
from chorus.actors.room import RoomConfig
from chorus.actors.rooms import Rooms
from chorus.admission import Admission, ConnectionLimits, raise_open_file_limit
from chorus.auth import (
    AuthService,
    ExternalSignIn,
    JwksCache,
    LocalSessionCache,
    Passwords,
    ProviderTokens,
    RedisSessionCache,
    SessionCache,
    TokenSigner,
    new_signing_key,
)
from chorus.backup import DATABASE_FILE as DATABASE_FILE
from chorus.backup import FILES_DIR as FILES_DIR
from chorus.backup import NODE_NAME_FILE as NODE_NAME_FILE
from chorus.backup import serving_lock
from chorus.cluster import (
    Bus,
    ReconciledRateLimiter,
    RedisBus,
    RedisDirectory,
    RedisRateLimiter,
    open_redis_bus,
)
from chorus.config import Settings
from chorus.files import ClamdScanner, LocalStorage, NoScanner, Scanner, Storage, UrlSigner
from chorus.gateway import Connection, Gateway, GatewayConfig, Readiness
from chorus.http import HttpServer, page_origins, serve_http
from chorus.persistence import (
    Store,
    StoreError,
    now_ms,
    open_postgres_store,
    open_sqlite_store,
)
from chorus.ratelimit import ImmediateRateLimiter, LocalRateLimiter, RateLimiter
from chorus.readiness import store_answers
from chorus.runtime import SETTINGS_TOPIC, LiveSettings, RuntimeValues
from chorus.services import FileServices, Services, UploadSlots
from chorus.supervisors import ChildSpec, Strategy, Supervisor, supervisor_child
from chorus.tls import ServerTls, server_tls

_log = structlog.get_logger("chorus.node")

SIGNING_KEY_SECRET = "token-signing-key"
"""Name of the token signing key among the store's shared secrets."""
FILE_URL_KEY_SECRET = "file-url-key"
"""Name of the key that signs the nodes' own file download URLs, among the shared secrets."""
SPOOL_DIR = "spool"


@attrs.frozen(kw_only=True)
class Addresses:
    """Where a running node listens (ports resolved when configured as 0); None: role off."""

    http: tuple[str, int] | None
    gateway: tuple[str, int] | None


REVOCATIONS_TOPIC = "sessions:revoked"
"""Bus topic on which a node announces a revoked session, so every node closes its sockets."""


class Node:
    """Builds a node's services on an open store (and bus), and its supervision tree.

    The tree (one_for_one): the notifier, memberships, the audit retention,
    the run-time settings' reload and the revocation sweep (both poll the
    store every `store_poll_interval`), the presence heartbeat (with Redis),
    "chat" (rest_for_one: rooms, presence, the gateway), file housekeeping,
    the file pipeline and the HTTP API; the gateway, and the file actors with
    the API, only where the node's `role` includes them. A crash
    restarts what depends on what crashed, and nothing else. Stopping it stops the HTTP
    server (requests in flight get `shutdown_grace` seconds to finish), then
    the gateway (clients still connected are told to reconnect with 1001; a
    graceful stop has sent them away with 4007 already), then presence and
    rooms, whose actors finish what is queued, then the notifier. The store
    and the bus are not in the tree: they are open before it starts and close
    after it stops (see `serve` and docs/decisions.md).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        signing_key: bytes,
        file_url_key: bytes,
        bus: Bus | None = None,
        passwords: Passwords | None = None,
    ) -> None:
        self.settings = settings
        self._bus = bus
        self.sessions = Sessions()
        self.live = LiveSettings(
            settings,
            store,
            bus,
            reload_interval=settings.store_poll_interval,
            on_change=self._settings_changed,
        )
        self.notifier = _notifier(settings, self.sessions, bus)
        # one_for_one of temporary actors, one per room or online user: independent,
        # never restarted, so their crashes never spend these budgets (Rooms, Presence).
        rooms_supervisor = Supervisor("rooms")
        presence_supervisor = Supervisor("presence")
        registry = Registry()
        rooms = Rooms(
            rooms_supervisor,
            registry,
            store,
            RoomConfig(resume_limit=settings.resume_limit),
            bus,
            self.notifier.notify,
        )
        self.memberships = Memberships(self.sessions.of_user, rooms, bus)
        self.device_mail = DeviceMail(self.sessions.of_user, bus)
        self._directory = _presence_directory(bus, rooms.origin)
        presence = Presence(presence_supervisor, registry, store, rooms, directory=self._directory)
        limiter = _rate_limiter(bus)
        self._send_limiter = _send_limiter(bus)
        auth = AuthService(
            store,
            TokenSigner(signing_key, access_ttl=settings.access_token_ttl),
            passwords if passwords is not None else Passwords(),
            refresh_ttl=settings.refresh_token_ttl,
            session_max_age=settings.session_max_age,
            on_revoked=self._revoke_everywhere,
            limiter=limiter,
            two_factor_key=bytes.fromhex(settings.two_factor_key) or None,
            two_factor_attempts_per_minute=settings.two_factor_attempts_per_minute,
            challenge_ttl=settings.two_factor_challenge_ttl,
            audit_retention_days=lambda: self.live.current.audit_retention_days,
            session_cache=_session_cache(settings, bus),
        )
        self._audit = auth.audit
        external = _external_sign_in(settings, store, auth)
        self._chat = ChatContext(
            auth=auth,
            external=external,
            store=store,
            rooms=rooms,
            presence=presence,
            sessions=self.sessions,
            limits=_chat_limits(settings),
            live=self.live,
            limiter=limiter,
            send_limiter=self._send_limiter,
        )
        self._store = store
        self.admission = Admission(_connection_limits(settings))
        self.tls = server_tls(settings.tls_cert_file, settings.tls_key_file)
        self.gateway = _gateway(
            settings, self._new_connection, self.ready, self.admission, self.tls
        )
        files = file_services(settings, file_url_key)
        self.file_notices = FileNotices(self.sessions.of_user, bus)
        self.pipeline = FilePipeline(
            store,
            files,
            PipelineLimits(
                max_pixels=settings.image_max_pixels, max_frames=settings.image_max_frames
            ),
            on_done=self.file_notices.checked,
        )
        self.housekeeper = Housekeeper(
            store,
            files,
            HousekeepingLimits(
                interval=settings.files_housekeeping_interval,
                unattached_ttl=settings.files_unattached_ttl,
                retention=settings.files_retention,
            ),
        )
        self.services = Services(
            settings=settings,
            store=store,
            auth=auth,
            external=external,
            rooms=rooms,
            presence=presence,
            sessions=self.sessions,
            memberships=self.memberships,
            device_mail=self.device_mail,
            gateway=self.gateway,
            limiter=limiter,
            admission=self.admission,
            files=files,
            pipeline=self.pipeline,
            tls=self.tls,
            live=self.live,
        )
        self.stopping = False
        self.stopped = trio.Event()
        self.tree = self._build_tree(rooms, rooms_supervisor, presence_supervisor, presence)

    def _build_tree(
        self,
        rooms: Rooms,
        rooms_supervisor: Supervisor,
        presence_supervisor: Supervisor,
        presence: Presence,
    ) -> Supervisor:
        """The node's tree; each strategy follows who holds state in whom (docs/decisions.md)."""
        # rest_for_one: connections hold subscriptions in room actors and report to
        # presence actors, so losing either must restart the gateway (its clients
        # resume), while a gateway restart leaves rooms and presence alone.
        # The rooms' resync timer comes first: room actors hold entries in it.
        chat = [
            ChildSpec(id="room-resyncs", start=rooms.resyncs.run),
            supervisor_child(rooms_supervisor),
            supervisor_child(presence_supervisor),
        ]
        if self.gateway is not None:
            chat.append(supervisor_child(self.gateway.supervisor()))
        # one_for_one: the node's children share the store and the bus but hold no
        # state in each other (rooms only queue to the notifier; the heartbeat and
        # HTTP requests look rooms and presence up anew), so a crash restarts only
        # the child that crashed. The notifier is first up and last down, so what
        # rooms queue for it while stopping still goes out. Memberships only
        # drains a queue of changes from other nodes and looks connections and
        # rooms up for each, like the notifier; device mail likewise for wake-ups.
        # The settings reload and the revocation sweep only read the store and
        # act on what they find; a crash of either loses nothing.
        children = [
            ChildSpec(id="notifier", start=self.notifier.run),
            ChildSpec(id="memberships", start=self.memberships.run),
            ChildSpec(id="device-mail", start=self.device_mail.run),
            # Retention: every node prunes; deletes are idempotent, so that is only
            # redundant work, in small batches.
            ChildSpec(id="audit-retention", start=self._audit.run),
            ChildSpec(id="runtime-settings", start=self.live.run),
            ChildSpec(id="revocation-sweep", start=self._sweep_revoked),
        ]
        if self._directory is not None:
            heartbeat = functools.partial(self._directory.run, presence.reannounce)
            children.append(ChildSpec(id="presence-heartbeat", start=heartbeat))
        if isinstance(self._send_limiter, ReconciledRateLimiter):
            children.append(ChildSpec(id="send-limits", start=self._send_limiter.run))
        children.append(supervisor_child(Supervisor("chat", chat, strategy=Strategy.REST_FOR_ONE)))
        if self.settings.role in ("all", "api"):
            # Uploads arrive over HTTP: the pipeline checks those spooled on this node.
            # Housekeeping comes first: at start it clears the spool of what a crash
            # left, which must happen before uploads stream in again.
            children.append(ChildSpec(id="housekeeping", start=self.housekeeper.run))
            children.append(ChildSpec(id="files", start=self.pipeline.run))
            grace = self.settings.shutdown_grace  # in-flight requests finish (serve_http)
            children.append(ChildSpec(id="http", start=self._serve_http, shutdown=grace))
        return Supervisor("node", children, strategy=Strategy.ONE_FOR_ONE)

    async def ready(self) -> bool:
        """Whether the node serves clients now: not stopping, and the store answers.

        The gateway's `/readyz` asks this. The tree starts the gateway before
        the HTTP API and subscribes to the bus before either, so once a probe
        can reach the node at all, joins and resumes are served.
        """
        return not self.stopping and await store_answers(self._store)

    def _new_connection(self, conn: Connection) -> ChatConnection:
        return ChatConnection(conn, self._chat)

    async def _serve_http(self, *, task_status: trio.TaskStatus[HttpServer]) -> None:
        await serve_http(self.services, task_status=task_status)

    async def _revoke_everywhere(self, session_id: str) -> None:
        """Close the session's sockets here, and tell the other nodes to close theirs."""
        self.sessions.revoke(session_id)
        if self._bus is not None:
            try:
                await self._bus.publish(REVOCATIONS_TOPIC, session_id.encode())
            except Exception as exc:  # the bus is best effort; tokens are dead regardless
                _log.warning("node.revocation_not_published", error=str(exc))

    def _settings_changed(self, before: RuntimeValues, after: RuntimeValues) -> None:
        """Open sockets get a new server notice at once (new ones get it after `ready`)."""
        if after.server_notice and after.server_notice != before.server_notice:
            self.sessions.tell_everyone(protocol.Notice(code="info", message=after.server_notice))

    async def _sweep_revoked(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Every `store_poll_interval` seconds, close the sockets (and drop the cached
        sessions) of sessions `chorus admin` revoked in the store: no bus told this node."""
        task_status.started()
        auth = self.services.auth
        while True:
            await trio.sleep(self.settings.store_poll_interval)
            try:
                await auth.forget_revoked(self.sessions.session_ids())
            except StoreError as exc:  # the store is away: the next pass catches up
                _log.warning("node.revocation_sweep_failed", error=str(exc))

    def _revoked_elsewhere(self, payload: bytes) -> None:
        self.sessions.revoke(payload.decode(errors="replace"))

    async def run(
        self, *, task_status: trio.TaskStatus[Addresses] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the tree; readiness value: the bound addresses. Returns after `request_stop`."""
        subscriptions = []
        try:
            # Before anything serves: the stored values, not the defaults, apply from the start.
            await self.live.reload()
            if self._bus is not None:
                bus = self._bus
                subscriptions.append(
                    await bus.subscribe(REVOCATIONS_TOPIC, self._revoked_elsewhere)
                )
                subscriptions.append(
                    await bus.subscribe(NOTIFICATIONS_TOPIC, self.notifier.delivered_elsewhere)
                )
                subscriptions.append(
                    await bus.subscribe(MEMBERSHIPS_TOPIC, self.memberships.delivered_elsewhere)
                )
                subscriptions.append(
                    await bus.subscribe(FILES_TOPIC, self.file_notices.delivered_elsewhere)
                )
                subscriptions.append(
                    await bus.subscribe(DEVICES_TOPIC, self.device_mail.delivered_elsewhere)
                )
                subscriptions.append(
                    await bus.subscribe(SETTINGS_TOPIC, self.live.changed_elsewhere)
                )
            async with trio.open_nursery() as nursery:
                await nursery.start(self.tree.run)
                http: HttpServer | None = self.tree.which_child("http")
                gateway = self.gateway.address if self.gateway is not None else None
                if self.gateway is not None:
                    # The web client's pages open WebSockets from the HTTP API's origin.
                    http_address = http.address if http is not None else None
                    self.gateway.trust_origins(page_origins(self.settings, http_address))
                task_status.started(
                    Addresses(http=http.address if http is not None else None, gateway=gateway)
                )
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                for subscription in subscriptions:
                    await subscription.unsubscribe()
            self.stopped.set()

    def request_stop(self) -> None:
        """Graceful stop: the tree shuts down in reverse order and `run` returns.

        At once, the gateway refuses new WebSockets, reports not ready and
        closes its WebSockets with 4007 and a jittered delay hint (`Gateway.drain`),
        so clients and load balancers go elsewhere while the node finishes its
        stores and HTTP requests.
        """
        self.stopping = True
        if self.gateway is not None:
            self.gateway.drain()
        self.tree.request_stop()


def _notifier(settings: Settings, sessions: Sessions, bus: Bus | None) -> Notifier:
    return Notifier(
        sessions.of_user,
        bus=bus,
        webhook_url=settings.notification_webhook_url,
        webhook_secret=settings.notification_webhook_secret,
    )


def _presence_directory(bus: Bus | None, node_id: str) -> RedisDirectory | None:
    """Cluster state lives in the Redis the bus uses; a lone node keeps it in memory (None)."""
    return RedisDirectory(bus.client, bus.commands, node_id) if isinstance(bus, RedisBus) else None


def _rate_limiter(bus: Bus | None) -> RateLimiter:
    """Limits shared by every node through Redis, or this node's own."""
    return RedisRateLimiter(bus.client) if isinstance(bus, RedisBus) else LocalRateLimiter()


def _send_limiter(bus: Bus | None) -> ImmediateRateLimiter:
    """The per-user write limit: decided locally, shared through Redis without a round trip
    per message (`ReconciledRateLimiter`), or this node's own."""
    if isinstance(bus, RedisBus):
        return ReconciledRateLimiter(bus.commands)
    return LocalRateLimiter()


def _session_cache(settings: Settings, bus: Bus | None) -> SessionCache:
    """Sessions cached in the Redis all nodes share, or in this process for a lone node.

    Not both: another node's revocation reaches this process only later (on
    the bus), and a revoked session must be refused everywhere at once.
    """
    if isinstance(bus, RedisBus):
        return RedisSessionCache(bus.commands, ttl=settings.session_cache_ttl)
    return LocalSessionCache(
        max_entries=settings.session_cache_entries, ttl=settings.session_cache_ttl
    )


def _chat_limits(settings: Settings) -> ChatLimits:
    return ChatLimits(
        heartbeat_interval=settings.heartbeat_interval,
        auth_timeout=settings.auth_timeout,
        frames_per_second=settings.frames_per_second,
        frame_burst=settings.frame_burst,
        auth_attempts_per_minute=settings.auth_attempts_per_minute,
    )


def _connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=settings.max_connections,
        max_connections_per_address=settings.max_connections_per_address,
        reserved_file_descriptors=settings.reserved_file_descriptors,
        trusted_proxies=settings.trusted_proxies,
    )


def _gateway(
    settings: Settings,
    new_connection: Callable[[Connection], ChatConnection],
    ready: Readiness,
    admission: Admission,
    tls: ServerTls | None,
) -> Gateway | None:
    """The WebSocket gateway, if the node's role includes it."""
    if settings.role not in ("all", "gateway"):
        return None
    config = GatewayConfig(
        host=settings.gateway_host,
        port=settings.gateway_port,
        allowed_origins=settings.allowed_origins,
        handshake_timeout=settings.auth_timeout,
        max_outbox_bytes=settings.max_outbox_bytes,
        reconnect_window=settings.drain_reconnect_window,
        tls=tls.context if tls is not None else None,
        metrics_token=settings.metrics_token,
    )
    return Gateway(config, new_connection, ready, admission=admission)


@asynccontextmanager
async def open_node_store(settings: Settings, *, serving: bool = False) -> AsyncIterator[Store]:
    """The store the settings select: PostgreSQL if `database_url` is set, else SQLite.

    `database_url` selects PostgreSQL when it starts with `postgresql://` or
    `postgres://`; otherwise the node uses SQLite in its data directory. A
    `serving` node opens its whole PostgreSQL pool (`database_pool_size`) before
    this yields, each connection warmed up (`postgres.warmup`): connections opened
    on demand, or cold, made a cluster's first busy second its slowest
    (docs/benchmarks.md, "Issue #15, session 14"). A tool opens one, on demand.
    """
    if is_postgres_url(settings.database_url):
        pool = settings.database_pool_size if serving else 1
        async with open_postgres_store(
            settings.database_url,
            min_size=pool,
            max_size=settings.database_pool_size,
            warm_up=serving,
        ) as pg_store:
            yield pg_store
        return
    # Owner-only: the database holds password hashes and the signing key.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = settings.data_dir / DATABASE_FILE
    async with open_sqlite_store(path, commit_window=settings.commit_window) as store:
        yield store


@asynccontextmanager
async def open_node_bus(settings: Settings) -> AsyncIterator[Bus | None]:
    """The Redis bus when `redis_url` is set; None for a node on its own."""
    if not settings.redis_url:
        yield None
        return
    async with open_redis_bus(settings.redis_url) as bus:
        yield bus


async def load_signing_key(store: Store) -> bytes:
    """The deployment's token signing key: generated by the first node, kept in the store.

    Every node on one database signs and verifies with the same key without
    copying files around; a new database gets a new key (signing out everyone).
    """
    return await store.shared_secret(SIGNING_KEY_SECRET, new_signing_key(), now_ms())


async def load_file_url_key(store: Store) -> bytes:
    """The deployment's file URL key, like `load_signing_key`: every node verifies every URL."""
    return await store.shared_secret(FILE_URL_KEY_SECRET, secrets.token_bytes(32), now_ms())


def load_node_name(data_dir: Path) -> str:
    """This node's stable name, made up once and kept in `data_dir/node-id`.

    Files being checked are recorded with the name of the node whose spool
    holds them, so a restarted node resumes its own (`Store.unfinished_files`).
    Nodes must not share a data directory (each has its own spool).
    """
    path = data_dir / NODE_NAME_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = "node-" + secrets.token_hex(8)
    try:
        with path.open("x") as file:  # two processes racing: the first one's name stays
            file.write(name + "\n")
    except FileExistsError:
        return path.read_text().strip()
    return name


def file_services(settings: Settings, url_key: bytes) -> FileServices:
    """Storage, scanner and URL signers as the settings select them (blocking: start-up only).

    The S3 and CloudFront modules (boto3) are imported only when selected.
    Raises `ValueError` or `OSError` for a CDN key that does not load.
    """
    spool = settings.data_dir / SPOOL_DIR
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    scanner: Scanner = (
        ClamdScanner(settings.clamd_address) if settings.scanner == "clamd" else NoScanner()
    )
    storage: Storage
    s3 = cdn = None
    if settings.storage == "local":
        storage = LocalStorage(settings.data_dir / FILES_DIR)
    else:
        from chorus.files import CdnUrlSigner, S3Storage

        storage = s3 = S3Storage(
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            region=settings.s3_region or None,
            endpoint_url=settings.s3_endpoint_url or None,
        )
        if settings.cdn_domain:
            pem = Path(settings.cdn_private_key_file).read_bytes()
            cdn = CdnUrlSigner(settings.cdn_domain, settings.cdn_key_id, pem)
    return FileServices(
        node_name=load_node_name(settings.data_dir),
        spool_dir=spool,
        storage=storage,
        scanner=scanner,
        url_signer=UrlSigner(url_key),
        uploads=UploadSlots(settings.files_concurrent_uploads),
        s3=s3,
        cdn=cdn,
    )


def is_postgres_url(url: str) -> bool:
    """True when `url` selects the PostgreSQL store (else SQLite is used)."""
    return url.startswith(("postgresql://", "postgres://"))


def tune_gc_after_startup() -> None:
    """Move start-up objects out of the collector's way and collect young objects less often.

    GC pauses dominated the latency tail of an earlier trio server on this
    hardware (DESIGN.md §8); frozen objects are never scanned again.
    """
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 50_000), max(gen1, 20), max(gen2, 100))


async def serve(
    settings: Settings, *, task_status: trio.TaskStatus[Addresses] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a node until SIGINT or SIGTERM, then shut down gracefully (a second signal: now).

    First raises the soft open-file limit to the hard one: every client costs a descriptor.
    """
    raise_open_file_limit()
    with serving_lock(settings.data_dir):  # `chorus restore` refuses a data dir in use
        await _serve(settings, task_status)


async def _serve(settings: Settings, task_status: trio.TaskStatus[Addresses]) -> None:
    async with open_node_store(settings, serving=True) as store, open_node_bus(settings) as bus:
        if settings.scanner == "none":
            _log.warning(
                "node.files_not_scanned",
                message="files are not virus-scanned; their metadata says unscanned"
                " (set scanner = clamd, see docs/operations.md)",
            )
        node = Node(
            settings,
            store,
            signing_key=await load_signing_key(store),
            file_url_key=await load_file_url_key(store),
            bus=bus,
        )
        with (
            trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
            trio.open_signal_receiver(signal.SIGHUP) as hangups,
        ):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signals, signals, node, nursery.cancel_scope)
                nursery.start_soon(_reload_on_hangups, hangups, node.tls)
                addresses: Addresses = await nursery.start(node.run)
                tune_gc_after_startup()
                _log.info("node.ready", http=addresses.http, gateway=addresses.gateway)
                task_status.started(addresses)
                await node.stopped.wait()
                nursery.cancel_scope.cancel()


async def _stop_on_signals(
    signals: AsyncIterator[int], node: Node, everything: trio.CancelScope
) -> None:
    """First signal: graceful stop within the shutdown grace; second signal: stop now."""
    async for signum in signals:
        if node.stopping:
            _log.warning("node.stopping_now", signal=signal.Signals(signum).name)
            everything.cancel()
            return
        _log.info("node.stopping", signal=signal.Signals(signum).name)
        node.request_stop()
        everything.deadline = trio.current_time() + node.settings.shutdown_grace


async def _reload_on_hangups(hangups: AsyncIterator[int], tls: ServerTls | None) -> None:
    """SIGHUP: read the TLS certificate and key again (open connections stay as they are)."""
    async for _ in hangups:
        if tls is None:
            _log.info("node.hangup_ignored", reason="no TLS to reload")
        else:
            tls.reload()


def _external_sign_in(settings: Settings, store: Store, auth: AuthService) -> ExternalSignIn | None:
    """Sign-in with provider tokens, when `identity_providers` lists any."""
    providers = settings.identity_providers
    if not providers:
        return None
    keys = JwksCache(
        min_refresh_interval=settings.jwks_min_refresh_interval, ttl=settings.jwks_cache_ttl
    )
    return ExternalSignIn(store, auth, ProviderTokens(providers, keys), providers, clock=now_ms)
