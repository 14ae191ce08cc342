"""The table of a sitting (bench/sitting.sh): medians and ranges per scenario and tree.

Usage: python bench/sitting_table.py OUT

Reads OUT/rN-TREE/*.json (bench/run.py's results) and prints a Markdown table
(median, then the range in brackets, over the rounds) and, when the scenarios
are there, the per-round ratios of issue #15's targets 1a (`cluster-1` ÷
`sqlite-1`) and 1d (`cluster-3` ÷ `cluster-1`, CPU per delivery); then, from
the swarm's per-second timeline, the p99 of the first second of sending
against the seconds after it (a start-up transient shows there, and can
make a whole run's p99 on its own).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_DASH = "\N{EN DASH}"
"""Between a range's ends, and for a figure a scenario does not have."""


def _cell(values: Sequence[float | None], digits: int = 1) -> str:
    present = [value for value in values if value is not None]
    if not present:
        return _DASH

    def shown(value: float) -> str:
        return f"{value:,.{digits}f}"

    middle = statistics.median(present)
    return f"{shown(middle)} ({shown(min(present))}{_DASH}{shown(max(present))})"


def _cpu_per_delivery(summary: dict[str, Any]) -> float:
    """The cluster's (all nodes') CPU per delivery where there is one, else the node's."""
    cluster = summary.get("cluster_cpu_us_per_delivery")
    return float(cluster or summary["server_cpu_us_per_delivery"])


def _seconds(result: dict[str, Any]) -> tuple[float, list[float]]:
    """The p99 of the first second of sending, and of each second after it (ms)."""
    timeline = result["swarm"]["timeline"]
    # The first and last seconds with sends may hold a few early or late ones: sending is
    # the seconds with at least half the busiest second's sends.
    most = max(second["sent"] for second in timeline)
    busy = [second for second in timeline if second["sent"] >= most / 2]
    return busy[0]["p99_ms"], [second["p99_ms"] for second in busy[1:]]


def _transient_table(runs: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    print(
        "\n| scenario | tree | first second's p99 ms | later seconds' p99 ms: median"
        " | later seconds' p99 ms: worst | sends held by bots still joining"
        " | last bot in after sending began, ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for (scenario, tree), results in sorted(runs.items()):
        seconds = [_seconds(result) for result in results]
        cells = [
            _cell([first for first, _ in seconds]),
            _cell([statistics.median(later) for _, later in seconds if later]),
            _cell([max(later) for _, later in seconds if later]),
            # Counted by the swarm since session 13 (absent from an older tree's runs).
            _cell([result["swarm"]["swarm"].get("held_sends") for result in results], 0),
            _cell(
                [result["swarm"]["swarm"].get("last_in_after_send_start_ms") for result in results]
            ),
        ]
        print(f"| `{scenario}` | {tree} | " + " | ".join(cells) + " |")


def main(out: Path) -> None:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    per_round: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for path in sorted(out.glob("r*-*/*.json")):
        round_name, tree = path.parent.name.split("-", 1)
        result = json.loads(path.read_text())
        runs[(result["scenario"], tree)].append(result)
        per_round[(round_name, tree)][result["scenario"]] = _cpu_per_delivery(result["summary"])
    print(
        "| scenario | tree | runs | deliveries/s | p50 ms | p99 ms | server µs per delivery "
        "| node CPU share | PostgreSQL CPU s | lost+dup+reord | load before |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (scenario, tree), results in sorted(runs.items()):
        summaries = [result["summary"] for result in results]
        wrong = sum(sum(summary["correctness"].values()) for summary in summaries)
        failed = "" if all(result["ok"] for result in results) else " (not all ok)"
        cells = [
            _cell([s["deliveries_per_s"] for s in summaries], 0),
            _cell([s["latency_ms"]["p50"] for s in summaries]),
            _cell([s["latency_ms"]["p99"] for s in summaries]),
            _cell([_cpu_per_delivery(s) for s in summaries], 2),
            _cell([s["server_window_cpu_share"] for s in summaries], 2),
            _cell([s.get("postgres_cpu_seconds") for s in summaries], 2),
            str(wrong),
            _cell([result["load_average_before"][0] for result in results]),
        ]
        print(f"| `{scenario}` | {tree} | {len(results)}{failed} | " + " | ".join(cells) + " |")
    for label, upper, lower in (("1a", "cluster-1", "sqlite-1"), ("1d", "cluster-3", "cluster-1")):
        for tree in ("after", "before"):
            ratios = [
                cpu[upper] / cpu[lower]
                for (_, round_tree), cpu in sorted(per_round.items())
                if round_tree == tree and upper in cpu and lower in cpu
            ]
            if ratios:
                shown = " / ".join(f"{ratio:.2f}" for ratio in ratios)
                middle = statistics.median(ratios)
                print(f"\n{label} {upper} / {lower}, {tree}: {shown}, median {middle:.2f}")
    _transient_table(runs)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
