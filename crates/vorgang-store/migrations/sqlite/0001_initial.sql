-- Initial schema (SQLite).
--
-- Timestamps are TEXT in RFC 3339, UTC, with exactly nine fractional digits
-- (e.g. 2025-01-31T12:00:00.123456789Z): they round-trip chrono's nanoseconds exactly and
-- compare chronologically as text. JSON values are TEXT holding serialized JSON.

CREATE TABLE imports (
    id                           TEXT    NOT NULL PRIMARY KEY,
    client_id                    TEXT    NOT NULL,
    environment                  TEXT    NOT NULL CHECK (environment IN ('TEST', 'PRODUCTION')),
    status                       TEXT    NOT NULL CHECK (status IN ('ACCEPTED', 'PARTNER_READY', 'SENDING', 'IMPORTED', 'COMPLETED', 'FAILED', 'IN_DOUBT')),
    idempotency_key              TEXT,
    fingerprint                  TEXT    NOT NULL,
    request                      TEXT,
    tippgeber_externe_partner_id TEXT    NOT NULL,
    tippgeber_partner_id         TEXT,
    europace_vorgangsnummer      TEXT,
    crm_kennung                  TEXT,
    messages                     TEXT    NOT NULL,
    failure                      TEXT,
    attempts                     INTEGER NOT NULL CHECK (attempts >= 0),
    created_at                   TEXT    NOT NULL,
    updated_at                   TEXT    NOT NULL,
    -- One import per client and Idempotency-Key, also across replicas. NULL keys never conflict.
    CONSTRAINT imports_client_idempotency_key UNIQUE (client_id, idempotency_key)
) STRICT;

-- list(status), oldest first.
CREATE INDEX imports_status_created_at ON imports (status, created_at);
-- purge_finished_before(cutoff).
CREATE INDEX imports_status_updated_at ON imports (status, updated_at);

CREATE TABLE tippgeber_partners (
    environment        TEXT NOT NULL CHECK (environment IN ('TEST', 'PRODUCTION')),
    externe_partner_id TEXT NOT NULL,
    partner_id         TEXT NOT NULL,
    PRIMARY KEY (environment, externe_partner_id)
) STRICT;

CREATE TABLE clients (
    client_id     TEXT NOT NULL PRIMARY KEY,
    secret_hash   TEXT NOT NULL,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    telefonnummer TEXT NOT NULL,
    organisation  TEXT NOT NULL,
    -- JSON array of strings.
    scopes        TEXT NOT NULL,
    revoked_at    TEXT,
    created_at    TEXT NOT NULL
) STRICT;

CREATE TABLE signing_keys (
    kid         TEXT    NOT NULL PRIMARY KEY,
    algorithm   TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    encrypted   INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    public_key  BLOB    NOT NULL,
    created_at  TEXT    NOT NULL,
    retired_at  TEXT
) STRICT;
