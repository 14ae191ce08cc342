"""The declared dependencies are exactly the libraries the package imports (issue #11)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import chorus

ROOT = Path(__file__).parents[1]


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules() -> set[str]:
    """The top-level names of every module the `chorus` package imports (not relatively)."""
    found = set()
    for path in Path(chorus.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"chorus"}


def test_every_imported_library_is_declared_and_every_declared_one_imported() -> None:
    # A library used only through another's dependencies (werkzeug through
    # quart) disappears the day that other library stops needing it.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Optional extras count (the `sentry` one is imported only when configured); `dev` is
    # the test suite's, not the package's.
    extras = [
        spec
        for name, specs in project["optional-dependencies"].items()
        if name != "dev"
        for spec in specs
    ]
    specs = [*project["dependencies"], *extras]
    declared = {normalized(re.split(r"[<>=!~;\[ ]", spec)[0]) for spec in specs}
    distributions = packages_distributions()
    imported = {
        normalized(distribution)
        for module in imported_modules()
        for distribution in distributions[module]
    }
    assert imported == declared
