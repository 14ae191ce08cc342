"""The web client's JSDoc types check (`tsc --checkJs`, strict), against the SDK's types."""

from __future__ import annotations

import pytest

from chorus.http._webapp import APP_DIR
from tests.web.test_chorus_js import PACKAGE, node_binary, run


async def test_the_web_clients_jsdoc_types_check() -> None:
    tsc = PACKAGE / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.exists():
        pytest.fail(
            f"TypeScript is not installed: run `npm ci --prefix {PACKAGE}` (scripts/test does)"
        )
    # The SDK's locked TypeScript; jsconfig.json maps the page's /chorus-js/ imports to it.
    status, output = await run(
        [node_binary(), str(tsc), "-p", "jsconfig.json"], cwd=APP_DIR, env={}
    )
    assert status == 0, f"tsc --checkJs found errors in the web client:\n{output}"
