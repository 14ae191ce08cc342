"""Judging a run (`failures`, `expected_deliveries`) on constructed reports."""

from __future__ import annotations

from typing import Any

from chorus.bots import failures
from chorus.bots._swarm import expected_deliveries


def passed(**changes: Any) -> dict[str, Any]:
    """The parts of a report `failures` reads, for a run of 4 bots that passed;
    `changes` replace top-level keys (`workers=0`) or keys of a section
    (`messages_unacked=3`)."""
    report: dict[str, Any] = {
        "bots": 4,
        "workers": 1,
        "worker_failures": [],
        "options": {"workers": 1, "gateways": ["ws://127.0.0.1:9/"]},
        "connections": {"held": 4, "connects": 4, "auth_failures": {}},
        "messages": {"sent": 10, "acked": 10, "unacked": 0, "delivered": 40},
        "correctness": {"lost": 0, "duplicated": 0, "reordered": 0},
    }
    report["messages"]["deliveries_expected"] = 40
    for name, value in changes.items():
        section, _, key = name.partition("_")
        if isinstance(report.get(section), dict):
            report[section][key] = value
        else:
            report[name] = value
    return report


def test_a_clean_run_has_no_failures() -> None:
    assert failures(passed()) == []


def test_sends_unacknowledged_after_the_drain_fail_the_run() -> None:
    assert failures(passed(messages_unacked=3)) == ["3 sends still unacknowledged after the drain"]


def test_fewer_deliveries_than_the_acked_sends_imply_fail_the_run() -> None:
    assert failures(passed(messages_delivered=39)) == [
        "39 deliveries, fewer than the 40 the acknowledged sends imply"
    ]


def test_bots_not_connected_at_the_end_fail_the_run() -> None:
    assert failures(passed(connections_held=3)) == ["only 3 of 4 bots connected at the end"]


def test_refused_tokens_are_reported_as_authentication_failures() -> None:
    report = passed(connections_held=0, connections_auth_failures={"invalid_token": 4})
    assert failures(report) == [
        "4 bots failed to authenticate (invalid_token)",
        "only 0 of 4 bots connected at the end",
    ]


def test_a_run_where_no_bot_connected_names_the_gateway() -> None:
    reasons = failures(passed(connections_held=0, connections_connects=0))
    assert reasons[0] == "no bot could connect to ws://127.0.0.1:9/ (is the gateway URL right?)"


def test_lost_messages_and_failed_workers_fail_the_run() -> None:
    report = passed(correctness_lost=2, workers=0, worker_failures=["worker 0: RuntimeError()"])
    assert failures(report) == [
        "worker failed: worker 0: RuntimeError()",
        "only 0 of 1 workers finished",
        "2 messages lost, 0 duplicated, 0 reordered",
    ]


def test_every_member_is_owed_the_messages_after_it_joined() -> None:
    acked = {"a": 10, "b": 3}
    # a: joined at 0 (owed 10), at 4 (owed 6), never (owed all 10); b: joined past it.
    joined = {"a": [0, 4, -1], "b": [5], "c": [-1]}
    assert expected_deliveries(acked, joined) == 26
