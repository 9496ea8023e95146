-- Token revocation (RFC 7009) and the revocation generation (issues 10 and 12).
--
-- `revoked_tokens`: one row per access token a client revoked through POST /oauth2/revoke, kept
-- until its `exp` (Unix seconds) has passed (plus a grace period), then purged: an expired token
-- is refused for its `exp` anyway.
--
-- `revocation_generation`: one row with a counter that every revocation increases in its own
-- transaction, through the triggers below: a client revoked (clients.revoked_at set) or a token
-- revoked (a row inserted here). Each replica keeps the revocations in memory and reads only this
-- counter to learn whether anything changed (auth::RevocationCache). Triggers rather than the
-- adapter's statements, so every writer bumps it: the CLI of this build, a replica of the
-- previous build revoking a client during a rolling upgrade, an operator's manual UPDATE.
--
-- Rolling-upgrade safe: only additions.

CREATE TABLE revoked_tokens (
    jti        TEXT   NOT NULL PRIMARY KEY,
    client_id  TEXT   NOT NULL,
    -- The token's `exp`, Unix seconds.
    expires_at BIGINT NOT NULL,
    revoked_at TEXT COLLATE "C" NOT NULL
);

-- The refresh (live ones) and the purge (expired ones).
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

CREATE TABLE revocation_generation (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    generation BIGINT  NOT NULL
);

INSERT INTO revocation_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION bump_revocation_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE revocation_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER clients_revoked_bumps_generation
    AFTER UPDATE OF revoked_at ON clients
    FOR EACH ROW
    WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)
    EXECUTE FUNCTION bump_revocation_generation();

CREATE TRIGGER revoked_tokens_bumps_generation
    AFTER INSERT ON revoked_tokens
    FOR EACH ROW
    EXECUTE FUNCTION bump_revocation_generation();
