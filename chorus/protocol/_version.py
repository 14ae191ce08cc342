"""Protocol versioning: the WebSocket subprotocol names the version of the frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

SUBPROTOCOL: Final = "chorus.v1"
"""The `Sec-WebSocket-Protocol` value of this protocol version."""


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """The subprotocol to accept from a client's offer: `SUBPROTOCOL` if offered, else None.

    Names compare exactly (subprotocol tokens are case-sensitive). None means
    no version in common: the server refuses the upgrade.
    """
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
