"""PostgreSQL's own instructions per stored batch: the server under callgrind, the batches
of `bench/admitted_calls.py` of one or more trees against it.

Usage: .venv/bin/python bench/backend_instructions.py OUTDIR TREE:N [TREE:N ...]

Starts a private durable PostgreSQL (`tests/pgserver.py`, autovacuum off: an `ANALYZE`
of a still tiny table may re-plan the append's duplicate lookup as a sequential scan,
which makes runs differ by when autovacuum woke up) with `postgres` itself under
`valgrind --tool=callgrind`, one output file per forked backend (OUTDIR/cg.<pid>). For
each TREE:N, in order, it creates a database and runs TREE's `bench/admitted_calls.py
--calls N --backend-cpu` against it (N ≥ 1); when all have run and the server has
stopped, it prints each TREE:N, its backend's pid and that backend's total
instructions. Two runs of a tree with N and N + M calls give the backend's
instructions per batch: the difference / M (connecting, warming up and the first
statements' planning cancel out). Takes minutes: the server runs ~50 times slower.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pgserver import PgServer  # noqa: E402  (after the path is set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("runs", nargs="+", metavar="TREE:N")
    args = parser.parse_args()
    out = args.outdir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o777)  # the server's user writes its callgrind files there
    server = PgServer(durable=True)
    server.init()
    command = [
        *(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []),
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}/cg.%p",
        str(server.bin_dir / "postgres"),
        "-D",
        str(server.data_dir),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={server.port}",
        "-c",
        f"unix_socket_directories={server.socket_dir}",
        "-c",
        "autovacuum=off",
    ]
    with open(out / "server.log", "w") as log:
        postmaster = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server.running = True
    backends: list[tuple[str, int]] = []
    try:
        server._wait_ready(deadline=time.monotonic() + 300)
        for number, run in enumerate(args.runs):
            tree, calls = run.rsplit(":", 1)
            database = f"run{number}"
            server.psql(f"CREATE DATABASE {database}")
            done = subprocess.run(
                [
                    sys.executable,
                    f"{tree}/bench/admitted_calls.py",
                    "--calls",
                    calls,
                    "--database-url",
                    server.database_url(database),
                    "--backend-cpu",
                ],
                env={**os.environ, "PYTHONPATH": tree, "PYTHONHASHSEED": "0"},
                capture_output=True,
                text=True,
                timeout=3600,
                check=True,
            )
            found = re.search(r"backend (\d+):", done.stdout)
            assert found, done.stdout
            backends.append((run, int(found[1])))
    finally:
        postmaster.terminate()  # a smart shutdown: the backends have ended, files written
        postmaster.wait(timeout=600)
        server.running = False
        server.remove()
    for run, pid in backends:
        totals = re.search(r"^totals: (\d+)", (out / f"cg.{pid}").read_text(), re.MULTILINE)
        assert totals, pid
        print(f"{run}\tbackend {pid}\t{int(totals[1]):,} instructions")


if __name__ == "__main__":
    main()
