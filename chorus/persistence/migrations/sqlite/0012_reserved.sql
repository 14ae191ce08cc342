-- Chorus schema version 12 is the settings table of the `settings` branch
-- (migration 0012 there); this empty file holds its number on the
-- `e2eserver` branch only, so that 0013 loads. Drop it when merging.
SELECT 1;
