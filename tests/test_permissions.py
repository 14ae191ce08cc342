"""The permission table: complete, documented, and what the live server answers."""

from __future__ import annotations

import typing
from pathlib import Path

from chorus import permissions
from chorus.http import all_routes
from chorus.permissions import ROUTE_ACTIONS, Action, Who, allowed, outranks, standing
from chorus.protocol import ClientFrame

DOC = Path(__file__).parent.parent / "docs" / "permissions.md"


def test_every_http_route_names_its_action() -> None:
    # A route added without an entry fails here: the table must decide it.
    assert sorted(r.operation_id for r in all_routes()) == sorted(ROUTE_ACTIONS)


def test_every_client_frame_type_names_its_action() -> None:
    frames = sorted(cls.TYPE for cls in typing.get_args(ClientFrame))
    assert frames == sorted(permissions.FRAME_ACTIONS)


def test_routes_without_sign_in_are_the_anyone_entries() -> None:
    open_routes = {r.operation_id for r in all_routes() if not r.auth}
    assert open_routes == {k for k, v in ROUTE_ACTIONS.items() if v == permissions.ANYONE}


def test_docs_show_exactly_the_table_and_the_entries() -> None:
    text = DOC.read_text()
    assert permissions.markdown_table() in text
    assert permissions.markdown_entries(permissions.ROUTE_ACTIONS) in text
    assert permissions.markdown_entries(permissions.FRAME_ACTIONS) in text


def test_standing_prefers_the_server_role_then_ban_then_mute() -> None:
    assert standing("admin", None, banned=True) is Who.ADMIN
    assert standing("moderator", "member", muted=True) is Who.SERVER_MODERATOR
    assert standing("member", None, banned=True) is Who.BANNED
    assert standing("member", None) is Who.OUTSIDER
    assert standing("member", "member", muted=True) is Who.MUTED
    assert standing("member", "owner", muted=True) is Who.OWNER


def test_only_higher_standings_act_on_others() -> None:
    assert outranks(Who.MODERATOR, Who.MUTED)
    assert not outranks(Who.MODERATOR, Who.MODERATOR)
    assert outranks(Who.OWNER, Who.MODERATOR)
    assert not outranks(Who.SERVER_MODERATOR, Who.ADMIN)
    assert not allowed(Action.ADMIN, Who.SERVER_MODERATOR)
