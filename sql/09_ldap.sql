-- LDAP group mappings and vms.ldap_sync() without a directory server: bad
-- input changes nothing, only holders of the right rights map groups and
-- sync, and the sync only ever changes the roles it created.  The real
-- directory (slapd) and the tool are in test/t/010_ldap_auth.pl and
-- test/t/011_ldap_sync.pl.
\set VERBOSITY terse
SELECT vms.add_camera_group('regress_ldap_lobby');
SELECT vms.add_camera('regress_ldap_cam', camera_group => 'regress_ldap_lobby') AS cam \gset
SELECT vms.create_role('regress_ldap_ops');
SELECT vms.grant_permission('regress_ldap_ops', 'view_live', camera_group => 'regress_ldap_lobby') > 0 AS granted;
SELECT vms.create_role('regress_ldap_wide');
SELECT vms.grant_permission('regress_ldap_wide', 'view_live') > 0 AS granted;
-- A scoped administrator: manage_roles and view_live over the lobby only.
SELECT vms.create_role('regress_ldap_admins');
SELECT vms.grant_permission('regress_ldap_admins', 'manage_roles', camera_group => 'regress_ldap_lobby') > 0 AS granted;
SELECT vms.grant_permission('regress_ldap_admins', 'view_live', camera_group => 'regress_ldap_lobby') > 0 AS granted;
SELECT vms.create_user('regress_ldap_mgr');
SELECT vms.add_member('regress_ldap_admins', 'regress_ldap_mgr');
SELECT vms.create_user('regress_ldap_nobody');
SELECT vms.create_user('regress_ldap_syncer');
SELECT vms.add_member('vms_directory_sync', 'regress_ldap_syncer');

-- The built-in role: NOLOGIN, a member of vms_user, a built-in principal.
SELECT rolname, rolcanlogin, rolsuper, pg_has_role('vms_directory_sync', 'vms_user', 'USAGE') AS is_vms_user
  FROM pg_roles WHERE rolname = 'vms_directory_sync';
SELECT kind FROM vms.principals WHERE name = 'vms_directory_sync';

-- Mapping: bad input.
SELECT stmt, expect_error(stmt) AS result FROM (VALUES
    ($$SELECT vms.map_ldap_group(NULL, 'regress_ldap_ops')$$),
    ($$SELECT vms.map_ldap_group('', 'regress_ldap_ops')$$),
    ($$SELECT vms.map_ldap_group('operators', 'regress_ldap_ops')$$),
    ($$SELECT vms.map_ldap_group('=x,dc=org', 'regress_ldap_ops')$$),
    ($$SELECT vms.map_ldap_group(E'cn=a\nb,dc=org', 'regress_ldap_ops')$$),
    ($$SELECT vms.map_ldap_group('cn=' || repeat('x', 1100), 'regress_ldap_ops')$$),
    ($$SELECT vms.map_ldap_group('cn=ops,dc=org', NULL)$$),
    ($$SELECT vms.map_ldap_group('cn=ops,dc=org', 'no_such_role')$$),
    ($$SELECT vms.map_ldap_group('cn=ops,dc=org', 'regress_ldap_mgr')$$),
    ($$SELECT vms.map_ldap_group('cn=ops,dc=org', 'vms_user')$$),
    ($$SELECT vms.map_ldap_group('cn=ops,dc=org', 'vms_directory_sync')$$),
    ($$SELECT vms.unmap_ldap_group('cn=never,dc=org')$$),
    ($$SELECT vms.unmap_ldap_group(NULL)$$)
) AS t(stmt);
SELECT count(*) AS mappings FROM vms.ldap_group_map;

-- DNs are stored lower-case without blanks around separators (escaped ones kept).
SELECT vms.map_ldap_group(' CN=Ops , OU=Groups,DC=Example,DC=Org', 'regress_ldap_ops');
SELECT vms.map_ldap_group('cn=Smith\, J. ,ou=groups,dc=example,dc=org', 'regress_ldap_ops');
SELECT group_dn, vms_role, created_by FROM vms.ldap_group_map ORDER BY group_dn;
SELECT expect_error($$SELECT vms.map_ldap_group('cn=ops,ou=groups,dc=example,dc=org', 'regress_ldap_wide')$$) AS remap;
SELECT vms.unmap_ldap_group('cn=smith\, j.,ou=groups,dc=example,dc=org');

-- Who may map: manage_roles and the right to hand out the role.
SET ROLE regress_ldap_nobody;
SELECT expect_error($$SELECT vms.map_ldap_group('cn=x,dc=org', 'regress_ldap_ops')$$) AS nobody_maps;
SELECT count(*) AS nobody_sees_mappings FROM vms.ldap_group_map;
RESET ROLE;
SET ROLE regress_ldap_mgr;
SELECT expect_error($$SELECT vms.map_ldap_group('cn=wide,dc=org', 'regress_ldap_wide')$$) AS scoped_admin_maps_wide;
SELECT expect_error($$SELECT vms.map_ldap_group('cn=sm,dc=org', 'vms_system_manager')$$) AS scoped_admin_maps_builtin;
SELECT vms.map_ldap_group('cn=lobby,dc=org', 'regress_ldap_ops');
SELECT count(*) AS mgr_sees_mappings FROM vms.ldap_group_map;
RESET ROLE;

