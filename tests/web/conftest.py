"""A real `chorus serve` and one headless Chromium (Debian's) per module, driven by Playwright.

Browsers cannot be downloaded here: Playwright launches the system Chromium
(`CHROMIUM`), which scripts/test installs. Each test opens its own browser
contexts (separate cookies, storage and service workers: separate people).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.ports import free_port

CHROMIUM = Path(os.environ.get("CHORUS_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).parents[2]
ARTIFACTS = Path(os.environ.get("CHORUS_ARTIFACTS", ROOT / "tmp" / "artifacts"))
"""Where the run leaves its screenshots (the README's image is one of them)."""
PASSWORD = "correct horse battery staple"
START_TIMEOUT = 30.0


def wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    """Return once `url` answers 200; fail if the node exits or `START_TIMEOUT` passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"chorus serve exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.05)  # polling a process that has no readiness event for us
    raise AssertionError(f"{url} did not answer within {START_TIMEOUT} s")


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a `chorus serve` process (SQLite, free loopback ports)."""
    data_dir = tmp_path_factory.mktemp("node")
    http_port = free_port()
    argv = [sys.executable, "-m", "chorus", "serve", "--data-dir", str(data_dir)]
    argv += ["--http-port", str(http_port), "--gateway-port", str(free_port())]
    argv += ["--log-format", "json", "--log-level", "warning"]
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_ready(process, f"{url}/readyz")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


def sign_up(page: Page, node_url: str, username: str) -> None:
    """Open the app and create an account through its form; returns on the chat screen."""
    page.goto(f"{node_url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("New here: create an account").check()
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("button", name="Sign out").wait_for()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed browser test leaves a screenshot of every open page in `ARTIFACTS`."""
    report = yield
    if call.when == "call" and report.failed:
        for index, page in enumerate(_open_pages(item)):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / f"failed-{item.name}-{index}.png")
    return report


def _open_pages(item: pytest.Item) -> list[Page]:
    browser = getattr(item, "funcargs", {}).get("browser")
    if browser is None:
        pair = getattr(item, "funcargs", {}).get("pair", ())
        return [person.page for person in pair]
    return [page for context in browser.contexts for page in context.pages]
