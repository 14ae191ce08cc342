"""Where the slowest sends of a traced node spent their time (see bench/trace/sitecustomize.py).

Usage: python bench/trace_report.py TRACE_FILE [--skip SECONDS] [--slowest FRACTION]

Reads the node's trace, drops the sends due in the first `--skip` seconds
(the swarm warming up), and prints how many reached the node over a second
after they were due (held by a bot whose connection was not ready yet;
`--without-held` leaves them out of the rest), then: the latency from when the bot
was to send a message (or, for other clients, the node's frame) until the
flusher pass that wrote its deliveries, at p50/p90/p99/max (what the swarm
measures, less the way back to the bots); each step's median and p99 over
all sends and over the slowest `--slowest` of them (by that latency); and how many of
the slowest overlapped a scheduler round longer than 10 ms or a garbage
collection longer than 5 ms.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELD = 1.0
"""Seconds after its due time past which a send was held by its bot (`chorus bots` sends
nothing before the bot's connection is ready) rather than slowed on the way."""

STEPS = [
    ("due at the bot to the node's frame", "due", "text"),
    ("connection (rate limits)", "text", "post"),
    ("room inbox, until its batch starts", "post", "batch"),
    ("batch start to store call", "batch", "store"),
    ("store call", "store", "stored"),
    ("stored to publication queued", "stored", "publish"),
    ("publication to deliveries queued", "publish", "delivered"),
    ("to the end of the flusher pass", "delivered", "flushed"),
]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--skip", type=float, default=5.0)
    parser.add_argument("--slowest", type=float, default=0.01)
    parser.add_argument(
        "--without-held",
        action="store_true",
        help=f"leave out sends that reached the node over {HELD} s after they were due",
    )
    args = parser.parse_args()
    records = [json.loads(line) for line in args.trace.read_text().splitlines()]
    messages = [r for r in records if r["kind"] == "message" and "flushed" in r]
    first = min(m.get("due", m["text"]) for m in messages)
    messages = [m for m in messages if m.get("due", m["text"]) >= first + args.skip]
    held = [m for m in messages if m["text"] - m.get("due", m["text"]) > HELD]
    if args.without_held:
        messages = [m for m in messages if m not in held]
    long_rounds = [(r["at"], r["seconds"]) for r in records if r["kind"] == "round"]
    round_cpu = [r.get("cpu", r["seconds"]) for r in records if r["kind"] == "round"]
    collections = [(r["at"], r["seconds"], r["gen"]) for r in records if r["kind"] == "gc"]
    start = "due" if all("due" in m for m in messages) else "text"
    total = [m["flushed"] - m[start] for m in messages]
    bots = {m["id"].rpartition("-")[0] for m in held}
    print(f"{len(messages)} sends traced (those due in the first {args.skip} s skipped)")
    print(
        f"{len(held)} reached the node over {HELD} s after they were due, from {len(bots)}"
        f" clients{' (left out)' if args.without_held else ''}"
    )
    p50, p90, p99, top = (1000 * _quantile(total, q) for q in (0.5, 0.9, 0.99, 1.0))
    print(f"{start} to flushed, ms: p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}  max {top:.1f}")
    ranked = sorted(messages, key=lambda m: m["flushed"] - m[start])
    slow = ranked[-max(1, int(len(ranked) * args.slowest)) :]
    print(
        f"\nper step, ms: all sends p50 / p99 | slowest {args.slowest:.0%} ({len(slow)}) p50 / p99"
    )
    for name, start, end in STEPS:
        every = [1000 * (m[end] - m[start]) for m in messages if start in m and end in m]
        worst = [1000 * (m[end] - m[start]) for m in slow if start in m and end in m]
        print(
            f"  {name:38} {_quantile(every, 0.5):7.2f} / {_quantile(every, 0.99):7.2f}"
            f" | {_quantile(worst, 0.5):7.2f} / {_quantile(worst, 0.99):7.2f}"
        )
    every_size = _quantile([m.get("size", 0) for m in messages], 0.5)
    slow_size = _quantile([m.get("size", 0) for m in slow], 0.5)
    print(f"  posts per batch: all p50 {every_size}, slowest p50 {slow_size}")
    span = (messages[0]["text"], max(m["flushed"] for m in messages)) if messages else (0, 0)
    in_span = [r for r in long_rounds if span[0] <= r[0] <= span[1]]
    gcs = [c for c in collections if span[0] <= c[0] <= span[1]]
    print(
        f"\nscheduler rounds > 2 ms: {len(in_span)} (> 10 ms: {sum(s > 0.01 for _, s in in_span)},"
        f" longest {1000 * max((s for _, s in in_span), default=0):.1f} ms; their trio-thread CPU"
        f" {sum(round_cpu) / max(sum(s for _, s in long_rounds), 1e-9):.0%} of their wall time);"
        f" GC > 1 ms: {len(gcs)} (gen 2: {sum(g == 2 for *_, g in gcs)},"
        f" longest {1000 * max((s for _, s, _ in gcs), default=0):.1f} ms)"
    )

    def overlaps(m: dict[str, float], events: list[tuple[float, float]], least: float) -> bool:
        return any(s >= least and at < m["flushed"] and at + s > m["text"] for at, s in events)

    for label, group in (("slowest", slow), ("all", messages)):
        rounds10 = sum(overlaps(m, long_rounds, 0.01) for m in group)
        gc5 = sum(overlaps(m, [(a, s) for a, s, _ in collections], 0.005) for m in group)
        print(
            f"{label}: {rounds10 / len(group):.0%} overlap a round > 10 ms,"
            f" {gc5 / len(group):.0%} a GC > 5 ms"
        )


if __name__ == "__main__":
    main()
