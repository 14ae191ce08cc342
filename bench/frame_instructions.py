"""The protocol's share of one message in a room of 2: for instruction counts.

Usage: python bench/frame_instructions.py [--messages N]

Does, N times, the protocol work the node does for one message (see
bench/dm_instructions.py): decode the client's `send` frame, build the wire
`Message` from the stored one (`chorus.actors.events.wire_message`), build
and encode its `message` event, and the sender's `ack` from those bytes
(`protocol.encode_send_ack`, as the gateway does since session 9).
Nothing else runs: no sockets, no store, no timers, so the count does not
depend on the machine's load. Run it under valgrind twice and divide the
difference by N:

    valgrind --tool=callgrind --callgrind-out-file=X.cg \\
        .venv/bin/python bench/frame_instructions.py --messages 10000   # and 0

See docs/benchmarks.md, "Issue #15, session 8: frame checks" and "Issue #15,
session 9: the ack from the broadcast bytes".
"""

from __future__ import annotations

import argparse

import orjson

from chorus import protocol
from chorus.actors.events import wire_message
from chorus.persistence import Message

SEND = orjson.dumps(
    {"type": "send", "ref": "r-17", "room": "r_01JDQ7Z5K8", "client_id": "c-7f3a", "body": "hi"}
)
STORED = Message(
    id="m_01JDQ7Z9M2",
    room_id="r_01JDQ7Z5K8",
    seq=42,
    sender_id="u_01JDQ6ADA0",
    body="hi",
    client_id="c-7f3a",
    created_at=1_764_100_000_000,
    edited_at=None,
)


def one_message() -> None:
    """The protocol work of one message, in the order the node does it."""
    send = protocol.decode_client_frame(SEND)
    assert isinstance(send, protocol.Send)
    wire = wire_message(STORED, encrypted=False)
    event = protocol.encode(protocol.MessageEvent(message=wire))
    protocol.encode_send_ack(send.ref, send.room, wire.seq, event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    for _ in range(args.messages):
        one_message()


if __name__ == "__main__":
    main()
