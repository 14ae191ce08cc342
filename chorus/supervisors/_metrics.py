"""Prometheus counters for supervisors (labels stay bounded: see `ChildSpec.kind`)."""

from __future__ import annotations

from prometheus_client import Counter

RESTARTS = Counter(
    "chorus_supervisor_restarts",
    "Children restarted by a supervisor.",
    ["supervisor", "child"],
)
EXITS = Counter(
    "chorus_supervisor_child_exits",
    "Child exits seen by a supervisor, by reason (normal, shutdown, crash).",
    ["supervisor", "child", "reason"],
)
