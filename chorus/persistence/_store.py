"""`Store`: everything Chorus keeps durably, the union of the role protocols of `roles/`."""

from __future__ import annotations

from typing import Protocol

from .roles.accounts import Accounts
from .roles.audit import AuditLog
from .roles.bots import BotRuns
from .roles.changes import MessageChanges
from .roles.devices import Devices
from .roles.events import EventLog
from .roles.files import Files
from .roles.identities import Identities
from .roles.inbox import Inbox
from .roles.invites import Invites
from .roles.moderation import Moderation
from .roles.rooms import Rooms
from .roles.search import Search
from .roles.secrets import Secrets
from .roles.sessions import SessionList
from .roles.settings import ServerSettings
from .roles.todevice import ToDevice
from .roles.twofactor import TwoFactor


class Store(
    Accounts,
    Rooms,
    EventLog,
    MessageChanges,
    Inbox,
    Search,
    Secrets,
    BotRuns,
    Files,
    SessionList,
    TwoFactor,
    Identities,
    AuditLog,
    Moderation,
    Invites,
    Devices,
    ToDevice,
    ServerSettings,
    Protocol,
):
    """Users, sessions, rooms, memberships and messages.

    Rules every backend keeps (the contract suite in `tests/persistence/`
    runs against each one):

    - Each method is one transaction: it happens entirely or not at all.
    - A method that returns has committed its writes durably; one that
      raises `StoreUnavailable` stored nothing (see there).
    - Missing rows a write depends on raise `NotFound`; uniqueness
      violations raise `Conflict`; other rule breaks by the caller raise
      `ValueError`. `get_*` lookups of missing rows return None, listings
      return an empty list; each method says where it differs.
    - Every method that records a time takes it as `now` (milliseconds since
      the epoch) from the caller.
    - The store checks integrity, not permissions: callers check that a
      user may read, post in or manage a room. The exceptions, checked in
      the transaction and raising `Forbidden`: who may edit, delete or
      react to a message (asking `chorus.permissions`, like every caller),
      and `search`, which only ever finds messages of rooms the user is a
      member of.

    Room events: every message, edit, delete and reaction is a row of its
    room's log (`Message`, see `EventKind`) and takes the room's next seq,
    so a client that replays seqs after its last one sees every change.
    Each write of events is idempotent by (sender, client id), across all
    rooms and kinds: a repeated client id stores nothing and returns the
    original event with `duplicate=True`.

    A caller that needs only one role may ask for that protocol alone (e.g.
    `Accounts`); the stores of both engines implement every role.
    """
