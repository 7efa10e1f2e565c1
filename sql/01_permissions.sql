-- The permission engine: a non-superuser system manager sets up cameras,
-- groups, roles and users; each user sees only what they may; scoped
-- administrators stay inside their scope.
\set VERBOSITY terse
SELECT vms.create_partitions() >= 0 AS partitions_ready;

-- A system manager that is not a superuser.
SELECT vms.create_user('regress_manager', 'Manager-pw-1-Zephyr', 'site manager');
SELECT vms.add_member('vms_system_manager', 'regress_manager');
SELECT rolsuper, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = 'regress_manager';

SET ROLE regress_manager;
SELECT vms.add_camera_group('lobby', 'Lobby cameras') > 0 AS lobby_added;
SELECT vms.add_camera_group('yard') > 0 AS yard_added;
SELECT vms.add_camera('entrance', 'rtsp://192.0.2.10/stream1', 'front door', 'lobby', 'lobby') AS cam1 \gset
SELECT vms.add_camera('reception', camera_group => 'lobby') AS cam2 \gset
SELECT vms.add_camera('gate', camera_group => 'yard') AS cam3 \gset
SELECT vms.add_camera('vault') AS cam4 \gset
SELECT vms.create_role('regress_guards', 'Lobby guards');
SELECT vms.grant_permission('regress_guards', 'view_live', camera_group => 'lobby') > 0 AS granted;
SELECT vms.grant_permission('regress_guards', 'view_recorded', camera_group => 'lobby',
                            recorded_window => '4 hours') > 0 AS granted;
SELECT vms.create_role('regress_vault_watch');
SELECT vms.grant_permission('regress_vault_watch', 'view_live', camera_id => :cam4) > 0 AS granted;
SELECT vms.create_user('regress_alice', 'Alice-pw-1-Zephyr');
SELECT vms.create_user('regress_bob', 'Bob-pw-1-Zephyr');
SELECT vms.add_member('regress_guards', 'regress_alice');
SELECT vms.add_member('regress_vault_watch', 'regress_bob');
SELECT vms.create_user('regress_rec', 'Recorder-pw-1-Zephyr');
SELECT vms.add_member('vms_recorder', 'regress_rec');
SELECT vms.assign_recorder(id, 'regress_rec') FROM vms.cameras ORDER BY id;
RESET ROLE;

-- The recorder registers segments: one an hour old, one six hours old.
SET ROLE regress_rec;
SELECT vms.register_segment(:cam1, now() - interval '1 hour', now() - interval '1 hour' + interval '6 s',
                            'entrance/recent.ts', 1000, sha256('recent'), 'h264', 1920, 1080) > 0 AS registered;
SELECT vms.register_segment(:cam1, now() - interval '6 hours', now() - interval '6 hours' + interval '6 s',
                            'entrance/old.ts', 1000, sha256('old'), 'h264', 1920, 1080) > 0 AS registered;
SELECT vms.register_segment(:cam4, now() - interval '1 hour', now() - interval '1 hour' + interval '6 s',
                            'vault/recent.ts', 1000, sha256('vault'), 'h264', 1920, 1080) > 0 AS registered;
SELECT vms.register_event(:cam1, now() - interval '1 hour', 'motion', '{"zone": 1}') > 0 AS registered;
-- Only the assigned recorder, only members of vms_recorder.
SELECT expect_error(format('SELECT vms.assign_recorder(%s, NULL)', :cam2)) AS recorder_cannot_reassign;
RESET ROLE;
SET ROLE regress_alice;
SELECT expect_error(format($$SELECT vms.register_segment(%s, now() - interval '1 minute', now(), 'x.ts', 1, sha256('x'))$$, :cam1));
RESET ROLE;

-- What each user sees when reading the tables directly.
SET ROLE regress_alice;
SELECT name FROM vms.cameras ORDER BY name;
SELECT path FROM vms.segments ORDER BY path;
SELECT kind FROM vms.events;
SELECT name FROM vms.camera_groups ORDER BY name;
SELECT role, permission, scope FROM vms.grants ORDER BY permission;
SELECT count(*) AS audit_rows_visible FROM vms.audit_log;
SELECT vms.authorize('view_live', :cam1) AS live_entrance,
       vms.authorize('view_live', :cam3) AS live_gate,
       vms.authorize('view_recorded', :cam1, now() - interval '3 hours') AS rec_3h_ago,
       vms.authorize('view_recorded', :cam1, now() - interval '5 hours') AS rec_5h_ago,
       vms.authorize('export', :cam1) AS export_entrance;
