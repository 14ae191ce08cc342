"""The store's roles, one module each: its protocol, its transactions, its rules.

Every module holds a small protocol (`Accounts`, `Rooms`, `EventLog`,
`MessageChanges`, `Inbox`, `Search`, `Secrets`, `BotRuns`, `Files`,
`SessionList`, `TwoFactor`, `Identities`, `AuditLog`, `Moderation`,
`Invites`, `ServerSettings`, `Devices`, `ToDevice`), the
engine-neutral transactions that implement it (generators over `_sql.Query`) and a mixin
(`...OnSql`) that runs them through any engine's `_read` and `_write`.
`chorus.persistence.Store` is the union of the protocols, and `StoreOnSql`
the union of the mixins, which each engine's store subclasses.
"""

from .accounts import AccountsOnSql
from .audit import AuditLogOnSql
from .bots import BotRunsOnSql
from .changes import MessageChangesOnSql
from .devices import DevicesOnSql
from .events import EventLogOnSql
from .files import FilesOnSql
from .identities import IdentitiesOnSql
from .inbox import InboxOnSql
from .invites import InvitesOnSql
from .moderation import ModerationOnSql
from .rooms import RoomsOnSql
from .search import SearchOnSql
from .secrets import SecretsOnSql
from .sessions import SessionListOnSql
from .settings import ServerSettingsOnSql
from .todevice import ToDeviceOnSql
from .twofactor import TwoFactorOnSql


class StoreOnSql(
    AccountsOnSql,
    RoomsOnSql,
    EventLogOnSql,
    MessageChangesOnSql,
    InboxOnSql,
    SearchOnSql,
    SecretsOnSql,
    BotRunsOnSql,
    FilesOnSql,
    SessionListOnSql,
    TwoFactorOnSql,
    IdentitiesOnSql,
    AuditLogOnSql,
    ModerationOnSql,
    InvitesOnSql,
    DevicesOnSql,
    ToDeviceOnSql,
    ServerSettingsOnSql,
):
    """Every role's methods, over an engine's `_read` and `_write`.

    An engine's store adds `append_messages` (its fast path), `append_admitted`, `_full_text`
    (see `roles.search.FullText`) and the two runners.
    """
