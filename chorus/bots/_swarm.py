"""The swarm's parent: provisioning, worker processes, merging their reports."""

from __future__ import annotations

import math
import multiprocessing
import os
import queue as queue_module
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._histogram import encode_histogram, merge_encoded, new_histogram, summary_ms
from ._provision import Provisioned
from ._worker import GoSignal, SendOrder, WorkerPlan, run_worker, worker_process

SAFE_RATE_PER_BOT = 15.0
"""Sends per second per bot kept under the server's default limit (20 frames/s)."""


@attrs.frozen(kw_only=True)
class SwarmOptions:
    """What `chorus bots` was asked to do (see its --help)."""

    gateways: tuple[str, ...] = ("ws://127.0.0.1:8081/",)
    apis: tuple[str, ...] = ()
    """HTTP API base URLs to catch up from after `too_far` (paired with `gateways`)."""
    rate: float = 1000.0
    size: int = 100
    duration: float = 30.0
    ramp_up: float = 5.0
    passive: float = 0.5
    workers: int = 1
    """Worker processes; 0 runs one worker in a thread of this process (tests)."""
    reconnect_rate: float = 0.0
    typing_rate: float = 0.0
    presence_rate: float = 0.0
    drain: float = 5.0
    storm_at: float | None = None
    """Seconds into sending when every bot drops its connection at once (None: no storm)."""
    latency_every: int = 1
    """Latency is measured by every n-th bot (a sample that keeps the swarm cheap)."""
    order: SendOrder = "interleaved"
    server_pid: int | None = None


def plan_workers(options: SwarmOptions, provisioned: Provisioned) -> list[WorkerPlan]:
    """Split bots over workers round-robin; each worker sends its senders' share of the rate."""
    bots = provisioned.bots
    rng = random.Random(provisioned.run_id)
    with_rooms = [bot.index for bot in bots if bot.rooms]
    active = round(len(with_rooms) * (1.0 - options.passive))
    senders = frozenset(rng.sample(with_rooms, max(0, min(active, len(with_rooms)))))
    count = max(1, options.workers)
    plans = []
    for worker in range(count):
        mine = bots[worker::count]
        share = sum(1 for bot in mine if bot.index in senders) / max(len(senders), 1)
        plans.append(
            WorkerPlan(
                worker=worker,
                run_id=provisioned.run_id,
                gateways=options.gateways,
                apis=options.apis,
                bots=mine,
                senders=senders,
                rate=options.rate * share,
                size=options.size,
                ramp_up=options.ramp_up,
                duration=options.duration,
                drain=options.drain,
                reconnect_rate=options.reconnect_rate / count,
                typing_rate=options.typing_rate / count,
                presence_rate=options.presence_rate / count,
                storm_at=options.storm_at,
                latency_every=max(1, options.latency_every),
                order=options.order,
            )
        )
    return plans


def find_server_pid(gateway: str) -> int | None:
    """The pid of the local process listening on `gateway`'s port (Linux /proc), if any.

    Only processes of this user can be inspected; None when nothing is found.
    """
    url = urlsplit(gateway)
    if url.hostname not in ("127.0.0.1", "localhost", "::1", "0.0.0.0") or url.port is None:
        return None
    wanted = f"{url.port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[1].rsplit(":", 1)[1] == wanted:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            descriptors = list((entry / "fd").iterdir())
        except OSError:  # gone, or not ours to inspect
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:  # closed since the listing: the process's other descriptors still count
                continue
            if target in inodes:
                return int(entry.name)
    return None


class ProcessSampler:
    """CPU seconds and RSS of a process from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.sample()

    def sample(self) -> tuple[float, int] | None:
        """(CPU seconds so far, RSS bytes), or None once the process is gone."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            statm = Path(f"/proc/{self.pid}/statm").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / self._ticks
        return cpu, int(statm.split()[1]) * self._page


Progress = Callable[[dict[str, Any]], None]


