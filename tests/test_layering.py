"""Layering rules that imports alone would break silently (issue #11)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import chorus

DATABASE_ENGINES = {"asyncpg", "chorus.persistence"}


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


def test_packages_use_each_others_public_names_only() -> None:
    # A private module (`_tokens.py`) may change with its package; other packages
    # (the bot swarm above all: it shows how to drive Chorus) go through `__init__`.
    package_dir = Path(chorus.__file__).parent
    offences = []
    for path in package_dir.rglob("*.py"):
        home = ".".join(("chorus", *path.relative_to(package_dir).parent.parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chorus."):
                parts = str(node.module).split(".")
                private = next((i for i, part in enumerate(parts) if part.startswith("_")), None)
                if private is not None and ".".join(parts[:private]) != home:
                    offences.append(f"{path.relative_to(package_dir)}: {node.module}")
    assert offences == []
