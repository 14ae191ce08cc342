"""The store's roles, one module each: its protocol, its transactions, its rules.

Every module holds a small protocol (`Accounts`, `Rooms`, `EventLog`,
`MessageChanges`, `Inbox`, `Search`, `Secrets`, `BotRuns`), the engine-neutral
transactions that implement it (generators over `_sql.Query`) and a mixin
(`...OnSql`) that runs them through any engine's `_read` and `_write`.
`chorus.persistence.Store` is the union of the protocols.
"""
