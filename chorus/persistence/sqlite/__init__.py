"""The embedded SQLite engine: one database file driven from a worker thread."""
