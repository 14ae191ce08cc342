"""Turning asyncpg's errors into `StoreError`s, and keeping passwords out of messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import asyncpg

from .._errors import StoreError, StoreUnavailable

# SQLSTATE classes and codes that mean "the database, not the request, failed":
# connection exceptions, insufficient resources, operator intervention
# (shutdown, statement timeout), system errors, transaction rollbacks
# (serialization failure, deadlock) and lock_not_available.
_UNAVAILABLE_CLASSES: Final = frozenset({"08", "40", "53", "57", "58", "XX"})
_UNAVAILABLE_CODES: Final = frozenset({"55P03", "55006"})


@contextlib.contextmanager
def translate_errors(database: str) -> Iterator[None]:
    """Turn every driver and network error into a `StoreError` (or `ValueError`).

    Unique and foreign-key failures were already turned into violations
    (`dialect.execute`), which transactions translate where they expect
    them. Failures of the database or the network become
    `StoreUnavailable`; anything else a plain `StoreError`.
    """
    try:
        yield
    except StoreError:
        raise
    except asyncpg.PostgresError as exc:
        code: str = exc.sqlstate or ""
        text = f"{database}: {exc.__class__.__name__}: {exc} (SQLSTATE {code})"
        if code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES:
            raise StoreUnavailable(text) from exc
        # Anything else is a bug, or data PostgreSQL cannot hold (class 22, such as a
        # NUL character in a text): a plain StoreError, so callers that handle
        # store failures refuse the request instead of crashing.
        raise StoreError(text) from exc
    except (asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
        # Client-side: the connection was lost or closed, the pool is closed.
        raise StoreUnavailable(f"{database}: {exc.__class__.__name__}: {exc}") from exc
    except TimeoutError as exc:  # asyncio.TimeoutError is TimeoutError since 3.11
        raise StoreUnavailable(
            f"{database}: timed out (connecting, waiting for a connection or a statement)"
        ) from exc
    except OSError as exc:
        raise StoreUnavailable(f"{database}: cannot connect: {exc}") from exc
