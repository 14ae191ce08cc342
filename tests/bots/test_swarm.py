"""Short swarm runs against a real node in-process (no timing assertions)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from chorus.bots import JSON_KEYS, SwarmOptions, failures, html_report, provision_node, run_swarm
from chorus.bots._swarm import find_server_pid
from chorus.cli import main
from chorus.persistence import open_sqlite_store
from tests.e2e.node import open_node
from tests.ports import free_port


async def swarm(
    tmp_path: Path,
    *,
    workers: int,
    reconnects: float = 0.0,
    bots: int = 40,
    storm_at: float | None = None,
    dead_gateway: bool = False,
    ramp_up: float = 0.5,
) -> dict[str, Any]:
    async with open_node(tmp_path / "node") as running:
        provisioned = await provision_node(
            running.node.settings, bots=bots, rooms=4, room_size=10, access_ttl=600
        )
        # A gateway where nothing listens, first: half the bots start on it.
        dead = (f"ws://127.0.0.1:{free_port()}/",) if dead_gateway else ()
        options = SwarmOptions(
            gateways=(*dead, running.gateway_url),
            apis=(running.http_url,),
            rate=40.0,
            size=64,
            duration=2.0,
            ramp_up=ramp_up,
            passive=0.5,
            workers=workers,
            reconnect_rate=reconnects,
            typing_rate=5.0 if reconnects else 0.0,
            presence_rate=5.0 if reconnects else 0.0,
            drain=3.0,
            storm_at=storm_at,
        )
        return await trio.to_thread.run_sync(run_swarm, options, provisioned)


def assert_delivered_exactly_once(report: dict[str, Any]) -> None:
    assert report["messages"]["sent"] > 0
    assert report["messages"]["acked"] == report["messages"]["sent"]
    # Every message reaches the other members of its room (rooms of 10).
    assert report["messages"]["delivered"] >= report["messages"]["sent"] * 9
    assert report["correctness"] == {"lost": 0, "duplicated": 0, "reordered": 0}
    assert report["latency_ms"]["count"] > 0
    assert not [kind for kind in report["errors"] if kind.startswith("error_")]
    assert failures(report) == []


async def test_swarm_in_a_worker_process_delivers_everything_once(tmp_path: Path) -> None:
    report = await swarm(tmp_path, workers=2)
    assert_delivered_exactly_once(report)
    assert report["workers"] == 2
    assert report["connections"]["held"] == 40
    assert report["swarm"]["cpu_seconds"] > 0
    assert tuple(report) == JSON_KEYS
    json.dumps(report)  # the --json output is plain JSON


async def test_sends_due_before_their_bot_is_in_its_rooms_are_counted_as_held(
    tmp_path: Path,
) -> None:
    # No ramp-up: the first sends fall due as the bots start connecting, so they wait in
    # their bots; the report tells that apart from a slow send path.
    report = await swarm(tmp_path, workers=1, ramp_up=0.0)
    assert_delivered_exactly_once(report)
    assert report["swarm"]["held_sends"] > 0
    assert report["swarm"]["last_in_after_send_start_ms"] > 0


async def test_reconnect_typing_and_presence_churn_lose_nothing(tmp_path: Path) -> None:
    report = await swarm(tmp_path, workers=0, reconnects=10.0)
    assert_delivered_exactly_once(report)
    assert report["connections"]["reconnects"] > 0
    signals = report["signals"]
    assert signals["typing_sent"] > 0
    assert signals["presence_sent"] > 0
    # Each signal reaches the sender's room-mates, so some arrive even with bots reconnecting.
    assert signals["typing_received"] > 0
    assert signals["presence_received"] > 0


async def test_a_reconnect_storm_brings_every_bot_back_and_loses_nothing(tmp_path: Path) -> None:
    report = await swarm(tmp_path, workers=0, storm_at=1.0)
    assert_delivered_exactly_once(report)
    storm = report["storm"]
    assert storm["dropped"] == 40
    assert storm["resumed"] == 40
    assert storm["seconds_to_99_percent"] is not None
    assert report["connections"]["held"] == 40


async def test_bots_fail_over_to_the_next_gateway(tmp_path: Path) -> None:
    report = await swarm(tmp_path, workers=0, dead_gateway=True)
    assert_delivered_exactly_once(report)
    assert report["connections"]["held"] == 40
    assert report["errors"]["connect_failed"] >= 20  # each bot of the dead gateway once
    assert report["recovery"]["outages"] == 0  # never connected before: not an outage


async def test_html_report_is_self_contained(tmp_path: Path) -> None:
    report = await swarm(tmp_path, workers=0, bots=20)
    page = html_report(report)
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") >= 2
    assert "<script" not in page
    # No link out: the only URLs are the SVG namespace and the options shown as text.
    options = html.escape(json.dumps(report["options"]))
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        options, ""
    )


def test_provision_only_writes_bots_into_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [
        "--bots",
        "6",
        "--rooms",
        "2",
        "--room-size",
        "3",
        "--run-id",
        "t1",
        "--provision-only",
    ]
    status = main(["bots", "--data-dir", str(tmp_path), *flags])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [f"bot-t1-{n}" for n in range(6)]

    async def members() -> list[int]:
        async with open_sqlite_store(tmp_path / "chorus.db") as store:
            rooms = {line.split("\t")[2] for line in lines}
            return [len(await store.members(room)) for room in sorted(rooms)]

    assert trio.run(members) == [3, 3]


async def test_the_server_is_found_by_its_gateway_port(tmp_path: Path) -> None:
    async with open_node(tmp_path) as running:
        assert find_server_pid(running.gateway_url) == os.getpid()
    assert find_server_pid("ws://example.com:8081/") is None


async def test_a_descriptor_closed_mid_scan_does_not_hide_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server descriptor closed between listing /proc/PID/fd and reading it is skipped alone.

    The node's threads open and close descriptors while the scan runs; that race once made the
    scan pass over the whole process (a failed CI run).
    """
    readlink = os.readlink
    own_descriptors = f"/proc/{os.getpid()}/fd/"
    closed: list[str] = []

    def readlink_racing_a_close(path: str) -> str:
        if str(path).startswith(own_descriptors) and not closed:
            closed.append(str(path))
            raise FileNotFoundError(path)
        return readlink(path)

    async with open_node(tmp_path) as running:
        monkeypatch.setattr(os, "readlink", readlink_racing_a_close)
        assert find_server_pid(running.gateway_url) == os.getpid()
    assert closed
