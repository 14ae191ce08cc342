"""Per-second sends, batches and CPU of a node, from `bench/fanout_probe`'s files.

Usage: python bench/fanout_probe_report.py FILE... [--min-deliveries N]

For each second with at least N deliveries: deliveries/s, sends per delivery,
events per room batch, rounds/s, the node's user and system CPU µs per
delivery and its CPU share; then the totals over those seconds, and a least
squares fit of CPU per delivery against sends per delivery over them (the
slope is the CPU a `send` costs in the live node, the intercept what a
delivery costs besides). See docs/benchmarks.md, "Issue #15, session 13:
fan-out, system calls and instructions per delivery".
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

Row = dict[str, float]


def seconds(path: Path, min_deliveries: int) -> list[Row]:
    """The differences between consecutive records of one file: busy seconds only (not the
    exit's record after a quiet spell)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    rows = []
    for before, after in itertools.pairwise(records):
        row = {key: after[key] - before[key] for key in before}
        if row["deliveries"] >= min_deliveries and row["t"] <= 1.5:
            rows.append(row)
    return rows


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Slope, intercept and correlation of the least squares line of `ys` on `xs`."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x, sxy / (sxx * syy) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--min-deliveries", type=int, default=20_000)
    args = parser.parse_args()
    rows = [row for path in args.files for row in seconds(path, args.min_deliveries)]
    if not rows:
        raise SystemExit("no second with enough deliveries")
    print("deliv/s  sends/deliv  events/batch  rounds/s  user µs/deliv  sys µs/deliv  cpu share")
    for row in rows:
        per = 1e6 / row["deliveries"]
        print(
            f"{row['deliveries'] / row['t']:7.0f}  {row['sends'] / row['deliveries']:11.3f}"
            f"  {row['events'] / max(row['batches'], 1):12.2f}  {row['rounds'] / row['t']:8.0f}"
            f"  {row['user'] * per:13.2f}  {row['system'] * per:12.2f}"
            f"  {(row['user'] + row['system']) / row['t']:9.2f}"
        )
    total = {key: sum(row[key] for row in rows) for key in rows[0]}
    print(
        f"total, {len(rows)} s: {total['sends'] / total['deliveries']:.3f} sends per delivery,"
        f" {total['events'] / total['batches']:.2f} events per batch,"
        f" {total['bytes'] / max(total['sends'], 1):.0f} bytes per send,"
        f" user {1e6 * total['user'] / total['deliveries']:.2f}"
        f" and system {1e6 * total['system'] / total['deliveries']:.2f} µs per delivery"
    )
    if len(rows) > 2:
        sends = [row["sends"] / row["deliveries"] for row in rows]
        for name in ("user", "system"):
            cpu = [1e6 * row[name] / row["deliveries"] for row in rows]
            slope, intercept, r = fit(sends, cpu)
            print(
                f"{name}: {slope:.2f} µs per send + {intercept:.2f} µs per delivery (r = {r:.2f})"
            )


if __name__ == "__main__":
    main()
