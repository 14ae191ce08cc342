"""Layering rules that imports alone would break silently (issue #11)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DATABASE_ENGINES = {"asyncpg", "trio_asyncio", "chorus.persistence"}


def modules_loaded_by(module: str) -> set[str]:
    """Every module loaded by importing `module` in a fresh interpreter (this one has them all)."""
    script = f"import json, sys, {module}; print(json.dumps(list(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    return set(json.loads(result.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "chorus.config",  # settings are read before anything is chosen
        "chorus.cluster",  # the Redis bus needs no PostgreSQL helper
    ],
)
def test_importing_loads_no_database_engine(module: str) -> None:
    assert not modules_loaded_by(module) & DATABASE_ENGINES
