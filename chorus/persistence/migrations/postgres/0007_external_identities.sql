-- Chorus schema version 7 for PostgreSQL: users who sign in through an external
-- identity provider (Clerk, OIDC; issue #14). One row per (issuer, subject):
-- the provider's stable user id is the only thing an identity is found by.
CREATE TABLE external_identities (
    issuer     TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The provider's verified e-mail (lower-case), kept only where the provider
    -- is configured with link_by_email; NULL otherwise.
    email      TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX external_identities_user ON external_identities (user_id);
CREATE INDEX external_identities_email ON external_identities (email) WHERE email IS NOT NULL;
