-- Delivery when Europace is down and webhooks (issue 13).
--
-- imports: the state QUEUED (Prefer: respond-async, Europace unavailable, nothing created);
-- `notify` (the partner's first answer was 202 or 504: changes into COMPLETED, FAILED, IN_DOUBT
-- are reported to its webhook); `next_attempt_at` (when a QUEUED import is next delivered). The
-- background task claims due imports through the partial index `imports_queued_due`, which holds
-- the queued imports only.
--
-- SQLite cannot alter a CHECK constraint; allowing one more value does not change what is stored,
-- so the constraint's text is edited in place (https://www.sqlite.org/lang_altertable.html,
-- "otheralter"): after the ADD COLUMNs (which parse the table's text), and the schema is reloaded
-- (`writable_schema = RESET`).
--
-- clients: the webhook URL and its signing secret (the key bytes, AES-256-GCM encrypted with
-- `key_encryption_key` when one is configured, as the signing keys are).
--
-- webhook_outbox: events waiting for delivery, written in the same transaction as the state
-- change that causes them, deleted once delivered (or given up after 24 h). `payload` is the
-- body exactly as signed; it holds ids and states, no personal data.

ALTER TABLE imports ADD COLUMN notify INTEGER NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN next_attempt_at TEXT;
CREATE INDEX imports_queued_due ON imports (next_attempt_at, id) WHERE status = 'QUEUED';

PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql, '''FAILED'', ''IN_DOUBT'')',
    '''FAILED'', ''IN_DOUBT'', ''QUEUED'')')
    WHERE type = 'table' AND name = 'imports';
PRAGMA writable_schema = RESET;

ALTER TABLE clients ADD COLUMN webhook_url TEXT;
ALTER TABLE clients ADD COLUMN webhook_secret BLOB;
ALTER TABLE clients ADD COLUMN webhook_secret_encrypted INTEGER;

CREATE TABLE webhook_outbox (
    -- The webhook-id, the same on every attempt.
    id              TEXT    NOT NULL PRIMARY KEY,
    import_id       TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    next_attempt_at TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id);
