"""`chorus bots` end to end: which gateway it drives, how a run fails, removing its bots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from chorus.cli import main
from chorus.persistence import RemovedBots, open_sqlite_store
from tests.e2e.node import open_node

# A small, short swarm in a thread of the test process (a few seconds in all).
SMALL = [
    *("--bots", "6", "--rooms", "2", "--room-size", "3", "--passive", "0"),
    *("--rate", "12", "--duration", "1", "--ramp-up", "0.3", "--drain", "2"),
    *("--workers", "0", "--sample-every", "1"),
]


async def bots(*argv: str) -> int:
    """`chorus bots ARGV` with the small swarm, in a worker thread (it runs its own trio loop)."""
    return await trio.to_thread.run_sync(main, ["bots", *argv, *SMALL])


async def remove(data_dir: Path, run_id: str) -> RemovedBots:
    async with open_sqlite_store(data_dir / "chorus.db") as store:
        return await store.remove_bot_run(run_id)


async def test_the_swarm_drives_the_gateway_port_of_the_server_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, report_file = tmp_path / "node", tmp_path / "report.json"
    async with open_node(data_dir) as running:
        port = str(running.gateway_port)  # any free port, never the default 8081
        status = await bots(
            *("--data-dir", str(data_dir), "--gateway-port", port),
            *("--run-id", "g1", "--json-file", str(report_file)),
        )
        captured = capsys.readouterr()
        assert status == 0, captured.err
        report = json.loads(report_file.read_text())
        assert report["options"]["gateways"] == [f"ws://127.0.0.1:{port}/"]
        assert report["connections"]["held"] == 6
        assert report["messages"]["delivered"] >= report["messages"]["deliveries_expected"] > 0
        # Removed at the end of the run: nothing of it is left.
        assert "removed run g1: 6 bot users, 2 rooms" in captured.err
        assert await remove(data_dir, "g1") == RemovedBots(users=0, rooms=0)


async def test_a_run_whose_bots_cannot_authenticate_fails_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The bots are provisioned into another deployment's store: signed with
    # another key, their tokens are refused by this node.
    other = tmp_path / "other"
    async with open_node(tmp_path / "node") as running:
        status = await bots(
            *("--data-dir", str(other), "--gateway", running.gateway_url),
            *("--run-id", "a1", "--keep"),
        )
    err = capsys.readouterr().err
    assert status == 1
    assert "chorus bots: 6 bots failed to authenticate (invalid_token)" in err
    assert "only 0 of 6 bots connected at the end" in err
    assert "Traceback" not in err
    # --keep: the bots stay, and the command says how to remove them.
    assert "chorus bots --cleanup a1" in err
    assert await remove(other, "a1") == RemovedBots(users=6, rooms=2)


def test_cleanup_removes_the_bots_of_a_run_and_only_those(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(tmp_path)
    for run_id in ("k1", "k2"):
        provision = ["--bots", "4", "--rooms", "2", "--room-size", "2", "--run-id", run_id]
        assert main(["bots", "--data-dir", data_dir, *provision, "--provision-only"]) == 0
    capsys.readouterr()

    assert main(["bots", "--data-dir", data_dir, "--cleanup", "k1"]) == 0
    assert "removed run k1: 4 bot users, 2 rooms" in capsys.readouterr().err
    assert trio.run(remove, tmp_path, "k1") == RemovedBots(users=0, rooms=0)
    assert trio.run(remove, tmp_path, "k2") == RemovedBots(users=4, rooms=2)


def test_a_run_id_in_use_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provision = ["bots", "--data-dir", str(tmp_path), "--run-id", "r1", "--bots", "2"]
    assert main([*provision, "--rooms", "1", "--room-size", "2", "--provision-only"]) == 0
    capsys.readouterr()
    assert main([*provision, "--rooms", "1", "--room-size", "2", "--provision-only"]) == 2
    err = capsys.readouterr().err
    assert "run id r1 was used before in this store" in err
    assert "Traceback" not in err


def test_bad_run_ids_and_an_unknown_gateway_port_are_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bots", "--data-dir", str(tmp_path), "--run-id", "Not OK"])
    assert exited.value.code == 2
    assert "a run id is 1-20 of a-z" in capsys.readouterr().err
    status = main(["bots", "--data-dir", str(tmp_path), "--gateway-port", "0"])
    assert status == 2
    assert "the gateway port is 0 (chosen at start): give --gateway URL" in (
        capsys.readouterr().err
    )


def test_help_lists_the_swarm_options_before_the_server_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bots", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    text = out[out.index("options:") :]  # past the usage line, which names every flag
    assert text.index("--bots") < text.index("server settings:") < text.index("--data-dir")
    assert text.index("--cleanup") < text.index("server settings:")
