"""Cookie-mode refreshes in one browser profile: the refresh cookie is shared by every tab.

Two `HttpApi` instances in one page stand for two tabs of one profile: the
same cookie jar, the same origin (and the same Web Locks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.web.conftest import PASSWORD

IMPORT_SDK = "const { HttpApi, ChorusError } = await import('/chorus-js/index.js');"


@pytest.fixture
def page(browser: Browser, node_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=node_url)
    try:
        opened = context.new_page()
        opened.goto("/shell.json")  # the origin, without the app's own session handling
        yield opened
    finally:
        context.close()


def test_tabs_refreshing_at_once_keep_their_session(page: Page) -> None:
    # Both present the cookie of the moment: without one refresh at a time per
    # profile, the second would present a spent token and revoke the session.
    outcome = page.evaluate(
        f"""async ([name, password]) => {{
            {IMPORT_SDK}
            const first = new HttpApi('', {{ tokenMode: 'cookie' }});
            await first.register(name, password);
            const second = new HttpApi('', {{ tokenMode: 'cookie' }});
            await second.refresh();  // the second tab restores the session from the cookie
            await Promise.all([first.refresh(), second.refresh(), first.refresh()]);
            const again = await second.refresh();
            return again.user.username;
        }}""",
        ["tabs", PASSWORD],
    )
    assert outcome == "tabs"


def test_a_tab_never_takes_over_another_accounts_session(page: Page) -> None:
    # One profile holds one refresh cookie: signing in as bob in another tab
    # replaces ada's. Ada's tab must end its session, not carry on as bob.
    outcome = page.evaluate(
        f"""async ([password]) => {{
            {IMPORT_SDK}
            const ada = new HttpApi('', {{ tokenMode: 'cookie' }});
            await ada.register('adatab', password);
            const bob = new HttpApi('', {{ tokenMode: 'cookie' }});
            await bob.register('bobtab', password);
            let refused = null;
            try {{
              await ada.refresh();
            }} catch (error) {{
              refused = error instanceof ChorusError ? [error.status, error.code] : String(error);
            }}
            const still = await bob.refresh();
            return {{ refused, ada: ada.session, bob: still.user.username }};
        }}""",
        [PASSWORD],
    )
    assert outcome == {"refused": [401, "session_changed"], "ada": None, "bob": "bobtab"}
