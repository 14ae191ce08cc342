"""One line per sample of `bench/cluster_diagnostics.py`'s `samples.jsonl`.

Usage: python bench/cluster_diagnostics_report.py SAMPLES [--every N]

Times are seconds after the first sample with an append running (the
sending's start, give or take a sample). Per line: each node's CPU share
over the interval (all its threads; then its busiest thread's), PostgreSQL's
and Redis's CPU share, the kernel's CPU and I/O stall shares (`some`), the
disk's flushes and ms spent flushing, and PostgreSQL's client backends: per
node how many run a statement (`active`) and how many of those wait, by wait
event, with the longest running statement's ms; Redis's largest output buffer.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def _line(before: dict[str, Any], after: dict[str, Any], t: float) -> str:
    span = after["wall"] - before["wall"]
    parts = [f"{t:6.1f}"]
    for pid, threads in after["threads"].items():
        old = before["threads"].get(pid, {})
        deltas = {
            tid: (ticks - old.get(tid, [name, ticks])[1]) / TICK / span
            for tid, (name, ticks) in threads.items()
        }
        total = sum(deltas.values())
        busiest = max(deltas.values(), default=0.0)
        parts.append(f"n{pid[-3:]} {total:4.2f}/{busiest:4.2f}")
    for name in ("postgres", "redis"):
        parts.append(f"{name[:2]} {(after[name] - before[name]) / TICK / span:4.2f}")
    pressure = {
        k: (after["pressure"][k] - before["pressure"][k]) / 1e6 / span for k in after["pressure"]
    }
    parts.append(f"psi cpu {pressure.get('cpu_some', 0):4.2f} io {pressure.get('io_some', 0):4.2f}")
    disk = {k: after["disk"].get(k, 0) - before["disk"].get(k, 0) for k in after["disk"]}
    parts.append(f"flush {disk.get('flushes', 0):3d}/{disk.get('flush_ms', 0):4d}ms")
    active: collections.Counter[str] = collections.Counter()
    waits: collections.Counter[str] = collections.Counter()
    longest = 0.0
    for row in after["activity"]:
        if len(row) < 6:
            continue  # the rest of a statement's text that held a line break
        app, state, wait_type, wait, query_ms = row[0], row[1], row[2], row[3], row[4]
        if state == "active":
            active[app] += 1
            longest = max(longest, float(query_ms or 0))
            if wait_type:
                waits[f"{wait_type}:{wait}"] += 1
    parts.append("act " + ",".join(f"{active[a]}" for a in sorted(active)))
    parts.append(f"max {longest:5.0f}ms")
    parts.append(" ".join(f"{k}={v}" for k, v in waits.most_common(3)))
    omem = max((int(c["omem"] or 0) for c in after["redis_clients"]), default=0)
    parts.append(f"omem {omem}")
    return "  ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("samples", type=Path)
    parser.add_argument("--every", type=int, default=1, help="one line per N samples")
    args = parser.parse_args()
    samples = [json.loads(line) for line in args.samples.read_text().splitlines()]
    start = next(
        (
            s["wall"]
            for s in samples
            if any("chorus_append" in "|".join(row) for row in s["activity"])
        ),
        samples[0]["wall"],
    )
    for before, after in zip(
        samples[:: args.every], samples[args.every :: args.every], strict=False
    ):
        print(_line(before, after, after["wall"] - start))


if __name__ == "__main__":
    main()
