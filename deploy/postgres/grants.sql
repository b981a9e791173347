-- What the application role may do, run by the owner role after each `facewarden db upgrade`
-- (a migration's new tables get no grant until this runs again). docs/deploy.md explains it.
--
--   psql "$OWNER_URL" -v app=facewarden_app -f deploy/postgres/grants.sql
--
-- The owner owns every table, so only it can ALTER, DROP or TRUNCATE one or disable the
-- ledger's append-only triggers; the application role reads and writes rows, and appends to
-- the ledger without being able to change or delete what is there.
\set ON_ERROR_STOP on

BEGIN;
GRANT USAGE ON SCHEMA public TO :"app";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- The ordinary tables: rows are read, added, changed and removed.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
-- The ledger (ledger/storage.py LEDGER_TABLES) is append-only: read and add, nothing else. The
-- triggers refuse UPDATE, DELETE and TRUNCATE for the owner too; here the privileges do first.
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entries, ledger_nodes, ledger_checkpoints, ledger_keys
    FROM :"app";
-- `serve` never migrates; the revision is only read.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM :"app";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO :"app";
COMMIT;
