-- Request bodies in a table of their own; a heartbeat row for the readiness check (issue 8).
--
-- Why a table of its own: a body holds the personal data of an import and is dropped when the
-- import finishes. In `imports` it was copied into every new version of the row (one per state
-- change); here it is written once and deleted once, and an import's state changes never touch it.
--
-- Rolling-upgrade safe, only additions: the previous build keeps reading and writing
-- `imports.request`. This build reads COALESCE(imports.request, import_requests.body), writes
-- bodies only to `import_requests` and sets `imports.request` to NULL in every update, so a body
-- the previous build wrote there moves over at the next update. Existing bodies are copied (not
-- moved), so the previous build can still resume the imports it knows.

CREATE TABLE import_requests (
    import_id TEXT NOT NULL PRIMARY KEY REFERENCES imports (id) ON DELETE CASCADE,
    -- The stored request (JSON), personal data: deleted when the import finishes.
    body      TEXT NOT NULL
) STRICT;

INSERT INTO import_requests (import_id, body)
    SELECT id, request FROM imports WHERE request IS NOT NULL;

-- A build that clears `imports.request` (the previous one, when an import finishes, or this one,
-- moving a body over) also drops the copy here: no body outlives its import's end, whichever
-- build finished it. This build lists `request` in every UPDATE and writes the body again
-- afterwards when the import keeps one.
CREATE TRIGGER imports_request_dropped
    AFTER UPDATE OF request ON imports
    FOR EACH ROW
    WHEN NEW.request IS NULL
        AND (OLD.request IS NOT NULL OR NEW.status IN ('COMPLETED', 'FAILED'))
BEGIN
    DELETE FROM import_requests WHERE import_id = NEW.id;
END;

-- One row, upserted by the readiness check (`ImportStore::ping`) to prove that a write commits.
CREATE TABLE heartbeat (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    beat_at TEXT    NOT NULL
) STRICT;
