"""The `chorus` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import typing

import orjson
import pytest

from chorus.cli import main
from chorus.protocol import ClientFrame, ServerFrame


@pytest.mark.parametrize("compact", [False, True])
def test_protocol_schema_prints_a_json_schema_of_every_frame(
    capsys: pytest.CaptureFixture[str], compact: bool
) -> None:
    assert main(["protocol", "schema", *(["--compact"] if compact else [])]) == 0
    out = capsys.readouterr().out
    assert (out.count("\n") == 1) is compact
    schema = orjson.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for name, union in [("ClientFrame", ClientFrame), ("ServerFrame", ServerFrame)]:
        classes = typing.get_args(union)
        branches = schema["$defs"][name]["oneOf"]
        assert branches == [{"$ref": f"#/$defs/{cls.__name__}"} for cls in classes]
        for cls in classes:
            assert schema["$defs"][cls.__name__]["properties"]["type"] == {"const": cls.TYPE}


def test_protocol_schema_into_a_closed_pipe_exits_quietly_like_unix_tools() -> None:
    # `chorus protocol schema | head -1`: the reader is gone before the output is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "chorus", "protocol", "schema"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == b""  # no BrokenPipeError traceback
    assert done.returncode == 128 + signal.SIGPIPE  # what a shell shows for `yes | head`
