"""The WebSocket gateway over non-blocking sockets: wsproto for the HTTP upgrade, frames parsed
in place (`_frames`), and a batched outbound path.

`Gateway` accepts clients and hands each open WebSocket to a `Handler` made
by the chat logic; `Connection.send` / `send_frame` queue bytes that the
node's `Flusher` writes with one non-blocking send per connection per round.
`text_frame` builds a broadcast frame once for every recipient.
"""

from ._connection import CLOSE_TIMEOUT as CLOSE_TIMEOUT
from ._connection import READ_BUDGET as READ_BUDGET
from ._connection import Connection as Connection
from ._connection import Handler as Handler
from ._connection import NewHandler as NewHandler
from ._gateway import Gateway as Gateway
from ._gateway import GatewayConfig as GatewayConfig
from ._gateway import Readiness as Readiness
from ._outbox import Fanout as Fanout
from ._outbox import Flusher as Flusher
from ._outbox import Outbox as Outbox
from ._wire import text_frame as text_frame
