-- Placeholder for schema version 6 (two-factor authentication and sessions,
-- issue #14, branch totp), so that versions stay 1, 2, 3… without gaps on this
-- branch. When merging, take the totp branch's version of this file.
SELECT 1;
