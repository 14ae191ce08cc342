"""Connection admission: caps per client address and per node, and open-file headroom.

Both listeners of a node (the HTTP API and the WebSocket gateway) accept
through `accept_clients` and share one `Admission`, so a client address, the
node and its open-file limit are capped over both. `TrustedProxies` says
when `X-Forwarded-For` names the client (docs/operations.md, "Connection limits").
"""

from ._accept import REFUSAL as REFUSAL
from ._accept import accept_clients as accept_clients
from ._accept import open_listener as open_listener
from ._policy import Admission as Admission
from ._policy import ConnectionLimits as ConnectionLimits
from ._policy import Listener as Listener
from ._policy import Refusal as Refusal
from ._policy import Ticket as Ticket
from ._policy import raise_open_file_limit as raise_open_file_limit
from ._proxies import TrustedProxies as TrustedProxies
from ._proxies import parse_networks as parse_networks
