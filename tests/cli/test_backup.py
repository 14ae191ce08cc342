"""`chorus backup` / `chorus restore` round trip on real `chorus serve` processes (issue #16)."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import trio

from chorus.client import HttpApi
from tests.cluster.nodes import PASSWORD, start_node

CHORUS = [sys.executable, "-m", "chorus"]
ENV = {"CHORUS_SCANNER": "none", "CHORUS_STORAGE": "local"}


async def chorus(*args: str) -> tuple[int, str]:
    """Run a `chorus` command to its end (bounded); its status and stderr."""
    with trio.fail_after(60):
        done = await trio.run_process(
            [*CHORUS, *args],
            env={**os.environ, **ENV},
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return done.returncode, done.stderr.decode()


async def test_a_backup_taken_while_serving_restores_messages_and_files(tmp_path: Path) -> None:
    live, backup, restored = tmp_path / "live", tmp_path / "backup", tmp_path / "restored"
    live.mkdir()
    restored.mkdir()
    attachment = tmp_path / "notes.txt"
    attachment.write_bytes(b"minutes of the meeting\n" * 500)
    node = await start_node("live", live, ENV)
    try:
        async with HttpApi(f"http://127.0.0.1:{node.http_port}") as ada:
            await ada.register("ada", PASSWORD)
            room = (await ada.create_room("general")).id
            uploaded = await ada.upload_file(attachment)
            await ada.wait_for_file(uploaded.id, timeout=30)
            before = [await ada.post(room, f"m{n}", f"c{n}") for n in range(20)]
            before.append(await ada.post(room, "", "with-file", attachments=[uploaded.id]))

            backed_up = trio.Event()

            async def keep_posting() -> None:  # the node stores while the backup copies
                # Stops between posts, never inside one: a request cancelled while httpx
                # sends its body leaves httpx's body generator unexhausted, which trio
                # reports as a ResourceWarning (an error here) when it is collected.
                for n in itertools.count():
                    if backed_up.is_set():
                        return
                    await ada.post(room, f"during {n}", f"during-{n}")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_posting)
                status, progress = await chorus("backup", str(backup), "--data-dir", str(live))
                backed_up.set()
            assert status == 0, progress
            assert "database: " in progress
            assert "files: 1 " in progress
            # The node serves on, so its data dir cannot be restored over.
            status, refused = await chorus("restore", str(backup), "--data-dir", str(live))
            assert status == 1
            assert "running `chorus serve`" in refused
    finally:
        await node.stop()
    assert node.process.returncode == 0
    (restored / "something").write_text("not a data dir")
    status, refused = await chorus("restore", str(backup), "--data-dir", str(restored))
    assert status == 1
    assert "not empty" in refused
    status, output = await chorus("restore", str(backup), "--data-dir", str(tmp_path / "fresh"))
    assert status == 0, output

    node = await start_node("restored", tmp_path / "fresh", ENV)
    try:
        async with HttpApi(f"http://127.0.0.1:{node.http_port}") as ada:
            await ada.login("ada", PASSWORD)
            history = await ada.history(room, after=0, limit=100)
            got = await ada.download_file(uploaded.id, tmp_path / "downloaded.txt")
    finally:
        await node.stop()
    # Everything acknowledged before the backup, and a consistent snapshot: no gap in seqs.
    assert [m.id for m in history[: len(before)]] == [m.id for m in before]
    assert [m.seq for m in history] == list(range(history[0].seq, history[0].seq + len(history)))
    assert history[len(before) - 1].attachments[0].id == uploaded.id
    assert got.read_bytes() == attachment.read_bytes()
