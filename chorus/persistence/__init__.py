"""Durable state: users, sessions, rooms, memberships, messages and their events.

`Store` is the protocol every backend implements; `open_sqlite_store` opens
the embedded SQLite backend (the default when no database URL is set) and
`migrate_sqlite` brings a database file to the newest schema;
`open_postgres_store` and `migrate_postgres` do the same for the PostgreSQL
backend that several nodes share. Every backend
raises only `StoreError`s (plus `ValueError` for caller mistakes); see
`Store` for the rules all of them keep.
"""

from ._errors import Conflict as Conflict
from ._errors import FileNotReady as FileNotReady
from ._errors import Forbidden as Forbidden
from ._errors import Gone as Gone
from ._errors import NotFound as NotFound
from ._errors import SchemaTooNew as SchemaTooNew
from ._errors import StoreError as StoreError
from ._errors import StoreUnavailable as StoreUnavailable
from ._model import FILE_MOVES as FILE_MOVES
from ._model import HIGHLIGHT_END as HIGHLIGHT_END
from ._model import HIGHLIGHT_START as HIGHLIGHT_START
from ._model import AdmittedBatch as AdmittedBatch
from ._model import Appended as Appended
from ._model import Edit as Edit
from ._model import EventKind as EventKind
from ._model import FileChecks as FileChecks
from ._model import FileState as FileState
from ._model import FileVariant as FileVariant
from ._model import IdPrefix as IdPrefix
from ._model import Membership as Membership
from ._model import Message as Message
from ._model import NewFile as NewFile
from ._model import NewMessage as NewMessage
from ._model import Notification as Notification
from ._model import NotificationKind as NotificationKind
from ._model import NotifyLevel as NotifyLevel
from ._model import RefreshInvalid as RefreshInvalid
from ._model import RefreshOutcome as RefreshOutcome
from ._model import RefreshReused as RefreshReused
from ._model import RefreshRotated as RefreshRotated
from ._model import RemovedBots as RemovedBots
from ._model import Role as Role
from ._model import Room as Room
from ._model import RoomKind as RoomKind
from ._model import SearchHit as SearchHit
from ._model import Session as Session
from ._model import StoredFile as StoredFile
from ._model import Unread as Unread
from ._model import User as User
from ._model import new_id as new_id
from ._model import now_ms as now_ms
from ._store import Store as Store
from .postgres.store import PostgresStore as PostgresStore
from .postgres.store import migrate_postgres as migrate_postgres
from .postgres.store import open_postgres_store as open_postgres_store
from .roles.audit import MAX_AUDIT_PAGE as MAX_AUDIT_PAGE
from .roles.audit import AuditEvent as AuditEvent
from .roles.audit import AuditQuery as AuditQuery
from .roles.devices import ClaimedKey as ClaimedKey
from .roles.devices import Device as Device
from .roles.devices import KeyCounts as KeyCounts
from .roles.devices import OneTimeKey as OneTimeKey
from .roles.events import Admit as Admit
from .roles.invites import Invitation as Invitation
from .roles.moderation import SERVER_ROLES as SERVER_ROLES
from .roles.moderation import Ban as Ban
from .roles.moderation import Standing as Standing
from .roles.settings import StoredSetting as StoredSetting
from .roles.todevice import NewToDevice as NewToDevice
from .roles.todevice import Queued as Queued
from .roles.todevice import QueueFull as QueueFull
from .roles.todevice import ToDeviceMessage as ToDeviceMessage
from .roles.twofactor import TotpState as TotpState
from .sqlite.schema import Synchronous as Synchronous
from .sqlite.store import COMMIT_WINDOW as COMMIT_WINDOW
from .sqlite.store import DEFAULT_BUSY_TIMEOUT as DEFAULT_BUSY_TIMEOUT
from .sqlite.store import SqliteStore as SqliteStore
from .sqlite.store import migrate_sqlite as migrate_sqlite
from .sqlite.store import open_sqlite_store as open_sqlite_store
