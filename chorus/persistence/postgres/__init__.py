"""The PostgreSQL engine: asyncpg behind a trio-asyncio bridge, shared by many nodes."""
