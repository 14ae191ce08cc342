"""`admitted`: the batch's split by its senders' verdicts (every append of posts runs it)."""

from __future__ import annotations

from chorus.persistence import Forbidden, NewMessage
from chorus.persistence.roles.events import admitted
from chorus.persistence.roles.moderation import Standing


def _new(sender_id: str, client_id: str) -> NewMessage:
    return NewMessage(sender_id=sender_id, body="hi", client_id=client_id, created_at=1)


def test_admitted_keeps_the_batch_order_and_asks_once_per_sender() -> None:
    member = Standing(server_role="member", room_role=None, muted=False, banned=False, locked=False)
    refusal = Forbidden("muted")
    asked: list[tuple[str, Standing | None]] = []

    def admit(user_id: str, found: Standing | None) -> Exception | None:
        asked.append((user_id, found))
        return refusal if user_id == "bob" else None

    batch = [_new("ada", "a1"), _new("bob", "b1"), _new("ada", "a2"), _new("cy", "c1")]
    batch.append(_new("bob", "b2"))
    kept, refusals = admitted(batch, {"ada": member, "bob": member}, admit)
    assert [new.client_id for new in kept] == ["a1", "a2", "c1"]
    assert refusals == [None, refusal, None, None, refusal]
    assert sorted(asked, key=lambda ask: ask[0]) == [("ada", member), ("bob", member), ("cy", None)]


def test_admitted_of_an_empty_batch_asks_nobody() -> None:
    def admit(user_id: str, found: Standing | None) -> Exception | None:
        raise AssertionError(user_id)

    assert admitted([], {}, admit) == ([], [])
