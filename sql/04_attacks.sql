-- Attacks by an ordinary VMS user: search_path hijacking with objects planted
-- in public (CREATE re-opened on purpose; PG15 closes it by default) and in
-- pg_temp, direct writes, internal functions, partitions read directly.
\set VERBOSITY terse
GRANT CREATE ON SCHEMA public TO PUBLIC;
SELECT id AS cam_entrance FROM vms.cameras WHERE name = 'entrance' \gset
SELECT id AS cam_gate FROM vms.cameras WHERE name = 'gate' \gset

SET ROLE regress_bob;
-- Trojans: an "=" on text that is always true, and look-alikes of the
-- built-ins pg_vms calls, all first in bob's search_path.
CREATE FUNCTION public.always_true(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.always_true);
CREATE FUNCTION public.pg_has_role(oid, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.pg_has_role(oid, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$;
CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE sql AS 'SELECT ''x''';
CREATE FUNCTION public.btrim(text) RETURNS text LANGUAGE sql AS $$SELECT 'x'$$;
CREATE TABLE public.grants (role text, permission text);
CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$;
SET search_path = public, pg_catalog, pg_temp;
SELECT 'a' = 'b' AS trojan_operator_active;

-- Everything pg_vms decides stays the same.
SELECT expect_error($$SELECT vms.grant_permission('regress_vault_watch', 'view_live')$$);
SELECT expect_error($$SELECT vms.add_member('vms_system_manager', 'regress_bob')$$);
SELECT expect_error($$SELECT vms.add_camera('hijacked')$$);
SELECT expect_error(format('SELECT vms.update_camera(%s, %L)', :cam_gate, 'renamed'));
SELECT vms.authorize('view_live', :cam_gate) AS gate_live,
       vms.authorize('view_recorded', :cam_entrance, pg_catalog.now() - interval '5 hours') AS old_recording;
SELECT name FROM vms.cameras ORDER BY name;
SELECT path FROM vms.segments ORDER BY path;

-- Writing the tables directly.
SELECT expect_error($$INSERT INTO vms.grants (role, permission, scope, granted_by) VALUES ('regress_vault_watch', 'export', 'all', 'bob')$$);
SELECT expect_error($$UPDATE vms.cameras SET name = 'x'$$);
SELECT expect_error($$DELETE FROM vms.segments$$);
SELECT expect_error($$INSERT INTO vms.audit_log (seq, sealed_at, logged_at, action, outcome, hash) VALUES (1, now(), now(), 'x', 'ok', '\x00')$$);
SELECT expect_error($$TRUNCATE vms.audit_pending$$);
-- A partition read directly, bypassing the parent's policy.
SELECT expect_error(format('SELECT count(*) FROM vms.%I',
       (SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'vms.segments'::regclass ORDER BY 1 LIMIT 1)));
-- Internal functions.
SELECT expect_error($$SELECT vms._audit('forged', NULL, NULL, NULL)$$);
SELECT expect_error($$SELECT vms._audit_enqueue('forged', 'ok', NULL, NULL, NULL)$$);
SELECT expect_error($$SELECT vms._authorized('view_live', 1, now())$$);
SELECT expect_error($$SELECT vms.seal_audit()$$);
SELECT expect_error($$SELECT vms.create_partitions()$$);
SELECT expect_error($$SELECT vms._password_verifier('regress_bob', 'x')$$);
-- Creating objects in schema vms.
SELECT expect_error($$CREATE FUNCTION vms.authorize(text, integer) RETURNS boolean LANGUAGE sql AS 'SELECT true'$$);
SELECT expect_error($$CREATE TABLE vms.grants_shadow (x int)$$);
RESET search_path;
RESET ROLE;

-- Another user with the same hostile search_path gets the same decisions
-- from the API (no trojan runs with its privileges).
SET search_path = public, pg_catalog, pg_temp;
SET ROLE regress_carol;
SELECT expect_error($$SELECT vms.grant_permission('regress_guards', 'export', camera_group => 'lobby')$$);
RESET ROLE;
RESET search_path;

-- Preparing a call is not calling it: a cursor opened by bob over an API
-- call, fetched after a system manager's SECURITY DEFINER wrapper made the
-- same call in the same transaction, still acts for bob.
CREATE FUNCTION public.helpdesk_add_guard() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM vms.grant_permission('regress_empty', 'snapshot', camera_group => 'lobby');
END
$$;
ALTER FUNCTION public.helpdesk_add_guard() OWNER TO regress_manager;
SET ROLE regress_bob;
BEGIN;
DECLARE c CURSOR FOR SELECT vms.grant_permission('regress_guards', 'export');
SELECT public.helpdesk_add_guard();
SAVEPOINT s;
SELECT expect_error('FETCH c');
ROLLBACK TO s;
COMMIT;
RESET ROLE;
SELECT count(*) AS export_grants, count(*) FILTER (WHERE g.role = 'regress_guards') AS guards_export
  FROM vms.grants g WHERE permission = 'export';
SELECT granted_by FROM vms.grants WHERE permission = 'snapshot';
SELECT vms.revoke_permission(id) FROM vms.grants WHERE permission = 'snapshot';
DROP FUNCTION public.helpdesk_add_guard();

-- Clean up the trojans and close public again.
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.always_true(text, text), public.pg_has_role(oid, oid, text),
              public.pg_has_role(oid, text, text), public.now(), public.format(text, text),
              public.btrim(text);
DROP TABLE public.grants;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- A role outside pg_vms (not a vms_user member) cannot even see the schema.
CREATE ROLE regress_outsider LOGIN;
SET ROLE regress_outsider;
SELECT expect_error('SELECT count(*) FROM vms.cameras');
SELECT expect_error('SELECT vms.authorize(''view_live'', 1)');
RESET ROLE;
DROP ROLE regress_outsider;
