-- Bad input: every API function refuses it with a clear error and an
-- SQLSTATE, and changes nothing.
\set VERBOSITY terse
CREATE TEMP TABLE state_before AS
SELECT (SELECT count(*) FROM vms.cameras) AS cameras,
       (SELECT count(*) FROM vms.camera_groups) AS groups,
       (SELECT count(*) FROM vms.camera_group_members) AS members,
       (SELECT count(*) FROM vms.principals) AS principals,
       (SELECT count(*) FROM vms.grants) AS grants,
       (SELECT count(*) FROM vms.segments) AS segments,
       (SELECT count(*) FROM vms.events) AS events,
       (SELECT count(*) FROM pg_roles) AS roles,
       (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM vms.cameras c) AS cameras_hash;
-- Hide what differs between runs (salted verifiers, timestamps).
CREATE FUNCTION pg_temp.mask(t text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(t, 'SCRAM-SHA-256[^'']*', '<verifier>', 'g'),
                          '[A-Z][a-z]{2} [A-Z][a-z]{2} [0-9]+ [0-9:.]+ [0-9]{4} [A-Z]+', '<time>', 'g');
$$;
SELECT id AS cam FROM vms.cameras WHERE name = 'entrance' \gset
SELECT start_time AS taken_start FROM vms.segments WHERE path = 'entrance/recent.ts' \gset
SELECT rolpassword AS scram_verifier FROM pg_authid WHERE rolname = 'regress_alice' \gset

SELECT left(pg_temp.mask(stmt), 110) AS stmt, pg_temp.mask(expect_error(stmt)) AS result FROM (VALUES
    -- cameras
    ($$SELECT vms.add_camera(NULL)$$),
    ($$SELECT vms.add_camera('')$$),
    ($$SELECT vms.add_camera('   ')$$),
    ($$SELECT vms.add_camera(repeat('x', 201))$$),
    ($$SELECT vms.add_camera(E'bad\nname')$$),
    ($$SELECT vms.add_camera('entrance')$$),
    ($$SELECT vms.add_camera('cam', 'ftp://192.0.2.1/x')$$),
    ($$SELECT vms.add_camera('cam', 'rtsp://admin:secret@192.0.2.1/x')$$),
    ($$SELECT vms.add_camera('cam', camera_group => 'no such group')$$),
    ($$SELECT vms.add_camera('cam', description => repeat('d', 2001))$$),
    ($$SELECT vms.update_camera(NULL, 'x')$$),
    ($$SELECT vms.update_camera(999999, 'x')$$),
    ($$SELECT vms.update_camera(1, '')$$),
    ($$SELECT vms.update_camera(1, 'reception')$$),
    ($$SELECT vms.remove_camera(NULL)$$),
    ($$SELECT vms.remove_camera(999999)$$),
    ($$SELECT vms.assign_recorder(1, 'regress_alice')$$),
    ($$SELECT vms.assign_recorder(1, 'no_such_role')$$),
    ($$SELECT vms.add_camera_group(NULL)$$),
    ($$SELECT vms.add_camera_group('lobby')$$),
    ($$SELECT vms.remove_camera_group('no such group')$$),
    ($$SELECT vms.add_camera_to_group('lobby', NULL)$$),
    ($$SELECT vms.add_camera_to_group('lobby', 999999)$$),
    ($$SELECT vms.add_camera_to_group(NULL, 1)$$),
    ($$SELECT vms.remove_camera_from_group('yard', 1)$$),
    -- roles and users
    ($$SELECT vms.create_role(NULL)$$),
    ($$SELECT vms.create_role('')$$),
    ($$SELECT vms.create_role(repeat('r', 64))$$),
    ($$SELECT vms.create_role('pg_evil')$$),
    ($$SELECT vms.create_role('vms_system_manager')$$),
    ($$SELECT vms.create_role('regress_guards')$$),
    ($$SELECT vms.create_role('postgres')$$),
    ($$SELECT vms.drop_role('postgres')$$),
    ($$SELECT vms.drop_role('regress_alice')$$),
    ($$SELECT vms.drop_role('vms_auditor')$$),
    ($$SELECT vms.create_user('regress_x', '')$$),
    (format('SELECT vms.create_user(%L, %L)', 'regress_x', :'scram_verifier')),
    ($$SELECT vms.create_user('regress_alice', 'Pw-123456')$$),
    ($$SELECT vms.drop_user('postgres')$$),
    ($$SELECT vms.drop_user('regress_guards')$$),
    ($$SELECT vms.add_member('regress_guards', 'postgres')$$),
    ($$SELECT vms.add_member('no_such_role', 'regress_alice')$$),
    ($$SELECT vms.add_member('regress_alice', 'regress_bob')$$),
    ($$SELECT vms.add_member('vms_user', 'regress_alice')$$),
    ($$SELECT vms.add_member(NULL, 'regress_alice')$$),
    ($$SELECT vms.remove_member('regress_guards', NULL)$$),
    -- grants
    ($$SELECT vms.grant_permission(NULL, 'view_live')$$),
    ($$SELECT vms.grant_permission('regress_guards', NULL)$$),
    ($$SELECT vms.grant_permission('regress_guards', 'fly_drone')$$),
    ($$SELECT vms.grant_permission('regress_alice', 'view_live')$$),
    ($$SELECT vms.grant_permission('no_such_role', 'view_live')$$),
    ($$SELECT vms.grant_permission('regress_guards', 'view_live', camera_id => 999999)$$),
    ($$SELECT vms.grant_permission('regress_guards', 'view_live', camera_group => 'no such group')$$),
    ($$SELECT vms.grant_permission('regress_guards', 'view_live', 1, 'lobby')$$),
    ($$SELECT vms.grant_permission('regress_guards', 'view_recorded', 1, recorded_window => '-1 hour')$$),
    ($$SELECT vms.grant_permission('regress_guards', 'view_recorded', 1, recorded_window => '0')$$),
    ($$SELECT vms.grant_permission('regress_guards', 'view_live', 1, valid_until => now() - interval '1 day')$$),
    ($$SELECT vms.revoke_permission(NULL)$$),
    ($$SELECT vms.revoke_permission(999999)$$),
    ($$SELECT vms.revoke_permission((SELECT id FROM vms.grants WHERE builtin))$$),
    -- recordings (as the superuser, who is not the assigned recorder)
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), 'a.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_event(1, now(), 'motion')$$)
) AS t(stmt);