def run_swarm(
    options: SwarmOptions, provisioned: Provisioned, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the workers to the end; return the merged report (see docs/benchmarks.md)."""
    plans = plan_workers(options, provisioned)
    server_pid = options.server_pid
    sampler = ProcessSampler(server_pid) if server_pid else None
    threads: list[threading.Thread] = []
    processes: list[Any] = []
    reports: queue_module.Queue[dict[str, Any]] | Any
    if options.workers == 0:
        reports = queue_module.Queue()
        go: Any = GoSignal()
        for plan in plans:
            thread = threading.Thread(target=run_worker, args=(plan, reports.put, go), daemon=True)
            thread.start()
            threads.append(thread)
    else:
        context = multiprocessing.get_context("spawn")
        reports = context.Queue()
        go = context.Value("d", 0.0)
        for plan in plans:
            process = context.Process(target=worker_process, args=(plan, reports, go), daemon=True)
            process.start()
            processes.append(process)
    # Ramp and schedule begin once every worker is up (spawned interpreters take a while).
    up = 0
    deadline = time.monotonic() + 60
    while up < len(plans) and time.monotonic() < deadline:
        try:
            up += reports.get(timeout=0.5)["kind"] == "up"
        except queue_module.Empty:
            if processes and not all(p.is_alive() for p in processes):
                break
    go.value = time.monotonic() + 0.5
    begin = go.value
    server_start = sampler.sample() if sampler else None
    wall_start = time.time()
    finals: dict[int, dict[str, Any]] = {}
    failures: list[str] = []
    timeline: dict[int, dict[str, Any]] = {}
    total_histogram = new_histogram()
    server_timeline: list[tuple[float, float, float, int]] = []
    last_server = (begin, server_start)
    limit = begin + options.ramp_up + options.duration + options.drain + 30
    while len(finals) + len(failures) < len(plans) and time.monotonic() < limit:
        try:
            report = reports.get(timeout=0.5)
        except queue_module.Empty:
            if processes and all(not p.is_alive() for p in processes) and reports.empty():
                break
            continue
        if report["kind"] == "failed":
            failures.append(f"worker {report['worker']}: {report['error']}")
            continue
        # A tick at time t covers the second before it: label it by where that second starts.
        second = max(0, int(report["t"]) - 1)
        slot = timeline.setdefault(
            second,
            {"sent": 0, "acked": 0, "delivered": 0, "connects": 0, "histograms": [], "lag": 0.0},
        )
        slot["lag"] = max(slot["lag"], report["send_lag"])
        for key in ("sent", "acked", "delivered", "connects"):
            slot[key] += report[key]
        slot["histograms"].append(report["histogram"])
        merge_encoded([report["histogram"]], total_histogram)
        if report["kind"] == "final":
            finals[report["worker"]] = report
        if sampler is not None and last_server[1] is not None:
            now = time.monotonic()
            sample = sampler.sample()
            if sample is not None and now - last_server[0] >= 1.0:
                spent = sample[0] - last_server[1][0]
                server_timeline.append((now - begin, now - last_server[0], spent, sample[1]))
                last_server = (now, sample)
        if progress is not None:
            progress(_live(timeline, report, finals, len(plans)))
    for thread in threads:
        thread.join(timeout=5)
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
    server_end = sampler.sample() if sampler else None
    return _merge(
        options,
        provisioned,
        finals,
        failures,
        timeline,
        total_histogram,
        server_start,
        server_end,
        server_timeline,
        server_pid,
        wall_start,
    )


def _live(
    timeline: dict[int, dict[str, Any]],
    report: dict[str, Any],
    finals: dict[int, Any],
    workers: int,
) -> dict[str, Any]:
    second = int(report["t"])
    slot = timeline.get(second - 1) or timeline.get(second) or {}
    histogram = merge_encoded(slot.get("histograms", []))
    return {
        "t": report["t"],
        "connected": report["connected"],
        "sent_per_s": slot.get("sent", 0),
        "delivered_per_s": slot.get("delivered", 0),
        "latency": summary_ms(histogram),
        "errors": report["errors"],
        "finished_workers": len(finals),
        "workers": workers,
    }


_SUMMED = (
    "sent_total",
    "acked_total",
    "delivered_total",
    "connects_total",
    "reconnects",
    "resent",
    "gaps",
    "duplicated",
    "reordered",
    "typing_sent",
    "presence_sent",
    "typing_received",
    "presence_received",
    "cpu_user",
    "cpu_system",
    "too_far",
    "catch_ups",
    "caught_up",
)
"""The counters of the workers' final reports that add up over the swarm."""
_SIGNALS = ("typing_sent", "presence_sent", "typing_received", "presence_received")


def _merge(
    options: SwarmOptions,
    provisioned: Provisioned,
    finals: dict[int, dict[str, Any]],
    failures: list[str],
    timeline: dict[int, dict[str, Any]],
    histogram: Any,
    server_start: tuple[float, int] | None,
    server_end: tuple[float, int] | None,
    server_timeline: list[tuple[float, float, float, int]],
    server_pid: int | None,
    wall_start: float,
) -> dict[str, Any]:
    """The run's report from the workers' final reports and the per-second timeline."""
    totals = {key: sum(final[key] for final in finals.values()) for key in _SUMMED}
    rooms = _Rooms.of(finals)
    window = _sending_window(options, timeline)
    server = None
    if server_pid is not None and server_start is not None and server_end is not None:
        server = _server_usage(
            options, window, server_pid, server_start, server_end, server_timeline, wall_start
        )
    return {
        "run_id": provisioned.run_id,
        "options": attrs.asdict(options),
        "bots": len(provisioned.bots),
        "rooms": len(provisioned.rooms),
        "room_sizes": list(provisioned.room_sizes),
        "workers": len(finals),
        "worker_failures": failures,
        "connections": _connections(options, finals, totals, timeline),
        "messages": _messages(totals, rooms, window),
        "latency_ms": summary_ms(histogram),
        "latency_histogram": encode_histogram(histogram).decode(),
        "correctness": {
            "lost": totals["gaps"] + rooms.tail_lost(),
            "duplicated": totals["duplicated"],
            "reordered": totals["reordered"],
        },
        "errors": _counted(finals, "error_kinds"),
        "signals": {key: totals[key] for key in _SIGNALS}
        | {
            "typing_received_per_s": round(totals["typing_received"] / options.duration, 1),
            "presence_received_per_s": round(totals["presence_received"] / options.duration, 1),
        },
        "storm": _storm(options, finals),
        "catch_up": {
            "too_far": totals["too_far"],
            "rooms": totals["catch_ups"],
            "messages": totals["caught_up"],
        },
        "recovery": _recovery(finals),
        "swarm": _swarm_usage(options, finals, totals),
        "server": server,
        "timeline": _series(timeline),
    }


@attrs.frozen
class _Rooms:
    """What the workers saw of each room, merged over all workers."""

    acked_seq: dict[str, int]
    """The room's highest acknowledged seq."""
    last_seen: dict[str, list[int]]
    """For each receiver in the room, the last seq it saw (-1: none)."""
    joined_at: dict[str, list[int]]
    """For each member of the room, the seq it joined at (-1: never)."""

    @classmethod
    def of(cls, finals: dict[int, dict[str, Any]]) -> _Rooms:
        rooms = cls({}, {}, {})
        for final in finals.values():
            for room, seq in final["acked_seq"].items():
                rooms.acked_seq[room] = max(rooms.acked_seq.get(room, 0), seq)
            for room, lasts in final["rooms_last"].items():
                rooms.last_seen.setdefault(room, []).extend(lasts)
            for room, joined in final["rooms_joined_at"].items():
                rooms.joined_at.setdefault(room, []).extend(joined)
        return rooms

    def tail_lost(self) -> int:
        """Messages missed at the end: a receiver stopped short of the last acknowledged seq."""
        return sum(
            max(0, self.acked_seq.get(room, 0) - last)
            for room, lasts in self.last_seen.items()
            for last in lasts
            if last >= 0
        )


def _counted(finals: dict[int, dict[str, Any]], key: str) -> dict[str, int]:
    """The counts under `key` (a name -> count map) added over all workers, sorted by name."""
    counts: Counter[str] = Counter()
    for final in finals.values():
        counts.update(final[key])
    return dict(sorted(counts.items()))


def _sending_window(
    options: SwarmOptions, timeline: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The timeline's seconds after the ramp-up and before the drain (rates are measured there)."""
    return [
        slot
        for second, slot in timeline.items()
        if options.ramp_up <= second < options.ramp_up + options.duration
    ]


def _connections(
    options: SwarmOptions,
    finals: dict[int, dict[str, Any]],
    totals: dict[str, Any],
    timeline: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    ramp = [slot for second, slot in timeline.items() if second < max(options.ramp_up, 1)]
    return {
        "held": sum(final["connected"] for final in finals.values()),
        "connects": totals["connects_total"],
        "reconnects": totals["reconnects"],
        "auth_failures": _counted(finals, "auth_failures"),
        "connect_rate_per_s": round(
            sum(slot["connects"] for slot in ramp) / max(options.ramp_up, 1), 1
        ),
    }


def _messages(
    totals: dict[str, Any], rooms: _Rooms, window: list[dict[str, Any]]
) -> dict[str, Any]:
    seconds = max(len(window), 1)
    return {
        "sent": totals["sent_total"],
        "acked": totals["acked_total"],
        "unacked": totals["sent_total"] - totals["acked_total"],
        "resent": totals["resent"],
        "delivered": totals["delivered_total"],
        "deliveries_expected": expected_deliveries(rooms.acked_seq, rooms.joined_at),
        "sent_per_s": round(sum(slot["sent"] for slot in window) / seconds, 1),
        "deliveries_per_s": round(sum(slot["delivered"] for slot in window) / seconds, 1),
    }


def _swarm_usage(
    options: SwarmOptions, finals: dict[int, dict[str, Any]], totals: dict[str, Any]
) -> dict[str, Any]:
    """What the load generator itself spent: if it was starved, the latencies are its own."""
    cpu = totals["cpu_user"] + totals["cpu_system"]
    elapsed = options.ramp_up + options.duration
    return {
        "cpu_seconds": round(cpu, 3),
        "cpu_share": round(cpu / elapsed, 3) if elapsed else 0.0,
        "max_send_lag_ms": round(
            max((f["max_send_lag"] for f in finals.values()), default=0.0) * 1000, 2
        ),
        "late_sends": sum(f["late_sends"] for f in finals.values()),
        # A ramp that ran over: sends due before their bot was in its rooms wait in it.
        "held_sends": sum(f["held_sends"] for f in finals.values()),
        "last_in_after_send_start_ms": round(
            max((f["last_in_after"] for f in finals.values()), default=0.0) * 1000, 1
        ),
        # Preemptions: other processes took this core (a busy or shared machine).
        "involuntary_switches": sum(f["involuntary_switches"] for f in finals.values()),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "max_loop_lag_ms": round(
            max((f["max_tick_lag"] for f in finals.values()), default=0.0) * 1000, 2
        ),
        "cpu_us_per_delivery": round(cpu * 1e6 / totals["delivered_total"], 3)
        if totals["delivered_total"]
        else None,
    }


def _server_usage(
    options: SwarmOptions,
    window: list[dict[str, Any]],
    pid: int,
    start: tuple[float, int],
    end: tuple[float, int],
    timeline: list[tuple[float, float, float, int]],
    wall_start: float,
) -> dict[str, Any]:
    """The server process's CPU and memory: over the run, and per delivery while sending."""
    cpu = end[0] - start[0]
    # CPU per delivery over the sending window only (connects and drain excluded).
    last = options.ramp_up + options.duration
    in_window = [row for row in timeline if options.ramp_up + 1 <= row[0] <= last]
    window_cpu = sum(spent for _, _, spent, _ in in_window)
    window_seconds = sum(span for _, span, _, _ in in_window)
    window_rate = sum(slot["delivered"] for slot in window) / max(len(window), 1)
    return {
        "pid": pid,
        "cpu_seconds": round(cpu, 3),
        "cpu_share": round(cpu / max(time.time() - wall_start, 1e-9), 3),
        "window_cpu_share": round(window_cpu / window_seconds, 3) if window_seconds else None,
        "rss_mib": round(end[1] / 2**20, 1),
        "cpu_us_per_delivery": round(window_cpu / window_seconds * 1e6 / window_rate, 3)
        if window_seconds and window_rate
        else None,
        "timeline": [
            {
                "t": round(t, 1),
                "cpu_share": round(spent / span, 3),
                "rss_mib": round(rss / 2**20, 1),
            }
            for t, span, spent, rss in timeline
        ],
    }


def _series(timeline: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per second of the run: throughput, latency percentiles and send lag."""
    series = []
    for second in sorted(timeline):
        slot = timeline[second]
        summary = summary_ms(merge_encoded(slot["histograms"]))
        series.append(
            {
                "t": second,
                "sent": slot["sent"],
                "delivered": slot["delivered"],
                "connects": slot["connects"],
                "p50_ms": summary["p50"],
                "p99_ms": summary["p99"],
                "max_ms": summary["max"],
                "send_lag_ms": round(slot["lag"] * 1000, 2),
            }
        )
    return series


def expected_deliveries(
    acked_seq: Mapping[str, int], joined_at: Mapping[str, Sequence[int]]
) -> int:
    """The deliveries that acknowledged sends imply.

    `acked_seq`: each room's highest acknowledged seq; `joined_at`: for each room,
    the seq each member joined at (-1: never). Every member, the sender included
    (a room sends each message to every subscriber), is owed each message after the
    seq it joined at up to the room's highest acknowledged one; a member that never
    joined is owed them all. Counted apart from the order checks, which cannot see
    what a member that never joined missed.
    """
    return sum(
        max(0, acked_seq.get(room, 0) - max(seq, 0))
        for room, seqs in joined_at.items()
        for seq in seqs
    )


def _storm(options: SwarmOptions, finals: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """How fast the bots dropped by `--storm-at` were all back in their rooms."""
    if options.storm_at is None:
        return None
    dropped = sum(final["storm_dropped"] for final in finals.values())
    delays = sorted(delay for final in finals.values() for delay in final["storm_resumed"])

    def until(share: float) -> float | None:
        """Seconds until `share` of the dropped bots had resumed; None if they never did."""
        needed = math.ceil(share * dropped)
        if needed == 0:
            return 0.0
        return round(delays[needed - 1], 3) if len(delays) >= needed else None

    return {
        "at_s": options.storm_at,
        "dropped": dropped,
        "resumed": len(delays),
        "seconds_to_50_percent": until(0.5),
        "seconds_to_99_percent": until(0.99),
        "seconds_to_all": until(1.0),
    }


def _recovery(finals: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """How fast bots that lost their connection (not churn, not the storm) were back.

    Back means in all its rooms again (resumed) with any catch-up after
    `too_far` done; delays run from the moment the bot saw its connection end.
    """
    outages = sorted((lost, delay) for final in finals.values() for lost, delay in final["outages"])
    delays = sorted(delay for _, delay in outages)
    not_back = sum(final["still_out"] for final in finals.values())
    total = len(delays) + not_back

    def until(share: float) -> float | None:
        """Seconds until `share` of the outages were over; None if never (or none)."""
        needed = math.ceil(share * total)
        return round(delays[needed - 1], 3) if 0 < needed <= len(delays) else None

    return {
        "outages": total,
        "not_back": not_back,
        "first_lost_at_s": round(outages[0][0], 3) if outages else None,
        # Seconds from the start of the run (the go signal) to the last bot back.
        "last_back_at_s": round(max(lost + delay for lost, delay in outages), 3)
        if outages
        else None,
        "seconds_to_99_percent": until(0.99),
        "seconds_to_all": until(1.0),
    }


def failures(report: dict[str, Any]) -> list[str]:
    """Why a run did not pass, one sentence each; empty when it passed.

    A run passes only if every worker finished, every bot started was connected
    (and in its rooms) at the end, every send was acknowledged after the drain,
    the deliveries reached what the acknowledged sends imply, and nothing was
    lost, duplicated or reordered. A run that did not happen (no bot connected,
    tokens refused) therefore never passes.
    """
    reasons = [f"worker failed: {failure}" for failure in report["worker_failures"]]
    workers = max(1, report["options"]["workers"])
    if report["workers"] < workers:
        reasons.append(f"only {report['workers']} of {workers} workers finished")
    connections = report["connections"]
    for code, bots in connections["auth_failures"].items():
        reasons.append(f"{bots} bots failed to authenticate ({code})")
    if connections["connects"] == 0:
        gateways = ", ".join(report["options"]["gateways"])
        reasons.append(f"no bot could connect to {gateways} (is the gateway URL right?)")
    if connections["held"] < report["bots"]:
        reasons.append(f"only {connections['held']} of {report['bots']} bots connected at the end")
    messages = report["messages"]
    if messages["unacked"] > 0:
        reasons.append(f"{messages['unacked']} sends still unacknowledged after the drain")
    if messages["delivered"] < messages["deliveries_expected"]:
        reasons.append(
            f"{messages['delivered']} deliveries, fewer than the "
            f"{messages['deliveries_expected']} the acknowledged sends imply"
        )
    checks = report["correctness"]
    if checks["lost"] or checks["duplicated"] or checks["reordered"]:
        reasons.append(
            f"{checks['lost']} messages lost, {checks['duplicated']} duplicated, "
            f"{checks['reordered']} reordered"
        )
    return reasons
