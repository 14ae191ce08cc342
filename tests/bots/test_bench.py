"""`bench/run.py --quick`: every named scenario runs end to end (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"
SCENARIOS = (
    "fanout-1",
    "fanout-10",
    "fanout-100",
    "fanout-1000",
    "fanout-100-all",
    "fanout-100-all-200k",
    "dm",
    "presence",
    "reconnect-storm",
    "failover",
    "sqlite-1",
    "pg-1",
    "cluster-1",
    "cluster-3",
    "cluster-3-shared",
    "idle",
    "upload",
    "store",
)
RECORD_KEYS = {"scenario", "quick", "date", "machine", "ok", "failure", "command", "summary"}


def test_every_scenario_runs_quick_and_loses_nothing(tmp_path: Path) -> None:
    # Two halves at once (each scenario has its own ports and temporary directory):
    # the scenarios mostly wait on servers starting, so this halves the test's time.
    halves = (SCENARIOS[0::2], SCENARIOS[1::2])
    runs = [
        subprocess.Popen(
            [sys.executable, str(RUN), "--quick", "--results-dir", str(tmp_path), *half],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for half in halves
    ]
    for run in runs:
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, output
    records = {}
    for path in tmp_path.glob("*-quick.json"):
        record = json.loads(path.read_text())
        records[record["scenario"]] = record
    assert sorted(records) == sorted(SCENARIOS)
    for name, record in records.items():
        assert set(record) >= RECORD_KEYS, name
        assert record["ok"], (name, record["failure"])
        assert record["quick"]
        summary = record["summary"]
        if name == "store":
            assert set(summary["messages_per_s"]) == {"1", "10", "100"}
            continue
        if name == "upload":
            assert set(summary["median"]) == {"big", "images"}
            assert all(row["mb_per_s"] > 0 for row in summary["median"].values())
            assert all(row["server_peak_rss_mib"] > 0 for row in summary["median"].values())
            continue
        assert summary["correctness"] == {"lost": 0, "duplicated": 0, "reordered": 0}, name
        assert summary["connections_held"] == record["swarm"]["bots"], name
        if name != "idle":
            assert summary["deliveries_per_s"] > 0, name
    storm = records["reconnect-storm"]["summary"]["storm"]
    assert storm["resumed"] == storm["dropped"] > 0
    assert storm["seconds_to_99_percent"] is not None
    failover = records["failover"]["summary"]
    assert failover["faults"]["killed_at_s"] is not None
    assert failover["faults"]["drained_exit_status"] == 0
    recovery = failover["recovery"]
    assert recovery["outages"] > 0
    assert recovery["not_back"] == 0
    assert recovery["seconds_to_99_percent"] is not None
    assert recovery["seconds_to_all"] is not None
    clusters = (("pg-1", 1), ("cluster-1", 1), ("cluster-3", 3), ("cluster-3-shared", 3))
    for name, nodes in clusters:
        assert records[name]["pinned"] == (name != "cluster-3-shared"), name
        cluster = records[name]["summary"]
        assert len(cluster["nodes_cpu_seconds"]) == nodes, name
        assert cluster["postgres_cpu_seconds"] > 0, name
        assert (cluster["redis_cpu_seconds"] is None) == (name == "pg-1"), name
    signals = records["presence"]["summary"]["signals"]
    assert signals["typing_received"] > 0
    assert signals["presence_received"] > 0
    idle = records["idle"]["summary"]
    assert idle["connections_held"] == idle["connections_wanted"]
    assert idle["server_rss_per_connection_kib"] is not None
