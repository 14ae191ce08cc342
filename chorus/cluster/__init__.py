"""Cluster state across nodes: the `Bus` (`LocalBus`, `RedisBus`), presence, rate limits."""

from ._bus import Bus as Bus
from ._bus import Deliver as Deliver
from ._bus import LocalBus as LocalBus
from ._bus import Subscription as Subscription
from ._client import RespClient as RespClient
from ._commands import Commands as Commands
from ._commands import CoredisCommands as CoredisCommands
from ._connection import ReplyError as ReplyError
from ._presence import LocalDirectory as LocalDirectory
from ._presence import PresenceDirectory as PresenceDirectory
from ._presence import RedisDirectory as RedisDirectory
from ._ratelimit import ReconciledRateLimiter as ReconciledRateLimiter
from ._ratelimit import RedisRateLimiter as RedisRateLimiter
from ._redis import RedisBus as RedisBus
from ._redis import open_redis_bus as open_redis_bus
