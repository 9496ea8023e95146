-- No foreign key from `import_requests` to `imports` (issue 10): one check fewer per import.
--
-- The key made every inserted body run a referential-integrity query against `imports` (an SPI
-- statement per row, which also locks the import's row FOR KEY SHARE, a WAL record of its own)
-- and queued a trigger event on every update of an import. It guarded two things, both held
-- without it:
--
--   a body without its import  bodies are inserted only in the statement that inserts their
--                               import (the writer's batch joins them to the rows inserted) or
--                               for an import read back first (`keep`/legacy moves);
--   a body outliving its import `ON DELETE CASCADE` on purge: the purge of this build deletes the
--                               bodies of the imports it deletes in the same statement.
--
-- Rolling-upgrade safe: the previous build inserts bodies the same way, and its purge deletes only
-- finished imports, whose bodies are deleted when they finish (a body kept past the finish, which
-- the port allows, stays until this build's next purge, once an hour). SQLite keeps its key:
-- dropping it there means rebuilding the table, and its check is an in-process index lookup
-- inside the writer's transaction, not a statement of its own.

ALTER TABLE import_requests DROP CONSTRAINT IF EXISTS import_requests_import_id_fkey;
