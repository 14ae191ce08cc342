"""CPU used by each thread of a process over a window: the server's steady-state cost.

Usage: python bench/threadcpu.py PID DELAY WINDOW
Waits DELAY seconds, then prints the user and system CPU seconds each thread
of PID used during the next WINDOW seconds (from /proc/PID/task/*/stat), and
the total. Started with `chorus bots`, a DELAY past the ramp-up measures the
sending phase only, without connection set-up, joins and provisioning.
"""

from __future__ import annotations

import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def sample(pid: int) -> dict[str, tuple[str, float, float]]:
    """Thread id -> (name, user seconds, system seconds) for every thread of `pid`."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            continue  # the thread ended
        threads[tid] = (name, int(fields[11]) / TICKS, int(fields[12]) / TICKS)
    return threads


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    pid, delay, window = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    time.sleep(delay)
    before, started = sample(pid), time.monotonic()
    time.sleep(window)
    after, elapsed = sample(pid), time.monotonic() - started
    total_user = total_system = 0.0
    for tid, (name, user, system) in sorted(after.items()):
        _, user_before, system_before = before.get(tid, (name, 0.0, 0.0))
        user, system = user - user_before, system - system_before
        total_user, total_system = total_user + user, total_system + system
        if user + system > 0.05:
            print(f"{tid} {name:<16} user {user:6.2f} s  system {system:6.2f} s")
    total = total_user + total_system
    split = f"user {total_user:.2f}, system {total_system:.2f}"
    print(f"total {total:.2f} s ({split}) in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
