-- The read-only role the comparison engine (`overlord-ts sweep`/`watch`: database parity) reads a
-- tracker database with. One script for both databases:
--
--   dereth_ts (the shadow's): run by the shadow-db container at its first start
--     (docker/shadow-db-init.sh, mounted by docker-compose.shadow.yml);
--   dereth (the live one): run once by the operator, as the live database's superuser:
--     psql -h <live db host> -U postgres -d dereth -v reader=overlord_ro \
--       -v reader_password="$LIVE_DB_READONLY_PASSWORD" -v owner=<role owning the live tables> \
--       -f docker/readonly-role.sql
--     or, with the live stack in compose (its database service `db`):
--     docker compose exec -T db psql -U postgres -d dereth -v reader=overlord_ro \
--       -v reader_password="$LIVE_DB_READONLY_PASSWORD" -v owner=postgres -f - < docker/readonly-role.sql
--
-- What it does on dereth, in plain SQL (run these by hand if you prefer):
--   CREATE ROLE overlord_ro LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
--   ALTER ROLE overlord_ro SET default_transaction_read_only = on;
--   GRANT CONNECT ON DATABASE dereth TO overlord_ro;
--   GRANT USAGE ON SCHEMA public TO overlord_ro;
--   GRANT SELECT ON ALL TABLES IN SCHEMA public TO overlord_ro;
--   ALTER DEFAULT PRIVILEGES FOR ROLE <owner> IN SCHEMA public GRANT SELECT ON TABLES TO overlord_ro;
-- TimescaleDB checks a hypertable's privileges, not its chunks', and copies them to new chunks.
-- It ends by checking that the role can write nothing here, and fails if it can (e.g. a table
-- granted to PUBLIC, or PostgreSQL 14 and older, where PUBLIC may create in schema public).
-- Idempotent: run it again to change the password or after another role added tables.

\set ON_ERROR_STOP on
\if :{?reader}
\else
  DO $$ BEGIN RAISE EXCEPTION 'readonly-role.sql: pass -v reader=<role>'; END $$;
\endif
\if :{?reader_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'readonly-role.sql: pass -v reader_password=<password>'; END $$;
\endif
\if :{?owner}
\else
  DO $$ BEGIN RAISE EXCEPTION 'readonly-role.sql: pass -v owner=<the role that creates the tracker tables>'; END $$;
\endif

SELECT format('CREATE ROLE %I LOGIN', :'reader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') \gexec
ALTER ROLE :"reader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'reader_password';
-- A session default only (a session may turn it off): the privileges below are the boundary.
ALTER ROLE :"reader" SET default_transaction_read_only = on;

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'reader') \gexec
GRANT USAGE ON SCHEMA public TO :"reader";
REVOKE CREATE ON SCHEMA public FROM :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM :"reader";
-- Tables the tracker creates later (the shadow's schema is made at its first start).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";

-- The check: any write privilege left (held directly, through a role or through PUBLIC) fails the run.
SET overlord.reader = :'reader';
DO $check$
DECLARE
  reader text := current_setting('overlord.reader');
  writable text;
BEGIN
  IF has_schema_privilege(reader, 'public', 'CREATE') THEN
    RAISE EXCEPTION 'role % can create in schema public (PUBLIC has CREATE on it: PostgreSQL 14 and older)', reader;
  END IF;
  IF has_database_privilege(reader, current_database(), 'CREATE') THEN
    RAISE EXCEPTION 'role % can create schemas in database %', reader, current_database();
  END IF;
  SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY c.relname) INTO writable
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
     AND has_table_privilege(reader, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE');
  IF writable IS NOT NULL THEN
    RAISE EXCEPTION 'role % can still write % (granted to PUBLIC or to a role it belongs to)', reader, writable;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = reader AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'role % is a superuser or bypasses row security', reader;
  END IF;
END
$check$;
\echo readonly-role.sql: :reader reads :DBNAME and can write nothing in it
