"""What the system calls of a node's message path cost on this machine, one by one, in CPU.

Usage: python bench/syscall_costs.py [--scale S]

Each line is one call (or pair) as the node makes it, repeated in a loop and
divided: the process's CPU time (user + system, from `getrusage`, so time
spent waiting for a CPU or for the disk does not count) per call. With
`bench/dm_instructions.py --strace` (calls per message) this gives the
kernel's share of a message by kind (docs/benchmarks.md, "Issue #15, session
13"). `--scale` multiplies the repetitions (fewer for a quick look).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import resource
import secrets
import select
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path


def cpu_seconds() -> tuple[float, float]:
    """User + system and system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


def report(name: str, calls: int, run: Callable[[], None]) -> None:
    """Time `run` (which makes `calls` calls) and print its CPU per call."""
    total_before, system_before = cpu_seconds()
    run()
    total, system = cpu_seconds()
    per_call = 1e6 / calls
    print(
        f"{name:52s} {(total - total_before) * per_call:6.2f} µs"
        f" (system {(system - system_before) * per_call:5.2f})"
    )


def repeat(times: int, call: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(times):
            call()

    return run


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of a loopback TCP connection, non-blocking, TCP_NODELAY (as the node's)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    for end in (client, accepted):
        end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        end.setblocking(False)
    return accepted, client


def drain(sock: socket.socket) -> None:
    try:
        while sock.recv(1 << 20):
            pass
    except BlockingIOError:
        pass


def sockets(n: int) -> None:
    node, peer = tcp_pair()
    frame = b"x" * 340  # a `message` event's frame in rooms of 2

    def sends() -> None:
        for number in range(n):
            node.send(frame)
            if number % 64 == 63:  # keep the peer's buffer from filling
                drain(peer)

    report("TCP loopback send, 340 B (the peer's receive included)", n, sends)

    def receives() -> None:
        for _ in range(n // 64):
            for _ in range(64):
                peer.send(frame)
            for _ in range(64):
                node.recv(len(frame))  # one frame per call, as a node reads one

    # The peer's sends are counted too: subtract the line above's per-call figure.
    report("TCP loopback recv, 340 B, + the peer's send", n // 64 * 64, receives)
    node.close()
    peer.close()


def polling(n: int) -> None:
    woken, wake = socket.socketpair()
    woken.setblocking(False)
    epoll = select.epoll()
    epoll.register(woken.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
    rearm = select.EPOLLIN | select.EPOLLONESHOT
    report(
        "epoll_ctl MOD (trio's re-arm per wait)", n, repeat(n, lambda: epoll.modify(woken, rearm))
    )
    report("epoll_wait, timeout 0, nothing ready", n, repeat(n, lambda: epoll.poll(0)))
    report(
        "wake byte on a socketpair + its recv (group commit)",
        n,
        repeat(n, lambda: (wake.send(b"\0"), woken.recv(16))),
    )
    if hasattr(os, "eventfd"):
        event = os.eventfd(0, os.EFD_NONBLOCK)

        def eventfd_wake() -> None:
            os.eventfd_write(event, 1)
            os.eventfd_read(event)

        report("eventfd write + read (for comparison)", n, repeat(n, eventfd_wake))
        os.close(event)
    report("getrandom, 7 bytes (secrets.randbits(54))", n, repeat(n, lambda: secrets.randbits(54)))
    epoll.close()
    woken.close()
    wake.close()


def files(n: int) -> None:
    fd, name = tempfile.mkstemp(prefix="syscall-costs-")
    page = b"y" * 4096
    try:
        report(
            "one WAL frame: pwrite 24 B + pwrite 4 KiB",
            n,
            repeat(n, lambda: (os.pwrite(fd, page[:24], 0), os.pwrite(fd, page, 24))),
        )
        report(
            "fcntl F_SETLK read lock + unlock",
            n,
            repeat(
                n,
                lambda: (
                    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 100),
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, 100),
                ),
            ),
        )

        def commit() -> None:
            os.pwrite(fd, page, 0)
            os.fdatasync(fd)

        syncs = max(n // 200, 50)
        report("pwrite 4 KiB + fdatasync (a commit's sync)", syncs, repeat(syncs, commit))
    finally:
        os.close(fd)
        Path(name).unlink()


def hand_offs(n: int) -> None:
    """Two threads passing control back and forth through locks (each waits in a futex
    until the other wakes it), as the trio thread and the store's worker do per group."""
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def other() -> None:
        for _ in range(n):
            ping.acquire()
            pong.release()

    thread = threading.Thread(target=other)
    thread.start()

    def run() -> None:
        for _ in range(n):
            ping.release()
            pong.acquire()

    report("thread hand-off (sleep, woken by the other thread)", 2 * n, run)
    thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the repetitions")
    args = parser.parse_args()
    n = max(int(100_000 * args.scale), 1000)
    print("CPU per call (user + system), this process")
    report("a Python call of a no-op (the loop's own cost)", n, repeat(n, lambda: None))
    sockets(n)
    polling(n)
    files(n)
    hand_offs(n // 5)


if __name__ == "__main__":
    main()