-- The same checks for the recorder's own calls.
SET ROLE regress_rec;
SELECT left(pg_temp.mask(stmt), 110) AS stmt, pg_temp.mask(expect_error(stmt)) AS result FROM (VALUES
    ($$SELECT vms.register_segment(NULL, now() - interval '1 min', now(), 'a.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(999999, now() - interval '1 min', now(), 'a.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, NULL, now(), 'a.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now(), now() - interval '1 min', 'a.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now() - interval '1 min', 'a.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '2 days', now(), 'a.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now(), now() + interval '1 hour', 'a.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), '', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), NULL, 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), '/etc/passwd', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), 'a/../../b.ts', 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), repeat('p', 1025), 1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), 'a.ts', -1, sha256('a'))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), 'a.ts', 1, '\x0102')$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), 'a.ts', 1, sha256('a'), repeat('c', 33))$$),
    ($$SELECT vms.register_segment(1, now() - interval '1 min', now(), 'a.ts', 1, sha256('a'), 'h264', 0, 1080)$$),
    (format('SELECT vms.register_segment(1, %L, %L::timestamptz + interval ''6 s'', ''dup.ts'', 1, sha256(''a''))', :'taken_start', :'taken_start')),
    ($$SELECT vms.register_event(1, NULL, 'motion')$$),
    ($$SELECT vms.register_event(1, now(), '')$$),
    ($$SELECT vms.register_event(1, now() + interval '1 hour', 'motion')$$),
    ($$SELECT vms.register_event(1, now(), 'motion', jsonb_build_object('x', repeat('y', 70000)))$$)
) AS t(stmt);
RESET ROLE;

-- Nothing changed.
SELECT (SELECT count(*) FROM vms.cameras) = b.cameras AS cameras_same,
       (SELECT count(*) FROM vms.camera_groups) = b.groups AS groups_same,
       (SELECT count(*) FROM vms.camera_group_members) = b.members AS members_same,
       (SELECT count(*) FROM vms.principals) = b.principals AS principals_same,
       (SELECT count(*) FROM vms.grants) = b.grants AS grants_same,
       (SELECT count(*) FROM vms.segments) = b.segments AS segments_same,
       (SELECT count(*) FROM vms.events) = b.events AS events_same,
       (SELECT count(*) FROM pg_roles) = b.roles AS roles_same,
       (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM vms.cameras c) = b.cameras_hash AS cameras_unchanged
  FROM state_before b;

-- Every refusal was audited (outcome error or denied), even though each call rolled back.
SELECT audit_settle();
SELECT outcome, count(*) > 0 AS audited
  FROM vms.audit_log
 WHERE action IN ('add_camera', 'register_segment', 'grant_permission', 'create_role')
   AND outcome <> 'ok'
 GROUP BY outcome ORDER BY outcome;
