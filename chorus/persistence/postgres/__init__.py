"""The PostgreSQL engine: asyncpg on an asyncio thread bridged to trio; shared by many nodes."""
