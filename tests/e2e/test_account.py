"""2FA login and session management through the SDK and `chorus chat`, on one node and
across two (a revocation on one node closes the session's sockets on the other)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from chorus import protocol
from chorus.auth import code_at, time_step
from chorus.client import ApiError, HttpApi, TwoFactorRequired
from chorus.client.terminal import run_chat
from chorus.persistence import now_ms
from chorus.protocol import CloseCode
from tests.e2e.node import PASSWORD, open_node
from tests.e2e.test_terminal import Keyboard, Screen
from tests.gateway.test_gateway import closed_code
from tests.redisserver import RedisServer, running_redis
from tests.wsclient import ws_connect


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with running_redis(tmp_path / "redis") as server:
        yield server


async def enable_2fa(api: HttpApi) -> tuple[str, int, list[str]]:
    """Turn 2FA on; the secret, the step of the code used, the recovery codes."""
    enrolment = await api.enrol_two_factor(PASSWORD)
    step = time_step(now_ms())
    codes, revoked = await api.confirm_two_factor(code_at(enrolment.secret, step))
    assert revoked == 0
    return enrolment.secret, step, codes


async def test_the_sdk_logs_in_with_a_second_step_and_manages_its_sessions(
    tmp_path: Path,
) -> None:
    async with open_node(tmp_path) as running, HttpApi(running.http_url) as first:
        await first.register("ada", PASSWORD)
        secret, step, codes = await enable_2fa(first)
        assert (await first.two_factor()).enabled
        async with HttpApi(running.http_url) as second:
            with pytest.raises(TwoFactorRequired) as needed:
                await second.login("ada", PASSWORD)
            with pytest.raises(ApiError) as wrong:
                await second.complete_login(needed.value.challenge_token, codes[0] + "x")
            assert wrong.value.code == "invalid_code"
            await second.complete_login(needed.value.challenge_token, code_at(secret, step + 1))
            sessions = await second.sessions()
            assert [s.current for s in sessions] == [False, True]
            assert sessions[1].user_agent.startswith("chorus-sdk/")
            async with HttpApi(running.http_url) as third:
                await third.login("ada", PASSWORD, code=codes[0])  # a recovery code, at once
                assert await second.revoke_other_sessions() == 2
                for ended in (first, third):
                    with pytest.raises(ApiError) as refused:
                        await ended.me()
                    assert refused.value.status == 401
            assert (await second.me()).username == "ada"
            await second.disable_two_factor(PASSWORD, codes[1])
            assert not (await second.two_factor()).enabled


async def test_chorus_chat_asks_for_the_code_and_lists_and_revokes_sessions(
    tmp_path: Path,
) -> None:
    async with open_node(tmp_path) as running, HttpApi(running.http_url) as sdk:
        await sdk.register("ada", PASSWORD)
        secret, step, _ = await enable_2fa(sdk)
        keyboard, screen = Keyboard(), Screen()
        for answer in (PASSWORD, "000000" if code_at(secret, step + 1) != "000000" else "111111"):
            keyboard.type(answer)
        keyboard.type(code_at(secret, step + 1))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_chat, running.http_url, "ada", keyboard, screen)
            await screen.wait_for("two-factor code (or a recovery code): ")
            await screen.wait_for("wrong or already used code")
            await screen.wait_for("/help lists the commands")
            keyboard.type("/sessions")
            await screen.wait_for("(this one)")
            assert "1. chorus-sdk/" in screen.getvalue()
            keyboard.type("/2fa")
            await screen.wait_for("two-factor authentication is on (10 recovery codes left)")
            keyboard.type("/revoke others")
            await screen.wait_for("signed out 1 other session(s)")
            with pytest.raises(ApiError) as refused:
                await sdk.me()
            assert refused.value.status == 401
            keyboard.type("/quit")


async def test_revoking_a_session_on_one_node_closes_its_socket_on_another(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(tmp_path, redis_url=redis.url) as node_b,
        HttpApi(node_a.http_url) as desk,
        HttpApi(node_a.http_url) as phone,
    ):
        await desk.register("wanderer", PASSWORD)
        await phone.login("wanderer", PASSWORD)
        assert phone.session is not None
        async with ws_connect(node_b.gateway_port) as ws:
            hello = protocol.Hello(token=phone.session.access_token)
            await ws.send_message(protocol.encode(hello).decode())
            assert isinstance(protocol.decode_server_frame(await ws.get_message()), protocol.Ready)
            await desk.revoke_session(phone.session.session_id)
            assert await closed_code(ws) == CloseCode.SESSION_REVOKED
