"""`chorus serve` under yappi (every thread), for `bench/room_instructions.py --yappi`.

Usage: python bench/yappi_serve.py OUT chorus-serve-arguments...

SIGUSR1 clears the counts and starts profiling (CPU clock); SIGUSR2 stops it
and writes OUT: one line per function, `calls<TAB>own seconds<TAB>total
seconds<TAB>module:line function`, by own time. The call counts are exact and
do not move with the machine's load; the seconds are inflated by the profiler
itself and are only for comparing functions. yappi is not a dependency of
Chorus: `pip install yappi` first.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import yappi  # not a dependency: pip install yappi


def main() -> None:
    out = Path(sys.argv[1])

    def start(signum: int, frame: FrameType | None) -> None:
        yappi.clear_stats()
        yappi.set_clock_type("cpu")
        yappi.start(builtins=True, profile_threads=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        yappi.stop()
        stats = sorted(yappi.get_func_stats(), key=lambda s: s.tsub, reverse=True)
        with out.open("w") as file:
            for s in stats:
                where = f"{s.module}:{s.lineno} {s.name}"
                file.write(f"{s.ncall}\t{s.tsub:.6f}\t{s.ttot:.6f}\t{where}\n")

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    from chorus.cli import main as chorus_main

    sys.argv = ["chorus", *sys.argv[2:]]
    raise SystemExit(chorus_main())


if __name__ == "__main__":
    main()
