-- Chorus schema version 6: reserved for the two-factor authentication change
-- (issue #14, branch totp) that is merged with it; empty on its own, so that
-- versions stay 1, 2, 3… without gaps.
SELECT 1;