-- Sync: who may call it, and bad input.
SET ROLE regress_ldap_nobody;
SELECT expect_error($$SELECT * FROM vms.ldap_sync('{"groups": []}')$$) AS nobody_syncs;
RESET ROLE;
SET ROLE regress_ldap_mgr;
SELECT expect_error($$SELECT * FROM vms.ldap_sync('{"groups": []}')$$) AS role_admin_syncs;
RESET ROLE;
SET ROLE regress_ldap_syncer;
SELECT stmt, expect_error(stmt) AS result FROM (VALUES
    ($$SELECT * FROM vms.ldap_sync(NULL)$$),
    ($$SELECT * FROM vms.ldap_sync('[]')$$),
    ($$SELECT * FROM vms.ldap_sync('{"groups": {}}')$$),
    ($$SELECT * FROM vms.ldap_sync('{"groups": []}', NULL)$$),
    ($$SELECT * FROM vms.ldap_sync('{"groups": [{"dn": 7, "members": []}]}')$$),
    ($$SELECT * FROM vms.ldap_sync('{"groups": [{"dn": "cn=lobby,dc=org"}]}')$$),
    ($$SELECT * FROM vms.ldap_sync('{"groups": [{"dn": "cn=unmapped,dc=org", "members": []}]}', false)$$),
    ($$SELECT * FROM vms.ldap_sync('{"groups": [{"dn": "cn=lobby,dc=org", "members": []}, {"dn": "CN=Lobby,DC=org", "members": []}]}', false)$$),
    ($$SELECT * FROM vms.ldap_sync('{"groups": [{"dn": "cn=lobby,dc=org", "members": [{"login": "regress_ldap_a"}]}]}', false)$$),
    ($$SELECT * FROM vms.ldap_sync('{"groups": [{"dn": "cn=lobby,dc=org", "members": [{"login": "regress_ldap_a", "dn": ""}]}]}', false)$$)
) AS t(stmt);
SELECT count(*) AS ldap_users, (SELECT count(*) FROM pg_roles WHERE rolname = 'regress_ldap_a') AS roles
  FROM vms.ldap_users;

-- A dry run reports and changes nothing.  One member's login is taken by a
-- role the sync did not create, one is reserved, one has two entries.
SELECT * FROM vms.ldap_sync($${"groups": [
  {"dn": "cn=ops,ou=groups,dc=example,dc=org", "members": [
     {"login": "regress_ldap_a", "dn": "uid=a,ou=people,dc=example,dc=org"},
     {"login": "regress_ldap_nobody", "dn": "uid=nobody,ou=people,dc=example,dc=org"},
     {"login": "vms_sneaky", "dn": "uid=vms_sneaky,ou=people,dc=example,dc=org"},
     {"login": "regress_ldap_twice", "dn": "uid=t1,ou=people,dc=example,dc=org"},
     {"login": "regress_ldap_twice", "dn": "uid=t2,ou=people,dc=example,dc=org"}]},
  {"dn": "CN=Lobby, DC=org", "members": [
     {"login": "regress_ldap_a", "dn": "uid=a,ou=people,dc=example,dc=org"},
     {"login": "regress_ldap_b", "dn": "uid=b,ou=people,dc=example,dc=org"}]}]}$$);
SELECT count(*) AS ldap_users, (SELECT count(*) FROM pg_roles WHERE rolname IN ('regress_ldap_a', 'regress_ldap_b')) AS roles
  FROM vms.ldap_users;
SELECT pg_has_role('regress_ldap_nobody', 'regress_ldap_ops', 'USAGE') AS nobody_has_ops;

-- The real run: same actions.
SELECT * FROM vms.ldap_sync($${"groups": [
  {"dn": "cn=ops,ou=groups,dc=example,dc=org", "members": [
     {"login": "regress_ldap_a", "dn": "uid=a,ou=people,dc=example,dc=org"},
     {"login": "regress_ldap_nobody", "dn": "uid=nobody,ou=people,dc=example,dc=org"},
     {"login": "vms_sneaky", "dn": "uid=vms_sneaky,ou=people,dc=example,dc=org"},
     {"login": "regress_ldap_twice", "dn": "uid=t1,ou=people,dc=example,dc=org"},
     {"login": "regress_ldap_twice", "dn": "uid=t2,ou=people,dc=example,dc=org"}]},
  {"dn": "CN=Lobby, DC=org", "members": [
     {"login": "regress_ldap_a", "dn": "uid=a,ou=people,dc=example,dc=org"},
     {"login": "regress_ldap_b", "dn": "uid=b,ou=people,dc=example,dc=org"}]}]}$$, false);
RESET ROLE;
SELECT r.rolname, r.rolcanlogin, r.rolinherit, r.rolsuper, r.rolcreaterole, r.rolpassword IS NULL AS no_password,
       pg_has_role(r.oid, 'vms_user', 'USAGE') AS vms_user, pg_has_role(r.oid, 'regress_ldap_ops', 'USAGE') AS ops,
       p.kind, p.created_by, u.dn
  FROM pg_authid r JOIN vms.principals p ON p.name = r.rolname JOIN vms.ldap_users u ON u.login = r.rolname
 ORDER BY r.rolname;
