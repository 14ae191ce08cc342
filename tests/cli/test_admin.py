"""`chorus admin audit`: the audit log of the node's store, one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from chorus.auth import AuditLog
from chorus.cli import main
from chorus.node import DATABASE_FILE
from chorus.persistence import open_sqlite_store

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


async def _fill(path: Path) -> str:
    async with open_sqlite_store(path) as store:
        ada = await store.create_user("ada", "Ada", "hash", T0)
        clock = [T0]
        audit = AuditLog(store, clock=lambda: clock[0])
        for minute in range(5):
            clock[0] = T0 + minute * 60_000
            await audit.record("login", ada.id, f"s{minute}", address="192.0.2.1")
            await audit.record("login.failed", None, "ada", details={"reason": "wrong_password"})
        return ada.id


def test_audit_prints_the_selected_events_newest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ada_id = trio.run(_fill, tmp_path / DATABASE_FILE)
    argv = ["admin", "audit", "--data-dir", str(tmp_path), "--actor", "ada", "--limit", "3"]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["action"], e["actor_id"], e["target"]) for e in lines] == [
        ("login", ada_id, "s4"),
        ("login", ada_id, "s3"),
        ("login", ada_id, "s2"),
    ]
    assert lines[0]["at"] == "2023-11-14T22:17:20.000Z"
    assert lines[0]["address"] == "192.0.2.1"
    since = ["--since", "2023-11-14T22:16:20", "--action", "login.failed"]
    assert main(["admin", "audit", "--data-dir", str(tmp_path), *since]) == 0
    failed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["target"], e["details"]) for e in failed] == [
        ("ada", {"reason": "wrong_password"}),
        ("ada", {"reason": "wrong_password"}),
    ]


def test_audit_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--since", "yesterday"], ["--limit", "0"]):
        with pytest.raises(SystemExit) as exited:
            main(["admin", "audit", "--data-dir", str(tmp_path), *bad])
        assert exited.value.code == 2
    assert "ISO 8601" in capsys.readouterr().err
