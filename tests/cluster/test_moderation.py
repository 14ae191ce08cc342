"""Moderation across `chorus serve` processes (shared PostgreSQL and Redis): a ban, a mute
and an admin's session revocation made through one node apply at once on the other."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from chorus import protocol
from chorus.client import ApiError
from tests.cli.test_serve import CHORUS
from tests.cluster.nodes import chatter, running_nodes
from tests.pgserver import PgServer
from tests.redisserver import RedisServer

WITHIN = 5.0
"""Seconds a change made on one node may take to reach a socket on the other."""


async def test_ban_mute_and_session_revocation_reach_the_other_process(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    _, database_url = await pg_server.new_database()
    async with (
        running_nodes(tmp_path, 2, database_url=database_url, redis_url=redis.url) as nodes,
        chatter("ada", nodes[0].http_port, nodes[0].gateway_port) as ada,
        chatter("bob", nodes[1].http_port, nodes[1].gateway_port) as bob,
    ):
        room = await ada.api.create_room("lobby", "public")
        await bob.api.join_room(room.id)
        await bob.client.join(room.id)
        await bob.client.send(room.id, "before the mute")

        await ada.api.mute(room.id, bob.api.user.id)
        with pytest.raises(ApiError) as muted:  # the very next send, on the other process
            await bob.client.send(room.id, "muted")
        assert muted.value.code == protocol.ErrorCode.FORBIDDEN

        await ada.api.ban(room.id, bob.api.user.id, "spam")
        removed = protocol.RoomRemoved(room=room.id, by=ada.api.user.id)
        await bob.wait_until(lambda: removed in bob.memberships, WITHIN)
        with pytest.raises(ApiError) as rejoin:
            await bob.api.join_room(room.id)
        assert rejoin.value.status == 403

        # The first admin is made by an operator, on the shared store.
        granted = await trio.run_process(
            [*CHORUS, "admin", "grant-role", ada.api.user.username, "admin"],
            env={**os.environ, "CHORUS_DATABASE_URL": database_url},
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert granted.returncode == 0, granted.stderr.decode()
        # Carol's socket (on the other process) closes when an admin ends her sessions: her
        # SDK then stops with `session_revoked`, which ends her block.
        with pytest.RaisesGroup(
            pytest.RaisesExc(ApiError, check=lambda e: e.code == "session_revoked"),
            flatten_subgroups=True,
        ):
            async with chatter("carol", nodes[1].http_port, nodes[1].gateway_port) as carol:
                assert await ada.api.admin_revoke_sessions(carol.api.user.id) == 1
                with trio.fail_after(WITHIN):
                    await trio.sleep_forever()
