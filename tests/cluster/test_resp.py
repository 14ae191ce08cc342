"""The RESP2 reading and writing of the bus's own subscriber (no Redis needed)."""

import socket
import struct

import pytest
import trio
import trio.testing

from chorus.cluster._connection import ReplyError, _receive_plain, encode_command, parse_replies


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert encode_command([b"SUBSCRIBE", b"room:1"]) == b"*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\nroom:1\r\n"


def test_every_complete_reply_of_a_read_is_parsed_and_a_partial_one_is_left() -> None:
    first = b"*3\r\n$7\r\nmessage\r\n$6\r\nroom:1\r\n$5\r\nM1 {}\r\n"
    second = b"*3\r\n$7\r\nmessage\r\n$6\r\nroom:2\r\n$4\r\nE a \r\n"
    data = first + second + second[:20]
    replies, used = parse_replies(data)
    assert replies == [[b"message", b"room:1", b"M1 {}"], [b"message", b"room:2", b"E a "]]
    assert used == len(first + second)
    for cut in range(len(first)):  # a reply cut anywhere waits for the rest
        assert parse_replies(first[:cut]) == ([], 0)


def test_payloads_may_hold_any_bytes() -> None:
    payload = b"M1 line\r\n*3\r\n$-1\r\n"
    data = b"*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$%d\r\n%s\r\n" % (len(payload), payload)
    assert parse_replies(data) == ([[b"message", b"x", payload]], len(data))


def test_a_message_whose_items_are_not_bulk_strings_is_refused() -> None:
    """Pub/sub messages take a parse of their own (issue 15): it refuses what the general
    parse would not read as a message either, rather than misread it."""
    for data in (
        b"*3\r\n$7\r\nmessage\r\n:1\r\n$1\r\nx\r\n",
        b"*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$-1\r\n",
    ):
        with pytest.raises(ReplyError, match="unexpected reply from Redis"):
            parse_replies(data)
    # Inside another reply (a command's, never the subscriber's) the same bytes are data.
    nested = b"*1\r\n*3\r\n$7\r\nmessage\r\n:1\r\n$-1\r\n"
    assert parse_replies(nested) == ([[[b"message", 1, None]]], len(nested))


def test_other_reply_kinds() -> None:
    data = b"+OK\r\n:42\r\n$-1\r\n-WRONGPASS invalid\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n"
    replies, used = parse_replies(data)
    assert replies[:3] == [b"OK", 42, None]
    assert isinstance(replies[3], ReplyError)
    assert str(replies[3]) == "WRONGPASS invalid"
    assert replies[4] == [b"subscribe", b"x", 1]
    assert used == len(data)


async def test_a_plain_read_ends_with_the_errors_of_receive_some() -> None:
    # `_receive_plain` replaces `SocketStream.receive_some` for plain TCP: same bytes,
    # b"" at EOF, a reset as `BrokenResourceError`, a closed socket as `ClosedResourceError`.
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    for ending in ("eof", "reset", "closed", "closed while waiting"):
        ours = trio.socket.socket()
        await ours.connect(listener.getsockname())
        theirs, _ = await listener.accept()
        await theirs.send(b"+OK\r\n")
        assert await _receive_plain(ours) == b"+OK\r\n"
        if ending == "eof":
            theirs.close()
            assert await _receive_plain(ours) == b""
        elif ending == "reset":  # a close with unread data and no linger sends RST
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            theirs.close()
            with pytest.raises(trio.BrokenResourceError):
                await _receive_plain(ours)
        elif ending == "closed":
            ours.close()
            with pytest.raises(trio.ClosedResourceError):
                await _receive_plain(ours)
        else:  # closed by another task while one waits

            async def read(sock: trio.socket.SocketType) -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await _receive_plain(sock)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read, ours)
                await trio.testing.wait_all_tasks_blocked()
                ours.close()
        theirs.close()
        ours.close()
    listener.close()
