"""What a run shows: live progress, the final table, JSON and a self-contained HTML page."""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

JSON_KEYS = (
    "run_id",
    "options",
    "bots",
    "rooms",
    "room_sizes",
    "workers",
    "worker_failures",
    "connections",
    "messages",
    "latency_ms",
    "latency_histogram",
    "correctness",
    "errors",
    "signals",
    "storm",
    "catch_up",
    "recovery",
    "swarm",
    "server",
    "timeline",
)
"""Top-level keys of `--json` output (documented in docs/benchmarks.md)."""


def live_line(state: dict[str, Any]) -> str:
    """One line of live progress."""
    latency = state["latency"]
    return (
        f"t={state['t']:5.1f}s  connected={state['connected']:>6}  "
        f"sent/s={state['sent_per_s']:>7}  delivered/s={state['delivered_per_s']:>8}  "
        f"p50={latency['p50']:.1f}ms  p99={latency['p99']:.1f}ms  errors={state['errors']}"
    )


def final_table(report: dict[str, Any]) -> Table:
    """The human summary of a run."""
    table = Table(title=f"chorus bots - run {report['run_id']}", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    connections = report["connections"]
    messages = report["messages"]
    latency = report["latency_ms"]
    correctness = report["correctness"]
    rows = [
        ("bots / rooms / workers", f"{report['bots']} / {report['rooms']} / {report['workers']}"),
        ("connections held (end)", str(connections["held"])),
        ("connects / reconnects", f"{connections['connects']} / {connections['reconnects']}"),
        ("connect rate", f"{connections['connect_rate_per_s']}/s"),
        ("sent / acked", f"{messages['sent']} / {messages['acked']}"),
        ("sends per second", str(messages["sent_per_s"])),
        ("deliveries / expected", f"{messages['delivered']} / {messages['deliveries_expected']}"),
        ("deliveries per second", str(messages["deliveries_per_s"])),
        (
            "latency p50 / p90 / p99",
            f"{latency['p50']:.2f} / {latency['p90']:.2f} / {latency['p99']:.2f} ms",
        ),
        ("latency p99.9 / max", f"{latency['p99_9']:.2f} / {latency['max']:.2f} ms"),
        ("latency samples", str(latency["count"])),
        (
            "lost / duplicated / reordered",
            f"{correctness['lost']} / {correctness['duplicated']} / {correctness['reordered']}",
        ),
        ("errors", ", ".join(f"{k}={v}" for k, v in report["errors"].items()) or "none"),
        (
            "bots refused (auth)",
            ", ".join(f"{k}={v}" for k, v in connections["auth_failures"].items()) or "none",
        ),
        (
            "typing / presence sent",
            f"{report['signals']['typing_sent']} / {report['signals']['presence_sent']}",
        ),
        (
            "typing / presence events received",
            f"{report['signals']['typing_received']} / {report['signals']['presence_received']}",
        ),
        (
            "swarm CPU",
            f"{report['swarm']['cpu_seconds']} s ({report['swarm']['cpu_share']:.0%} of a core)",
        ),
    ]
    swarm = report["swarm"]
    rows.append(
        (
            "swarm lag: max send / max loop",
            f"{swarm['max_send_lag_ms']} / {swarm['max_loop_lag_ms']} ms "
            f"({swarm['late_sends']} sends > 5 ms late)",
        )
    )
    if swarm["held_sends"]:
        rows.append(
            (
                "ramp ran over",
                f"the last bot was in its rooms {swarm['last_in_after_send_start_ms']} ms "
                f"after sending began; {swarm['held_sends']} sends waited for their bot",
            )
        )
    rows.append(
        (
            "swarm preempted / load average",
            f"{swarm['involuntary_switches']} times / "
            + " ".join(str(load) for load in swarm["load_average"]),
        )
    )
    storm = report["storm"]
    if storm is not None:
        rows.append(
            (
                f"storm at {storm['at_s']} s: dropped / resumed",
                f"{storm['dropped']} / {storm['resumed']}",
            )
        )
        rows.append(
            (
                "storm: seconds to 50 % / 99 % / all resumed",
                f"{storm['seconds_to_50_percent']} / {storm['seconds_to_99_percent']} / "
                f"{storm['seconds_to_all']}",
            )
        )
    catch_up = report["catch_up"]
    if catch_up["too_far"]:
        rows.append(
            (
                "too_far / rooms caught up / messages",
                f"{catch_up['too_far']} / {catch_up['rooms']} / {catch_up['messages']}",
            )
        )
    recovery = report["recovery"]
    if recovery["outages"]:
        rows.append(
            (
                "connections lost: seconds to 99 % / all back",
                f"{recovery['outages']}: {recovery['seconds_to_99_percent']} / "
                f"{recovery['seconds_to_all']}",
            )
        )
    server = report["server"]
    if server is not None:
        rows.append(
            (
                "server CPU / RSS",
                f"{server['cpu_seconds']} s ({server['cpu_share']:.0%}) / {server['rss_mib']} MiB",
            )
        )
        rows.append(("server CPU per delivery", f"{server['cpu_us_per_delivery']} µs"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def print_final(report: dict[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(final_table(report))


def write_json(report: dict[str, Any], path: Path | None) -> str:
    text = json.dumps(report, indent=2)
    if path is not None:
        path.write_text(text + "\n")
    return text


def _polyline(
    points: Sequence[tuple[float, float]], x_max: float, y_max: float, colour: str
) -> str:
    if not points:
        return ""
    width, height = 640.0, 220.0
    coords = " ".join(
        f"{40 + x / max(x_max, 1e-9) * (width - 50):.1f},"
        f"{height - 20 - y / max(y_max, 1e-9) * (height - 40):.1f}"
        for x, y in points
    )
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'


def svg_chart(title: str, unit: str, series: dict[str, Sequence[tuple[float, float]]]) -> str:
    """A line chart as inline SVG: one polyline per series, axes labelled with maxima."""
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    x_max = max((x for points in series.values() for x, _ in points), default=1.0)
    y_max = max((y for points in series.values() for _, y in points), default=1.0) * 1.1 or 1.0
    lines = [
        _polyline(points, x_max, y_max, c)
        for (_, points), c in zip(series.items(), colours, strict=False)
    ]
    legend = "".join(
        f'<text x="{60 + 150 * i}" y="14" fill="{c}" font-size="12">{html.escape(name)}</text>'
        for i, (name, c) in enumerate(zip(series, colours, strict=False))
    )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="220" '
        'style="background:#fafafa;border:1px solid #ddd">'
        '<line x1="40" y1="200" x2="630" y2="200" stroke="#999"/>'
        '<line x1="40" y1="20" x2="40" y2="200" stroke="#999"/>'
        f'<text x="2" y="24" font-size="11">{y_max:.3g}</text>'
        f'<text x="2" y="198" font-size="11">0</text>'
        f'<text x="600" y="215" font-size="11">{x_max:.0f} s</text>'
        f'<text x="44" y="34" font-size="11">{html.escape(unit)}</text>'
        f"{legend}{''.join(lines)}</svg></figure>"
    )


def html_report(report: dict[str, Any]) -> str:
    """A self-contained HTML page: the final table and latency/throughput over time."""
    timeline = report["timeline"]
    latency = svg_chart(
        "End-to-end latency per second (from the scheduled send time)",
        "ms",
        {
            "p50": [(row["t"], row["p50_ms"]) for row in timeline],
            "p99": [(row["t"], row["p99_ms"]) for row in timeline],
            "max": [(row["t"], row["max_ms"]) for row in timeline],
            "swarm send lag": [(row["t"], row["send_lag_ms"]) for row in timeline],
        },
    )
    throughput = svg_chart(
        "Throughput per second",
        "per s",
        {
            "deliveries": [(row["t"], row["delivered"]) for row in timeline],
            "sends": [(row["t"], row["sent"]) for row in timeline],
        },
    )
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(final_table(report))
    table = console.export_text()
    charts = latency + throughput
    server = report["server"]
    if server is not None and server["timeline"]:
        charts += svg_chart(
            "Server CPU (share of a core)",
            "cores",
            {"cpu": [(row["t"], row["cpu_share"]) for row in server["timeline"]]},
        )
    options = html.escape(json.dumps(report["options"]))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>chorus bots {html.escape(report['run_id'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}"
        "figure{margin:1em 0}</style></head><body>"
        f"<h1>chorus bots - run {html.escape(report['run_id'])}</h1>"
        f"<pre>{html.escape(table)}</pre><p>options: <code>{options}</code></p>"
        f"{charts}</body></html>\n"
    )


def write_html(report: dict[str, Any], path: Path) -> None:
    path.write_text(html_report(report))
