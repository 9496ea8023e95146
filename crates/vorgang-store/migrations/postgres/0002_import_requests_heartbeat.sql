-- Request bodies in a table of their own; a heartbeat row for the readiness check (issue 8).
--
-- Why a table of its own: a body holds the personal data of an import and is dropped when the
-- import finishes. In `imports` every state change (UPDATE) left a dead row version holding the
-- body (inline, or its TOAST pointer) until VACUUM, in a table that grows with the retention
-- period. Here the body is written once and deleted once, in a small table whose space VACUUM
-- hands to the next bodies quickly. See docs/privacy.md.
--
-- Rolling-upgrade safe, only additions: the previous build keeps reading and writing
-- `imports.request`. This build reads COALESCE(imports.request, import_requests.body), writes
-- bodies only to `import_requests` and sets `imports.request` to NULL in every update, so a body
-- the previous build wrote there moves over at the next update. Existing bodies are copied (not
-- moved), so replicas of the previous build can still resume the imports they know.

CREATE TABLE import_requests (
    import_id UUID NOT NULL PRIMARY KEY REFERENCES imports (id) ON DELETE CASCADE,
    -- The stored request, personal data: deleted when the import finishes.
    body      JSON NOT NULL
);

-- Vacuum after every 100 dropped bodies instead of after 20 % of the table: the space of a
-- dropped body becomes reusable (and is overwritten by the next bodies) soon.
ALTER TABLE import_requests SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 100,
    toast.autovacuum_vacuum_scale_factor = 0,
    toast.autovacuum_vacuum_threshold = 100
);

INSERT INTO import_requests (import_id, body)
    SELECT id, request FROM imports WHERE request IS NOT NULL;

-- A build that clears `imports.request` (the previous one, when an import finishes, or this one,
-- moving a body over) also drops the copy here: no body outlives its import's end, whichever
-- build finished it. This build lists `request` in every UPDATE and writes the body again
-- afterwards when the import keeps one.
CREATE FUNCTION imports_request_dropped() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM import_requests WHERE import_id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER imports_request_dropped
    AFTER UPDATE OF request ON imports
    FOR EACH ROW
    WHEN (NEW.request IS NULL
        AND (OLD.request IS NOT NULL OR NEW.status IN ('COMPLETED', 'FAILED')))
    EXECUTE FUNCTION imports_request_dropped();

-- One row, upserted by the readiness check (`ImportStore::ping`) to prove that a write commits.
CREATE TABLE heartbeat (
    id      SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    beat_at TEXT COLLATE "C" NOT NULL
);
