-- Installation: the extension's objects and the security rules every object follows.
\set VERBOSITY terse
CREATE EXTENSION pg_vms CASCADE;
-- System managers need a TOTP code for administration by default (see
-- 10_second_factor); the files before it test other things without it.
SELECT vms.set_second_factor_required('vms_system_manager', false);

-- Test helpers (public schema, superuser-owned, invoker rights).
-- expect_error: run a statement; report SQLSTATE and message, or 'no error'.
CREATE FUNCTION public.expect_error(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- audit_settle: wait until the worker has stored everything queued, then seal.
CREATE FUNCTION public.audit_settle() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN vms.audit_queue_length() = 0;
        PERFORM pg_sleep(0.1);
    END LOOP;
    IF vms.audit_queue_length() > 0 THEN
        RAISE EXCEPTION 'audit worker did not drain the queue';
    END IF;
    PERFORM vms.seal_audit();
END
$$;

-- The extension is never trusted and needs a superuser to install.
SELECT name, version, superuser, trusted FROM pg_available_extension_versions WHERE name = 'pg_vms' ORDER BY version;

-- Built-in roles: never superuser; NOLOGIN except vms_maintenance, which
-- pg_cron runs jobs as (LOGIN is its requirement) and which has no password.
SELECT rolname, rolsuper, rolcanlogin, rolcreaterole, rolbypassrls, rolpassword IS NULL AS no_password
  FROM pg_authid WHERE rolname IN ('vms_user', 'vms_system_manager', 'vms_recorder', 'vms_auditor', 'vms_maintenance')
 ORDER BY rolname;

-- Tables, partitioned tables and views of the extension.
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'vms'::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
 ORDER BY c.relname;

-- Row-level security is enabled and forced on every data table: expect none listed.
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'vms'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND NOT (c.relrowsecurity AND c.relforcerowsecurity);

-- Nothing in schema vms is granted to PUBLIC: expect none listed.
SELECT c.relname FROM pg_class c, aclexplode(COALESCE(c.relacl, acldefault('r', c.relowner))) a
 WHERE c.relnamespace = 'vms'::regnamespace AND a.grantee = 0;
SELECT p.oid::regprocedure FROM pg_proc p, aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.pronamespace = 'vms'::regnamespace AND a.grantee = 0;
SELECT has_schema_privilege('public', 'vms', 'USAGE') AS public_usage;

-- Every SECURITY DEFINER function pins search_path with pg_temp last: expect none listed.
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'vms'::regnamespace AND p.prosecdef
   AND NOT COALESCE(p.proconfig[1] = 'search_path=pg_catalog, vms, pg_temp', false);

-- Internal functions (leading underscore) are not executable by VMS users,
-- except the two helpers the RLS policies call.
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'vms'::regnamespace AND p.proname LIKE '\_%'
   AND has_function_privilege('vms_user', p.oid, 'EXECUTE')
 ORDER BY 1;

-- Every table, view and function has a comment: expect none listed.
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'vms'::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
   AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'vms'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;

-- Data tables are registered for pg_dump.
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS x(oid) JOIN pg_class c ON c.oid = x.oid
 WHERE e.extname = 'pg_vms' ORDER BY 1;

-- The settings.
SELECT name, CASE WHEN name LIKE 'vms.key%' THEN CASE WHEN setting = '' THEN '(unset)' ELSE '(set)' END ELSE setting END AS setting, context
  FROM pg_settings WHERE name LIKE 'vms.%' ORDER BY name;

-- The permission catalog.
SELECT id, name FROM vms.permissions ORDER BY id;
