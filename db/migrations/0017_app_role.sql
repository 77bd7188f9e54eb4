-- whalestack_writer: what the fleet's services need and nothing more (least privilege).
--
-- `quant migrate` runs as the owner (TIMESCALE_DB_USER: owns the schema, creates tables and
-- roles); the services connect as the application login TIMESCALE_DB_APP_USER, a member of
-- this role that `quant migrate` creates (quantcore.migrations.ensure_app_login): it reads and
-- writes every table, but is no superuser, cannot create roles or databases, and cannot create,
-- alter or drop tables (PostgreSQL 15+ gives PUBLIC no CREATE on schema public).
--
-- Roles are cluster-wide (tests and benchmarks share a server); the grants are per database.
-- Tables later migrations create get the same grants by the default privileges below (they
-- apply to objects the migrating owner creates).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'whalestack_writer') THEN
        BEGIN
            CREATE ROLE whalestack_writer NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
            COMMENT ON ROLE whalestack_writer IS
                'The services: SELECT / INSERT / UPDATE / DELETE on the tables (grants per database)';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration created it at the same moment
        END;
    END IF;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;  -- already so on PostgreSQL 15+; explicit here
GRANT USAGE ON SCHEMA public TO whalestack_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO whalestack_writer;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO whalestack_writer;
-- the ledger is the owner's: services may read which migrations ran (quant status), no more
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM whalestack_writer;

ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO whalestack_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO whalestack_writer;
