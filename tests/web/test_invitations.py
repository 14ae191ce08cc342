"""The web client's invitations and leaving a room, in a real browser (Playwright)."""

from __future__ import annotations

import secrets

import attrs
import httpx
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import ARTIFACTS, PASSWORD
from tests.web.test_web_client import Person, open_person

expect.set_options(timeout=15_000)


@attrs.define
class ApiUser:
    """An account driven over HTTP (to set up what the page reacts to)."""

    api: httpx.Client
    id: str
    username: str

    def call(self, method: str, path: str, **options: object) -> httpx.Response:
        response = self.api.request(method, path, **options)  # type: ignore[arg-type]
        assert response.status_code < 300, response.text
        return response

    def id_of(self, username: str) -> str:
        return str(self.call("GET", f"/users/by-name/{username}").json()["id"])


def api_user(node_url: str, prefix: str) -> ApiUser:
    username = f"{prefix}{secrets.token_hex(3)}"
    api = httpx.Client(base_url=f"{node_url}/api/v1")
    signed_up = api.post("/auth/register", json={"username": username, "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    api.headers["Authorization"] = f"Bearer {signed_up.json()['access_token']}"
    return ApiUser(api, signed_up.json()["user"]["id"], username)


def create_room(person: Person, name: str, kind: str) -> None:
    page = person.page
    page.get_by_label("New room").fill(name)
    page.get_by_label("Kind").select_option(kind)
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("#room-title")).to_have_text(name)


def invite(page: Page, username: str) -> None:
    """Invite through the open room's "Invite…" form."""
    if page.locator("#invite-form").is_hidden():
        page.get_by_role("button", name="Invite…").click()
    page.get_by_label("Invite a person").fill(username)
    page.get_by_role("button", name="Invite", exact=True).click()


def rooms_listed(page: Page) -> list[str]:
    return page.locator("#room-list .room-item .name").all_inner_texts()


def test_an_invitation_arrives_live_is_accepted_and_the_member_leaves_on_every_tab(
    browser: Browser, node_url: str
) -> None:
    ada = open_person(browser, node_url, "ada")
    bob = open_person(browser, node_url, "bob")
    try:
        lobby = f"lobby-{secrets.token_hex(2)}"
        create_room(bob, lobby, "public")  # the room bob's view moves to after leaving
        plans = f"plans-{secrets.token_hex(2)}"
        create_room(ada, plans, "private")
        invite(ada.page, bob.username)
        expect(ada.page.locator("#invite-result")).to_have_text(
            f"Invited {bob.username}: they can accept or decline."
        )

        # Live (room_invited): bob's page was open before the invitation was made.
        invitation = bob.page.locator("#invites .invite")
        expect(invitation).to_have_count(1)
        expect(invitation).to_contain_text(f"{plans} from {ada.username}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        bob.page.screenshot(path=ARTIFACTS / "web-client-invitation.png")
        ada.page.screenshot(path=ARTIFACTS / "web-client-invite-form.png")
        bob.page.get_by_role("button", name=f"Accept the invitation to {plans}").click()
        expect(bob.page.locator("#room-title")).to_have_text(plans)
        expect(bob.page.locator("#invitations")).to_be_hidden()
        bob.say("thanks for the invitation")
        expect(ada.message("thanks for the invitation")).to_have_count(1)
        ada.say("welcome in")
        expect(bob.message("welcome in")).to_have_count(1)

        # A second tab of bob's (the same profile: the refresh cookie restores the session).
        other_tab = bob.context.new_page()
        other_tab.goto(f"{node_url}/")
        expect(other_tab.locator("#room-list").get_by_role("button", name=plans)).to_have_count(1)

        bob.page.once("dialog", lambda dialog: dialog.accept())
        bob.page.get_by_role("button", name="Leave room").click()
        expect(bob.page.locator("#room-title")).to_have_text(lobby)  # moved to another room
        expect(bob.page.locator("#room-list").get_by_role("button", name=plans)).to_have_count(0)
        # The other tab is told too (room_removed reaches every connection of bob's).
        expect(other_tab.locator("#room-list").get_by_role("button", name=plans)).to_have_count(0)
        # Gone for good: after a reload the list (from the server) does not have it.
        bob.page.reload()
        expect(bob.page.locator("#room-title")).to_have_text(lobby)
        assert plans not in rooms_listed(bob.page)

        # The owner cannot leave: the server's refusal, explained.
        ada.page.once("dialog", lambda dialog: dialog.accept())
        ada.page.get_by_role("button", name="Leave room").click()
        expect(ada.page.locator("#room-error")).to_have_text(
            "You own this room, and the owner cannot leave it: make another member the owner first."
        )
        expect(ada.page.locator("#room-title")).to_have_text(plans)
    finally:
        ada.context.close()
        bob.context.close()


def test_a_declined_a_revoked_and_a_refused_invitation(browser: Browser, node_url: str) -> None:
    dan = api_user(node_url, "dan")  # owns a private room, over HTTP
    eve = api_user(node_url, "eve")  # banned from it
    ada = open_person(browser, node_url, "ada")
    cy = open_person(browser, node_url, "cy")
    try:
        secret = f"secret-{secrets.token_hex(2)}"
        room = dan.call("POST", "/rooms", json={"name": secret, "kind": "private"}).json()
        dan.call("POST", f"/rooms/{room['id']}/bans", json={"user_id": eve.id})
        # Cy's other invitation: once it is listed after a reload, the list is the server's.
        later = f"later-{secrets.token_hex(2)}"
        other = dan.call("POST", "/rooms", json={"name": later, "kind": "private"}).json()
        dan.call("POST", f"/rooms/{other['id']}/invites", json={"user_id": dan.id_of(cy.username)})
        listed = cy.page.locator("#invites .invite .name")
        expect(listed).to_have_text([f"🔒 {later}"])
        # Ada, invited before she opened the page: listed from GET /me/invites.
        dan.call("POST", f"/rooms/{room['id']}/invites", json={"user_id": dan.id_of(ada.username)})
        ada.page.reload()
        ada.page.get_by_role("button", name=f"Accept the invitation to {secret}").click()
        expect(ada.page.locator("#room-title")).to_have_text(secret)
        # A plain member may not invite: no "Invite…" action.
        expect(ada.page.get_by_role("button", name="Invite…")).to_be_hidden()
        dan.call(
            "PUT",
            f"/rooms/{room['id']}/members/{dan.id_of(ada.username)}/role",
            json={"role": "moderator"},
        )
        ada.page.reload()  # the room list (with her role) comes again
        expect(ada.page.locator("#room-title")).to_have_text(secret)

        # The server's refusals, in plain words.
        result = ada.page.locator("#invite-result")
        invite(ada.page, f"nobody{secrets.token_hex(3)}")
        expect(result).to_contain_text("Nobody is called")
        invite(ada.page, eve.username)
        expect(result).to_have_text(f"{eve.username} is banned from this room: lift the ban first.")
        invite(ada.page, dan.username)
        expect(result).to_have_text(f"{dan.username} is a member of this room already.")
        # Escape closes the form, and the keyboard is back on the action that opened it.
        ada.page.get_by_label("Invite a person").press("Escape")
        expect(ada.page.locator("#invite-form")).to_be_hidden()
        expect(ada.page.get_by_role("button", name="Invite…")).to_be_focused()
        expect(ada.page.get_by_role("button", name="Invite…")).to_have_attribute(
            "aria-expanded", "false"
        )

        # Cy declines (live): the invitation goes, and stays gone after a reload.
        invite(ada.page, cy.username)
        expect(result).to_have_text(f"Invited {cy.username}: they can accept or decline.")
        expect(listed).to_have_text([f"🔒 {later}", f"🔒 {secret}"])
        cy.page.get_by_role("button", name=f"Decline the invitation to {secret}").click()
        expect(listed).to_have_text([f"🔒 {later}"])
        assert dan.call("GET", f"/rooms/{room['id']}/invites").json()["invites"] == []
        cy.page.reload()
        expect(listed).to_have_text([f"🔒 {later}"])
        assert secret not in rooms_listed(cy.page)

        # Revoked while shown (no event says so): gone once the page reconnects.
        dan.call("POST", f"/rooms/{room['id']}/invites", json={"user_id": dan.id_of(cy.username)})
        expect(listed).to_have_text([f"🔒 {later}", f"🔒 {secret}"])
        dan.call("DELETE", f"/rooms/{room['id']}/invites/{dan.id_of(cy.username)}")
        cy.context.set_offline(True)
        expect(cy.page.locator("#status")).to_contain_text("Offline")
        cy.context.set_offline(False)
        expect(listed).to_have_text([f"🔒 {later}"])
        expect(cy.page.locator("#status")).to_be_hidden()
    finally:
        ada.context.close()
        cy.context.close()
        dan.api.close()
        eve.api.close()
