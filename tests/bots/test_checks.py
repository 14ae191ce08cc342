"""The per-receiver, per-room order checks of a bot (lost, duplicated, reordered)."""

from __future__ import annotations

import socket
import struct
import time

from chorus.bots import BotAccount
from chorus.bots._worker import Bot, Worker, WorkerPlan
from chorus.gateway._wire import text_frame
from chorus.protocol import Ack, Message, MessageEvent, encode

ROOM = "r_room"


def bot_in(room: str = ROOM) -> Bot:
    account = BotAccount(index=0, user_id="u_0", username="bot-0", token="t", rooms=(room,))
    plan = WorkerPlan(
        worker=3,
        run_id="run",
        gateways=("ws://127.0.0.1:1/",),
        bots=(account,),
        senders=frozenset(),
        rate=0.0,
        size=10,
        ramp_up=0.0,
        duration=0.0,
    )
    return Worker(plan, lambda _report: None).bots[0]


def event(seq: int, body: str = "hello", room: str = ROOM) -> bytes:
    message = Message(
        id=f"m{seq}",
        room=room,
        seq=seq,
        sender="u_1",
        body=body,
        client_id=f"c{seq}",
        created_at=1,
        edited_at=None,
    )
    return text_frame(encode(MessageEvent(message=message)))


def receive(bot: Bot, *seqs: int) -> None:
    bot.reader.feed_bytes(b"".join(event(seq) for seq in seqs))


def lost(bot: Bot) -> int:
    return sum(len(order.missing or ()) for order in bot.rooms.values())


def test_in_order_deliveries_pass() -> None:
    bot = bot_in()
    receive(bot, 5, 6, 7, 8)
    stats = bot.worker.stats
    assert (stats.delivered, stats.duplicated, stats.reordered, lost(bot)) == (4, 0, 0, 0)


def test_a_gap_is_lost_until_it_arrives_then_it_is_reordered() -> None:
    bot = bot_in()
    receive(bot, 1, 2, 5)
    assert lost(bot) == 2
    receive(bot, 3)
    assert lost(bot) == 1
    assert bot.worker.stats.reordered == 1


def test_a_repeated_seq_is_a_duplicate() -> None:
    bot = bot_in()
    receive(bot, 1, 2, 2, 1, 3)
    assert bot.worker.stats.duplicated == 2
    assert bot.worker.stats.reordered == 0


def test_join_ack_sets_the_start_and_catches_an_early_gap() -> None:
    bot = bot_in()
    receive(bot, 12)  # a live event may come before the join's ack
    ack = Ack(ref="j1", room=ROOM, seq=9, message=None)
    bot.reader.feed_bytes(text_frame(encode(ack)))
    assert lost(bot) == 2  # 10 and 11 never came
    assert bot.rooms[ROOM.encode()].joined_at == 9  # owed every message after 9


def test_latency_is_timed_only_for_this_workers_messages() -> None:
    bot = bot_in()
    scheduled = time.monotonic_ns() - 2_000_000
    bot.reader.feed_bytes(event(1, body=f"w3:{scheduled}:xx") + event(2, body=f"w4:{scheduled}:x"))
    histogram = bot.worker.stats.histogram
    assert histogram.get_total_count() == 1
    assert histogram.get_max_value() >= 2000  # µs


def test_the_socket_ending_after_a_close_frame_is_no_error() -> None:
    bot = bot_in()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.sendall(b"\x88\x02" + struct.pack("!H", 4000))  # close 4000, then the end
        theirs.shutdown(socket.SHUT_WR)
        bot.read_ready(ours)
    assert dict(bot.worker.stats.errors) == {"close_4000": 1}