SELECT vms.permitted_cameras('view_live') = ARRAY[:cam1, :cam2] AS live_cameras_ok,
       vms.permitted_cameras('export') = '{}'::int[] AS no_export;
SELECT vms.has_permission('view_live') AS holds_live, vms.has_permission('view_live', true) AS holds_live_everywhere;
RESET ROLE;

SET ROLE regress_bob;
SELECT name FROM vms.cameras ORDER BY name;
SELECT count(*) AS segments_visible FROM vms.segments;
RESET ROLE;

-- The same answers from parallel workers (each fills its own cache).
SET ROLE regress_alice;
SET force_parallel_mode = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SELECT name FROM vms.cameras ORDER BY name;
SELECT path FROM vms.segments ORDER BY path;
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET ROLE;

-- Unknown permission names are an error, not a silent "no".
SELECT expect_error('SELECT vms.authorize(''fly_drone'', 1)');

-- New roles and users have nothing.
SELECT vms.create_role('regress_empty');
SELECT vms.create_user('regress_nobody', 'Nobody-pw-1-Zephyr');
SELECT vms.add_member('regress_empty', 'regress_nobody');
SET ROLE regress_nobody;
SELECT count(*) AS cameras_visible FROM vms.cameras;
SELECT vms.visible_cameras() = '{}'::int[] AS sees_nothing;
SELECT expect_error('SELECT vms.add_camera(''rogue'')');
RESET ROLE;

-- Validity: a grant that has expired gives nothing (time moved by editing the grant).
SELECT vms.grant_permission('regress_empty', 'view_live', camera_id => :cam3,
                            valid_until => now() + interval '1 day') AS temp_grant \gset
SET ROLE regress_nobody;
SELECT vms.authorize('view_live', :cam3) AS temp_grant_works;
RESET ROLE;
UPDATE vms.grants SET valid_from = now() - interval '2 days', valid_until = now() - interval '1 day'
 WHERE id = :temp_grant;
SET ROLE regress_nobody;
SELECT vms.authorize('view_live', :cam3) AS expired_grant_works;
RESET ROLE;

-- A scoped administrator: manages roles and users of the lobby group only.
SELECT vms.create_role('regress_lobby_admins');
SELECT vms.grant_permission('regress_lobby_admins', p, camera_group => 'lobby') > 0 AS granted
  FROM unnest(ARRAY['manage_roles', 'manage_users', 'view_live']) AS p;
SELECT vms.grant_permission('regress_lobby_admins', 'view_recorded', camera_group => 'lobby',
                            recorded_window => '1 day') > 0 AS granted;
SELECT vms.create_user('regress_carol', 'Carol-pw-1-Zephyr');
SELECT vms.add_member('regress_lobby_admins', 'regress_carol');
SELECT id AS vault_grant FROM vms.grants WHERE role = 'regress_vault_watch' AND permission = 'view_live' \gset
SET ROLE regress_carol;
-- Inside her scope, with what she holds: allowed.
SELECT vms.grant_permission('regress_guards', 'view_live', camera_id => :cam2) > 0 AS in_scope;
SELECT vms.grant_permission('regress_empty', 'view_recorded', camera_group => 'lobby',
                            recorded_window => '12 hours') > 0 AS narrower_window;
-- A camera outside the group.
SELECT expect_error(format('SELECT vms.grant_permission(%L, %L, camera_id => %s)', 'regress_guards', 'view_live', :cam3));
-- A permission she does not hold.
SELECT expect_error($$SELECT vms.grant_permission('regress_guards', 'export', camera_group => 'lobby')$$);
-- A wider recorded window than hers, or none at all.
SELECT expect_error($$SELECT vms.grant_permission('regress_guards', 'view_recorded', camera_group => 'lobby', recorded_window => '2 days')$$);
SELECT expect_error($$SELECT vms.grant_permission('regress_guards', 'view_recorded', camera_group => 'lobby')$$);
-- Scope all.
SELECT expect_error($$SELECT vms.grant_permission('regress_guards', 'view_live')$$);
-- Making herself a system manager, or widening her own role.
SELECT expect_error($$SELECT vms.add_member('vms_system_manager', 'regress_carol')$$);
SELECT expect_error($$SELECT vms.grant_permission('regress_lobby_admins', 'manage_roles')$$);
-- Handing out a role that holds more than she may grant.
SELECT expect_error($$SELECT vms.add_member('regress_vault_watch', 'regress_alice')$$);
-- Revoking a grant outside her scope.
SELECT expect_error(format('SELECT vms.revoke_permission(%s)', :vault_grant));
-- Adding a camera outside her scope; creating cameras needs manage_cameras.
SELECT expect_error($$SELECT vms.add_camera('rogue', camera_group => 'yard')$$);
-- Within scope, assigning a role whose grants she covers: allowed.
SELECT vms.add_member('regress_guards', 'regress_bob');
-- Dropping users who hold roles she could not hand out: the recorder, bob.
SELECT expect_error($$SELECT vms.drop_user('regress_rec')$$);
SELECT expect_error($$SELECT vms.drop_user('regress_bob')$$);
RESET ROLE;
-- A camera manager of the lobby may not point a camera at a local file.
SELECT vms.grant_permission('regress_lobby_admins', 'manage_cameras', camera_group => 'lobby') > 0 AS granted;
SET ROLE regress_carol;
SELECT expect_error(format('SELECT vms.update_camera(%s, stream_url => %L)', :cam1, 'file:///var/lib/vms/other-camera.ts'));
SELECT vms.update_camera(:cam1, stream_url => 'rtsp://192.0.2.10/stream2');
RESET ROLE;
SET ROLE regress_manager;
SELECT vms.update_camera(:cam1, stream_url => 'file:///usr/share/vms/test-pattern.ts');
RESET ROLE;
SELECT stream_url FROM vms.cameras WHERE id = :cam1;
SET ROLE regress_bob;
SELECT name FROM vms.cameras ORDER BY name;
RESET ROLE;

