-- Delivery when Europace is down and webhooks (issue 13).
--
-- imports: the state QUEUED (Prefer: respond-async, Europace unavailable, nothing created);
-- `notify` (the partner's first answer was 202 or 504: changes into COMPLETED, FAILED, IN_DOUBT
-- are reported to its webhook); `next_attempt_at` (when a QUEUED import is next delivered). The
-- background task claims due imports through the partial index `imports_queued_due`, which holds
-- the queued imports only (`FOR UPDATE SKIP LOCKED`: one replica per import).
--
-- clients: the webhook URL and its signing secret (the key bytes, AES-256-GCM encrypted with
-- `key_encryption_key` when one is configured, as the signing keys are).
--
-- webhook_outbox: events waiting for delivery, written in the same transaction as the state
-- change that causes them, deleted once delivered (or given up after 24 h). `payload` is the
-- body exactly as signed; it holds ids and states, no personal data.
--
-- Rolling-upgrade safe: only additions, and a CHECK that allows one more state (a build before
-- never writes it; it reads a QUEUED import as corrupt, so roll out before partners use
-- `Prefer: respond-async`).

ALTER TABLE imports DROP CONSTRAINT imports_status_check;
ALTER TABLE imports ADD CONSTRAINT imports_status_check CHECK (status IN ('ACCEPTED',
    'PARTNER_READY', 'SENDING', 'IMPORTED', 'COMPLETED', 'FAILED', 'IN_DOUBT', 'QUEUED'));
ALTER TABLE imports ADD COLUMN notify BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE imports ADD COLUMN next_attempt_at TEXT COLLATE "C";
CREATE INDEX imports_queued_due ON imports (next_attempt_at, id) WHERE status = 'QUEUED';

ALTER TABLE clients ADD COLUMN webhook_url TEXT;
ALTER TABLE clients ADD COLUMN webhook_secret BYTEA;
ALTER TABLE clients ADD COLUMN webhook_secret_encrypted BOOLEAN;

CREATE TABLE webhook_outbox (
    -- The webhook-id, the same on every attempt.
    id              TEXT   NOT NULL PRIMARY KEY,
    import_id       UUID   NOT NULL,
    client_id       TEXT   NOT NULL,
    event_type      TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    created_at      TEXT COLLATE "C" NOT NULL,
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id);
