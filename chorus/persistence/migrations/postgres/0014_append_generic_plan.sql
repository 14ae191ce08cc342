-- chorus_append_messages keeps one plan per connection for its statements, whatever the batch.
--
-- PL/pgSQL's plan cache plans a statement again on every call for as long as a
-- plan made for the actual arguments looks cheaper than the generic one. The
-- append's arrays bring their length into the estimates (unnest), so while
-- batches are of one or two messages (three nodes sharing the rooms: 1.1
-- messages a batch) its main statement was planned on nearly every call:
-- 10,315 plans in 10,634 calls, 0.36 ms of planning an append for 0.28 ms of
-- execution, a third of PostgreSQL's CPU in the benchmark (docs/benchmarks.md).
-- The generic plan is the one migration 10 made safe: the duplicate lookups use
-- the unique index whatever the tables' sizes. Version 1's overload is unchanged.
ALTER FUNCTION chorus_append_messages(TEXT, TEXT[], TEXT[], TEXT[], TEXT[], BIGINT[], TEXT[])
    SET plan_cache_mode = force_generic_plan;
