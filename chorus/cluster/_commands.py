"""`Commands`: request/reply commands to the Redis the nodes share, whatever it is.

One server over TCP or TLS: `RespClient`, our own (`RedisBus.commands`). A
Redis Cluster, or a unix socket: `CoredisCommands`, coredis' client adapted.
The send limits' report and the session cache speak this one interface, so
each has one path; `Script` runs Lua scripts through it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Sequence
from typing import Any, Final, Protocol

from coredis.exceptions import ResponseError
from coredis.parser import Parser
from coredis.tokens import PureToken

from ._connection import ReplyError


class Commands(Protocol):
    """Runs commands on the Redis the nodes share.

    Guarantee: `execute` returns the replies to `commands` in order, as RESP2
    has them (bulk and simple strings `bytes`, a null one `None`, integers
    `int`, arrays lists), a command Redis refused answered by a `ReplyError`
    (not raised); it raises (any other exception) when Redis could not be
    asked or did not answer, and then the commands may have run or not.
    """

    async def execute(self, commands: Sequence[Sequence[bytes]]) -> list[object]: ...


class CoredisCommands:
    """`Commands` over a coredis client: a Redis Cluster (each command goes to the node
    owning its keys' slot), or a server coredis reaches and `RespClient` does not
    (a unix socket).

    It speaks the commands Chorus sends: `GET key`, `SET key value [PX ms] [NX]`,
    `EVALSHA`/`EVAL script numkeys key... arg...`, and presence's `HGETALL key`,
    `HSET key field value`, `HDEL key field`, `SADD key member`, `SREM key
    member` and `EXISTS key`; any other raises `ValueError`. Several go in one
    pipeline (one round trip per node); on a cluster, unlike on one server, they
    do not reach Redis together. A refusal's text is Redis's, but for a plain
    `ERR`, which coredis drops.
    `client` must leave replies as bytes (`decode_responses=False`).
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    async def execute(self, commands: Sequence[Sequence[bytes]]) -> list[object]:
        if not commands:
            return []
        if len(commands) == 1:  # a pipeline would cost more than the command
            return [await _answer(commands[0], _request(self._client, commands[0]))]
        async with self._client.pipeline(transaction=False, raise_on_error=False) as pipe:
            requests = [_request(pipe, command) for command in commands]
        return [
            await _answer(command, request)
            for command, request in zip(commands, requests, strict=True)
        ]


def _request(client: Any, command: Sequence[bytes]) -> Any:
    """`command` as coredis' method call on `client` (a client or a pipeline)."""
    verb, *args = command
    name = verb.upper()
    if name == b"GET" and len(args) == 1:
        return client.get(args[0])
    if name == b"SET" and len(args) >= 2:
        px, condition = _set_options(args[2:])
        return client.set(args[0], args[1], px=px, condition=condition)
    if len(args) == 1 and name in (b"HGETALL", b"EXISTS"):
        return client.hgetall(args[0]) if name == b"HGETALL" else client.exists(args)
    if len(args) == 2 and name in (b"HDEL", b"SADD", b"SREM"):
        method = {b"HDEL": client.hdel, b"SADD": client.sadd, b"SREM": client.srem}[name]
        return method(args[0], [args[1]])
    if name == b"HSET" and len(args) == 3:
        return client.hset(args[0], {args[1]: args[2]})
    if name in (b"EVALSHA", b"EVAL") and len(args) >= 2:
        script, count, rest = args[0], int(args[1]), args[2:]
        run = client.evalsha if name == b"EVALSHA" else client.eval
        return run(script, rest[:count], rest[count:])
    raise ValueError(f"a command CoredisCommands does not speak: {verb!r}")


def _set_options(options: Sequence[bytes]) -> tuple[int | None, PureToken | None]:
    """`[PX ms] [NX]` as coredis' `set` takes them."""
    px: int | None = None
    condition: PureToken | None = None
    rest = [option.upper() for option in options]
    while rest:
        option = rest.pop(0)
        if option == b"PX" and rest:
            px = int(rest.pop(0))
        elif option == b"NX":
            condition = PureToken.NX
        else:
            raise ValueError(f"a SET option CoredisCommands does not speak: {option!r}")
    return px, condition


async def _answer(command: Sequence[bytes], request: Awaitable[object]) -> object:
    """coredis' answer to `command` as RESP2 has it (its `SET` answers True or False, its
    `HGETALL` a dict)."""
    try:
        reply = await request
    except ResponseError as refused:
        code = _ERROR_CODES.get(type(refused))
        return ReplyError(f"{code} {refused}" if code else str(refused))
    verb = command[0].upper()
    if verb == b"SET":
        return b"OK" if reply else None
    if verb == b"HGETALL":
        return [item for pair in reply.items() for item in pair]  # type: ignore[attr-defined]
    return reply


_ERROR_CODES: Final = {
    error: code
    for code, error in Parser.EXCEPTION_CLASSES.items()
    if isinstance(error, type) and issubclass(error, ResponseError)
}
"""The code coredis takes off the error it raises for a reply (`NOSCRIPT`, `NOAUTH`...),
put back: `Script` and the logs want Redis's words."""


class Script:
    """A Lua script run by its SHA1 (`EVALSHA`), sent whole (`EVAL`) where Redis does not
    have it yet (after a restart or `SCRIPT FLUSH`; on a cluster, per node)."""

    def __init__(self, source: str) -> None:
        self._source = source.encode()
        self._sha = hashlib.sha1(self._source).hexdigest().encode()

    async def run_many(
        self, client: Commands, calls: Sequence[tuple[Sequence[bytes], Sequence[bytes]]]
    ) -> list[object]:
        """Run the script once per `(keys, args)`, all in one round trip (two if Redis
        lacked it); the replies in order (a `ReplyError` for a call the script failed)."""
        replies = await client.execute(
            [self._command(b"EVALSHA", self._sha, k, a) for k, a in calls]
        )
        missing = [i for i, reply in enumerate(replies) if _no_script(reply)]
        if missing:
            again = await client.execute(
                [self._command(b"EVAL", self._source, *calls[i]) for i in missing]
            )
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    @staticmethod
    def _command(
        verb: bytes, script: bytes, keys: Sequence[bytes], args: Sequence[bytes]
    ) -> list[bytes]:
        return [verb, script, b"%d" % len(keys), *keys, *args]


def _no_script(reply: object) -> bool:
    return isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT")
