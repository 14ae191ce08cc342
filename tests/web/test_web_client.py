"""The web client in a real browser: two people chat through `chorus serve` (issue #17)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import attrs
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.web.conftest import ARTIFACTS, sign_up

expect.set_options(timeout=15_000)


@attrs.define
class Person:
    username: str
    context: BrowserContext
    page: Page
    console: list[str]
    """Console messages of the page (CSP violations are reported there)."""

    def room(self, name: str) -> None:
        self.page.locator("#room-list").get_by_role("button", name=name).click()
        expect(self.page.locator("#room-title")).to_have_text(name)

    def say(self, text: str) -> None:
        self.page.get_by_label("Message", exact=True).fill(text)
        self.page.get_by_label("Message", exact=True).press("Enter")

    def message(self, text: str) -> object:
        return self.page.locator("#messages article.msg").filter(has_text=text)


def open_person(browser: Browser, node_url: str, prefix: str, **options: object) -> Person:
    context = browser.new_context(**options)  # type: ignore[arg-type]
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    username = f"{prefix}{secrets.token_hex(3)}"
    sign_up(page, node_url, username)
    return Person(username, context, page, console)


@pytest.fixture(scope="module")
def pair(browser: Browser, node_url: str) -> Iterator[tuple[Person, Person]]:
    """Two people in two browser contexts, both in a public room "general-…" ada made."""
    ada = open_person(browser, node_url, "ada")
    bob = open_person(browser, node_url, "bob")
    try:
        yield ada, bob
    finally:
        ada.context.close()
        bob.context.close()
