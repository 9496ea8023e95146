-- One index less to update on every state change of an import (issue 10).
--
-- Every change of an import's state rewrites the entries of each index that contains `status`
-- or `updated_at`. `imports_status_updated_at` served two background queries only, which
-- `imports_status_created_at_id` (migration 0003) serves as well:
--
--   list_stale  status IN (unfinished states) AND updated_at <= cutoff: one range per state of
--               (status, created_at, id), i.e. the unfinished imports (few: in flight or
--               abandoned), filtered by updated_at and sorted in memory; never a finished one.
--   purge       status IN (COMPLETED, FAILED) AND created_at < cutoff AND updated_at < cutoff:
--               one range per state bounded by created_at (an import finishes after it was
--               accepted, so updated_at < cutoff implies created_at < cutoff).
--
-- Rolling-upgrade safe: the previous build's queries still run. Its list_stale reads the same
-- rows as this build's; its purge (no bound on created_at) reads every finished import of the
-- two states through (status, created_at, id): slower, once an hour, until its replicas are gone.

DROP INDEX imports_status_updated_at;
