"""The Dockerfile, parsed (no Docker daemon here): what the image guarantees operators."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import trio
from dockerfile_parse import DockerfileParser

from tests.polling import until
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "python3-dev", "libpq-dev")


def _stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, one list per stage (each starts with its FROM)."""
    stages: list[list[dict[str, Any]]] = []
    for instruction in DockerfileParser(str(REPO / "Dockerfile")).structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages and instruction["instruction"] != "COMMENT":
            stages[-1].append(instruction)
    return stages


def _final(name: str) -> list[str]:
    return [i["value"] for i in _stages()[-1] if i["instruction"] == name]


def test_the_image_is_built_in_two_stages_and_runs_on_slim_python_3_11() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert _final("FROM") == ["python:3.11-slim-bookworm"]
    # The wheels come from the builder: the final stage compiles nothing.
    assert any(value.startswith("--from=builder ") for value in _final("COPY"))


def test_no_build_tools_reach_the_final_stage() -> None:
    builder = " ".join(i["value"] for i in _stages()[0])
    assert "build-essential" in builder  # where they belong
    final = " ".join(i["value"] for i in _stages()[-1])
    for tool in BUILD_TOOLS:
        assert tool not in final.split(), tool
    assert "apt-get install" not in final


def test_the_node_runs_as_a_non_root_user_with_a_data_volume() -> None:
    (user,) = _final("USER")
    assert user.split(":")[0] not in ("root", "0")
    volumes = [path for value in _final("VOLUME") for path in json.loads(value)]
    env = DockerfileParser(str(REPO / "Dockerfile")).envs
    assert env["CHORUS_DATA_DIR"] in volumes


def test_the_node_listens_on_every_interface() -> None:
    env = DockerfileParser(str(REPO / "Dockerfile")).envs
    assert env["CHORUS_HTTP_HOST"] == "0.0.0.0"
    assert env["CHORUS_GATEWAY_HOST"] == "0.0.0.0"


def test_chorus_is_pid_1_through_an_exec_form_entrypoint() -> None:
    # Shell form would run `/bin/sh -c`, which does not pass SIGTERM on: no drain.
    assert [json.loads(value) for value in _final("ENTRYPOINT")] == [["chorus"]]
    assert [json.loads(value) for value in _final("CMD")] == [["serve"]]


def test_the_dockerignore_keeps_the_build_context_to_the_package() -> None:
    lines = (REPO / ".dockerignore").read_text().split()
    assert lines[lines.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!chorus/"]


def _healthcheck_argv() -> list[str]:
    (value,) = _final("HEALTHCHECK")
    options, _, command = value.partition("CMD ")
    assert "--interval=" in options
    argv: list[str] = json.loads(command)
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


async def _healthcheck(env: dict[str, str]) -> int:
    done = await trio.run_process(_healthcheck_argv(), env=env, check=False)
    return done.returncode


async def test_the_healthcheck_passes_on_a_gateway_only_node_and_fails_once_it_is_gone(
    tmp_path: Path,
) -> None:
    # The image's HEALTHCHECK command itself, run against a real `--role gateway` node
    # (no HTTP API: /healthz is answered on the gateway port).
    gateway, unused = free_port(), free_port()
    env = {"CHORUS_GATEWAY_PORT": str(gateway), "CHORUS_HTTP_PORT": str(unused)}
    argv = [sys.executable, "-m", "chorus", "serve", "--role", "gateway"]
    argv += ["--data-dir", str(tmp_path), "--log-format", "json"]
    process = await trio.lowlevel.open_process(
        argv, env={**_environ(), **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{gateway}/healthz"
        await until(functools.partial(_answers, process, url), timeout=30)
        assert await _healthcheck({**_environ(), **env}) == 0
    finally:
        process.terminate()
        with trio.fail_after(30):
            await process.wait()
    assert await _healthcheck({**_environ(), **env}) == 1


def _environ() -> dict[str, str]:
    """This process's environment without CHORUS_* settings (the test sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}


async def _answers(process: trio.Process, url: str) -> bool:
    assert process.returncode is None, f"the node exited with {process.returncode}"
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False
