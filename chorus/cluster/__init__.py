"""The bus that bridges actors across nodes: `Bus` protocol and an in-process `LocalBus`."""

from ._bus import Bus as Bus
from ._bus import Deliver as Deliver
from ._bus import LocalBus as LocalBus
from ._bus import Subscription as Subscription
