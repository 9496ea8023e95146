-- Indexes for listing imports a page at a time (issue 9; issues 10 to 12 rely on them).
--
-- Every listing returns imports oldest first by (created_at, id) after a keyset cursor, with
-- optional equality filters on client_id and status. Each combination gets an index that starts
-- with its equality filters and ends with (created_at, id), so a page reads only its own rows
-- and costs the same with a thousand or a million imports stored:
--
--   no filter         imports_created_at_id                 (the operator's imports list)
--   status            imports_status_created_at_id          (imports list --status)
--   client            imports_client_created_at_id          (GET /vorgang)
--   client + status   imports_client_status_created_at_id   (GET /vorgang?status=)
--
-- The resume (unfinished states, updated_at <= cutoff) and the purge (finished states,
-- updated_at < cutoff) keep using imports_status_updated_at.
--
-- Rolling-upgrade safe: only indexes. imports_status_created_at is dropped because
-- imports_status_created_at_id starts with the same columns and serves the previous build's
-- list(status) query as well.

CREATE INDEX imports_created_at_id ON imports (created_at, id);
CREATE INDEX imports_status_created_at_id ON imports (status, created_at, id);
CREATE INDEX imports_client_created_at_id ON imports (client_id, created_at, id);
CREATE INDEX imports_client_status_created_at_id ON imports (client_id, status, created_at, id);
DROP INDEX imports_status_created_at;
