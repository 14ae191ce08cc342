"""Work done once per trio scheduling round, between rounds, without a task of its own."""

from __future__ import annotations

from collections.abc import Callable

import trio


class RoundEnd(trio.abc.Instrument):
    """Calls `at_round_end` once per scheduling round, after every task that was
    runnable has run, just before trio waits for I/O (install it with
    `trio.lowlevel.add_instrument`).

    Work that gathers what a round produced (writes to sockets, a group commit)
    runs there without waking a task, which would cost a round of its own.
    `at_round_end` runs in the run loop, not in a task, and must not raise (trio
    would log it and drop the instrument). The wait for I/O that follows was
    timed before it ran: if it makes a task runnable, it must also wake the loop
    (`TrioToken.run_sync_soon`, or a byte on a socket the loop polls), or the task
    waits for the next I/O or deadline.
    """

    def __init__(self, at_round_end: Callable[[], None]) -> None:
        self._at_round_end = at_round_end

    def before_io_wait(self, timeout: float) -> None:
        self._at_round_end()
