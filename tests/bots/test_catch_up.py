"""A bot that gets `too_far` catches the room up over HTTP: every message counted once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import trio

from chorus.bots import SwarmOptions, provision_node
from chorus.bots._swarm import plan_workers
from chorus.bots._worker import GoSignal, Worker
from tests.e2e.node import open_node

MISSED = 150
"""Messages the first bot missed: more than one page of the HTTP API (100)."""


async def test_a_bot_behind_by_more_than_the_resume_limit_catches_up_once(
    tmp_path: Path,
) -> None:
    async with open_node(tmp_path / "node", resume_limit=5) as running:
        provisioned = await provision_node(
            running.node.settings, bots=4, rooms=1, room_size=4, access_ttl=600
        )
        room = provisioned.bots[0].rooms[0]
        late = provisioned.bots[0]
        headers = {"authorization": f"Bearer {provisioned.bots[1].token}"}
        async with httpx.AsyncClient(base_url=running.http_url + "/api/v1") as http:
            for n in range(MISSED):
                posted = await http.post(
                    f"/rooms/{room}/messages",
                    json={"body": f"missed {n}", "client_id": f"missed-{n}"},
                    headers=headers,
                )
                assert posted.status_code == 201, posted.text
        options = SwarmOptions(
            gateways=(running.gateway_url,),
            apis=(running.http_url,),
            rate=20.0,
            size=64,
            duration=1.5,
            ramp_up=0.2,
            passive=0.0,
            workers=0,
            drain=3.0,
        )
        (plan,) = plan_workers(options, provisioned)
        reports: list[dict[str, Any]] = []
        worker = Worker(plan, reports.append)
        # The first bot had seen the room up to seq 0 before: it resumes from there,
        # is more than resume_limit behind, and gets `too_far` while the others send.
        (bot,) = [bot for bot in worker.bots if bot.account is late]
        bot.rooms[room.encode()].last = 0
        go = GoSignal()
        go.value = time.monotonic() + 0.1
        await trio.to_thread.run_sync(trio.run, worker.run, go)
    (final,) = [report for report in reports if report["kind"] == "final"]
    assert (final["too_far"], final["catch_ups"]) == (1, 1)
    assert final["caught_up"] >= MISSED
    assert (final["gaps"], final["duplicated"], final["reordered"]) == (0, 0, 0)
    assert final["acked_total"] == final["sent_total"] > 0
    # Every bot, the late one included, saw the room up to its last acknowledged seq.
    assert final["rooms_last"][room] == [final["acked_seq"][room]] * 4
    assert not [kind for kind in final["error_kinds"] if kind.startswith(("error_", "too"))]