-- Who holds what.
SELECT username, via_role, permission, camera_name, scope, camera_group, recorded_window
  FROM vms.effective_permissions
 WHERE username IN ('regress_alice', 'regress_bob')
 ORDER BY username, permission, camera_name, via_role, scope;
SELECT count(*) > 0 AS manager_holds_everything
  FROM vms.effective_permissions WHERE username = 'regress_manager' AND permission = 'export';
SELECT name, kind, member_of, members, jsonb_array_length(COALESCE(grants, '[]')) AS grants, unused_grants
  FROM vms.access_review WHERE name LIKE 'regress\_%' ORDER BY name;

-- A user sees only their own principal row and the roles they hold.
SET ROLE regress_alice;
SELECT name, kind FROM vms.principals ORDER BY name;
RESET ROLE;

-- Revocation and membership changes apply to the next statement.
SET ROLE regress_alice;
SELECT vms.authorize('view_live', :cam1) AS before_revoke;
RESET ROLE;
SELECT vms.revoke_permission(id) FROM vms.grants
 WHERE role = 'regress_guards' AND permission = 'view_live' AND scope = 'group';
SET ROLE regress_alice;
SELECT vms.authorize('view_live', :cam1) AS after_revoke, vms.authorize('view_live', :cam2) AS cam2_grant_kept;
RESET ROLE;
SELECT vms.remove_member('regress_guards', 'regress_alice');
SET ROLE regress_alice;
SELECT vms.authorize('view_live', :cam2) AS after_removal, count(*) AS cameras_visible FROM vms.cameras;
RESET ROLE;

-- A camera with recordings cannot be removed; one without can, and its grants go with it.
SELECT expect_error(format('SELECT vms.remove_camera(%s)', :cam4));
SELECT vms.add_camera('spare', camera_group => 'lobby') AS cam5 \gset
SELECT vms.grant_permission('regress_vault_watch', 'view_live', camera_id => :cam5) > 0 AS granted;
SELECT vms.remove_camera(:cam5);
SELECT count(*) AS spare_grants_left FROM vms.grants WHERE camera_id = :cam5;
SELECT count(*) AS spare_group_rows_left FROM vms.camera_group_members WHERE camera_id = :cam5;
SELECT count(*) AS vault_segments_kept FROM vms.segments WHERE camera_id = :cam4;

-- Mixed-case and quoted names work end to end (no case folding, no quoting).
SELECT vms.create_user('Regress Dora', 'Dora-pw-1-Zephyr');
SELECT vms.add_member('regress_guards', 'Regress Dora');
SET ROLE "Regress Dora";
SELECT name FROM vms.cameras ORDER BY name;
SELECT name, kind FROM vms.principals WHERE kind = 'user';
RESET ROLE;
SELECT vms.create_user('Regress Rec2', 'Recorder-pw-2');
SELECT vms.add_member('vms_recorder', 'Regress Rec2');
SELECT vms.assign_recorder(:cam2, 'Regress Rec2');
SET ROLE "Regress Rec2";
SELECT vms.register_event(:cam2, now() - interval '1 minute', 'tamper_alarm') > 0 AS registered;
RESET ROLE;
SELECT recorder FROM vms.events WHERE kind = 'tamper_alarm';