SELECT pg_has_role('regress_ldap_nobody', 'regress_ldap_ops', 'USAGE') AS nobody_has_ops,
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('vms_sneaky', 'regress_ldap_twice')) AS skipped_created;
-- A created user holds what its VMS role gives, and nothing more.
SET ROLE regress_ldap_b;
SELECT vms.authorize('view_live', :cam) AS b_view_live, vms.has_permission('manage_roles') AS b_manage_roles;
RESET ROLE;

-- A second run with nothing changed does nothing.
SET ROLE regress_ldap_syncer;
SELECT * FROM vms.ldap_sync($${"groups": [
  {"dn": "cn=ops,ou=groups,dc=example,dc=org", "members": [{"login": "regress_ldap_a", "dn": "uid=a,ou=people,dc=example,dc=org"}]},
  {"dn": "cn=lobby,dc=org", "members": [{"login": "regress_ldap_a", "dn": "uid=a,ou=people,dc=example,dc=org"},
                                         {"login": "regress_ldap_b", "dn": "uid=b,ou=people,dc=example,dc=org"}]}]}$$, false);
-- b leaves the lobby group but the ops group was not read: both groups give
-- regress_ldap_ops, so b keeps it (a failed search never revokes).
SELECT * FROM vms.ldap_sync($${"groups": [
  {"dn": "cn=lobby,dc=org", "members": [{"login": "regress_ldap_a", "dn": "uid=a,ou=people,dc=example,dc=org"}]}]}$$, false);
SELECT pg_has_role('regress_ldap_b', 'regress_ldap_ops', 'USAGE') AS b_keeps_ops;
-- With both groups read, b loses it; a is still in one of them and keeps it.
SELECT * FROM vms.ldap_sync($${"groups": [
  {"dn": "cn=ops,ou=groups,dc=example,dc=org", "members": []},
  {"dn": "cn=lobby,dc=org", "members": [{"login": "regress_ldap_a", "dn": "uid=a,ou=people,dc=example,dc=org"}]}]}$$, false);
SELECT pg_has_role('regress_ldap_a', 'regress_ldap_ops', 'USAGE') AS a_has_ops,
       pg_has_role('regress_ldap_b', 'regress_ldap_ops', 'USAGE') AS b_has_ops;
RESET ROLE;

-- Removing the last mapping of a role takes it from the sync's users (not from others).
SELECT vms.add_member('regress_ldap_ops', 'regress_ldap_nobody');
SELECT vms.unmap_ldap_group('cn=ops,ou=groups,dc=example,dc=org');
SELECT pg_has_role('regress_ldap_a', 'regress_ldap_ops', 'USAGE') AS a_has_ops_one_mapping_left;
SET ROLE regress_ldap_mgr;
SELECT vms.unmap_ldap_group('cn=lobby,dc=org');
RESET ROLE;
SELECT pg_has_role('regress_ldap_a', 'regress_ldap_ops', 'USAGE') AS a_has_ops_unmapped,
       pg_has_role('regress_ldap_nobody', 'regress_ldap_ops', 'USAGE') AS nobody_keeps_ops;

-- Audited: every change, and one summary per run (dry runs too).
SELECT audit_settle();
SELECT action, target, details->>'vms_role' AS vms_role, outcome
  FROM vms.audit_log
 WHERE action IN ('ldap_create_user', 'ldap_grant', 'ldap_revoke', 'map_ldap_group', 'unmap_ldap_group')
   AND outcome = 'ok'
 ORDER BY seq;
SELECT details->>'dry_run' AS dry_run, details->>'created' AS created, details->>'granted' AS granted,
       details->>'revoked' AS revoked, details->>'skipped' AS skipped, actor
  FROM vms.audit_log WHERE action = 'ldap_sync' AND outcome = 'ok' ORDER BY seq;
SELECT outcome, count(*) FROM vms.audit_log
 WHERE action IN ('ldap_sync', 'map_ldap_group', 'unmap_ldap_group') AND outcome <> 'ok'
 GROUP BY outcome ORDER BY outcome;

-- Dropping a synced user forgets it: a later role of that name is not the sync's.
SELECT vms.drop_user('regress_ldap_a');
SELECT count(*) AS a_forgotten FROM vms.ldap_users WHERE login = 'regress_ldap_a';

-- Clean up.
SELECT vms.drop_user('regress_ldap_b');
SELECT vms.drop_user('regress_ldap_mgr');
SELECT vms.drop_user('regress_ldap_nobody');
SELECT vms.drop_user('regress_ldap_syncer');
SELECT vms.drop_role('regress_ldap_ops');
SELECT vms.drop_role('regress_ldap_wide');
SELECT vms.drop_role('regress_ldap_admins');
SELECT vms.remove_camera(:cam);
SELECT vms.remove_camera_group('regress_ldap_lobby');
SELECT count(*) AS left_over FROM pg_roles WHERE rolname LIKE 'regress_ldap%';
