-- Privacy zones, lifts of privacy masks (personal, by time, with approval by
-- another person), export profiles and the export register (begin, finish,
-- fail), 1.5.  Uses regress_manager (a system manager) from 01_permissions.
\set VERBOSITY terse
-- Errors with the ids and times of this run masked.
CREATE FUNCTION public.px_err(stmt text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(expect_error(stmt),
           '(camera|zone|lift|export|privacy zone|privacy lift) [0-9]+', '\1 #', 'g'),
           '[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+(\+00|Z)?', '<time>', 'g');
$$;
SELECT $$-----BEGIN CERTIFICATE-----
MIIBnDCCAUGgAwIBAgIUVxdl1de9baQ4hywFa6tg0wsUOXowCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXUmVncmVzcyBFdmlkZW5jZSBTaWduZXIwIBcNMjYxMTI0MTYw
OTAyWhgPMjEyNjEwMzExNjA5MDJaMCIxIDAeBgNVBAMMF1JlZ3Jlc3MgRXZpZGVu
Y2UgU2lnbmVyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJ+yW4jmex5QpVL79
KDp9361AueoJyK7jQCCm0cTMhHMxV+uIx1yX0uvPRABwbAUYG5BKAw3Rw+9uE9xa
OkDkbqNTMFEwHQYDVR0OBBYEFBs4v3puftDKh8akDrLDAOuTlT2lMB8GA1UdIwQY
MBaAFBs4v3puftDKh8akDrLDAOuTlT2lMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI
zj0EAwIDSQAwRgIhAPRT2ylyZh9pcjiTgMp2MJjdMkEb2WwCQEJx5ds3tvI+AiEA
6+NOhiRDoJ5w0govNqo7lzxnKeeuvktCO0LIw06BNyc=
-----END CERTIFICATE-----
$$ AS pem1 \gset
SELECT $$-----BEGIN CERTIFICATE-----
MIIBljCCATugAwIBAgIUenukNi0kz4/ba8FZSLJkJMa02WUwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUUmVncmVzcyBPdGhlciBTaWduZXIwIBcNMjYxMTI0MTYwOTAy
WhgPMjEyNjEwMzExNjA5MDJaMB8xHTAbBgNVBAMMFFJlZ3Jlc3MgT3RoZXIgU2ln
bmVyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEzqUMNOVdiE6cnalo5IEQxyob
3E+ZUv15B2i5zHW61Qx2/4TjEJtHoHXjVV2OD3XPCifcDzOgTi0zz/4p5NDMd6NT
MFEwHQYDVR0OBBYEFA456rjK++PrVui9/sGjX1M1gIdhMB8GA1UdIwQYMBaAFA45
6rjK++PrVui9/sGjX1M1gIdhMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SQAwRgIhANFNatUsO1IFdPrwCtOjviFqQUAaQLKsPtOwvdjMQPtrAiEAz2pNGDru
GIqex3F+z5jnTqcFzcTWx03JHO1lWcWo5Gw=
-----END CERTIFICATE-----
$$ AS pem2 \gset

------------------------------------------------------------------------------
-- Setup: two cameras, a recorder, and people with different permissions
------------------------------------------------------------------------------
SELECT id, name, administrative FROM vms.permissions WHERE id = 17;
SET ROLE regress_manager;
SELECT vms.add_camera('privacy-1', 'rtsp://127.0.0.1:8554/p1') AS p1 \gset
SELECT vms.add_camera('privacy-2', 'rtsp://127.0.0.1:8554/p2') AS p2 \gset
SELECT vms.create_user('regress_px_rec', 'Recorder-pw-7-Zephyr');
SELECT vms.add_member('vms_recorder', 'regress_px_rec');
SELECT vms.assign_recorder(:p1, 'regress_px_rec');
-- Lifters: see, lift and export camera 1 (30 days back).
SELECT vms.create_role('regress_px_lifters');
SELECT count(vms.grant_permission('regress_px_lifters', p, camera_id => :p1, recorded_window => '30 days')) AS granted
  FROM unnest(ARRAY['view_live', 'view_recorded', 'lift_privacy_mask', 'export', 'snapshot']) p;
SELECT vms.create_user('regress_px_ann', 'Ann-pw-7-Zephyr-x');
SELECT vms.create_user('regress_px_ben', 'Ben-pw-7-Zephyr-x');
SELECT vms.add_member('regress_px_lifters', 'regress_px_ann');
SELECT vms.add_member('regress_px_lifters', 'regress_px_ben');
-- An approver of lifts on camera 1 (who may also lift, to show they cannot approve their own).
SELECT vms.create_role('regress_px_approvers');
SELECT count(vms.grant_permission('regress_px_approvers', p, camera_id => :p1)) AS granted
  FROM unnest(ARRAY['view_live', 'approve_privacy_lift', 'lift_privacy_mask']) p;
SELECT vms.create_user('regress_px_cat', 'Cat-pw-7-Zephyr-xx');
SELECT vms.add_member('regress_px_approvers', 'regress_px_cat');
-- An exporter whose grants reach back 2 days only.
SELECT vms.create_role('regress_px_short');
SELECT count(vms.grant_permission('regress_px_short', p, camera_id => :p1, recorded_window => '2 days')) AS granted
  FROM unnest(ARRAY['view_recorded', 'export']) p;
SELECT vms.create_user('regress_px_dan', 'Dan-pw-7-Zephyr-xx');
SELECT vms.add_member('regress_px_short', 'regress_px_dan');
-- Someone who sees camera 2 only.
SELECT vms.create_role('regress_px_other');
SELECT vms.grant_permission('regress_px_other', 'view_live', camera_id => :p2) > 0 AS granted;
SELECT vms.create_user('regress_px_eve', 'Eve-pw-7-Zephyr-xx');
SELECT vms.add_member('regress_px_other', 'regress_px_eve');
RESET ROLE;

------------------------------------------------------------------------------
-- Privacy zones: managers only, validated, audited
------------------------------------------------------------------------------
SET ROLE regress_manager;
SELECT vms.add_privacy_zone(:p1, 'neighbour window', '[[0.1,0.1],[0.4,0.1],[0.4,0.3]]') AS z_perm \gset
SELECT vms.add_privacy_zone(:p1, 'cash desk', '[[0.5,0.5],[0.9,0.5],[0.9,0.9],[0.5,0.9]]', 'blur', liftable => true) AS z_desk \gset
SELECT vms.add_privacy_zone(:p1, 'screen', '[[0,0],[0.2,0],[0.2,0.2]]', liftable => true) AS z_screen \gset
SELECT vms.add_privacy_zone(:p2, 'garden', '[[0,0],[1,0],[1,1]]', burn_in => true) AS z_garden \gset
SELECT px_err(format('SELECT vms.add_privacy_zone(%s, %L, %L, %L, %L, %L)', :p1, n, pts, f, l, b)) AS bad_zone
  FROM (VALUES ('', '[[0,0],[1,0],[1,1]]', 'black', false, false),
               ('z', '[[0,0],[1,0]]', 'black', false, false),
               ('z', '{"points": []}', 'black', false, false),
               ('z', '[[0,0],[1,0],[1,1.01]]', 'black', false, false),
               ('z', '[[0,0],[1,0],[-0.1,1]]', 'black', false, false),
               ('z', '[[0,0],[1,0],[1]]', 'black', false, false),
               ('z', '[[0,0],[1,0],["1",1]]', 'black', false, false),
               ('z', '[[0,0],[1,0],[1,1]]', 'pink', false, false),
               ('z', '[[0,0],[1,0],[1,1]]', 'black', true, true),
               ('cash desk', '[[0,0],[1,0],[1,1]]', 'black', false, false)) v(n, pts, f, l, b);
SELECT px_err(format('SELECT vms.add_privacy_zone(%s, ''z'', %L)', :p1,
              (SELECT jsonb_agg(jsonb_build_array(0.5, 0.5)) FROM generate_series(1, 65)))) AS too_many_points;
SELECT px_err('SELECT vms.add_privacy_zone(999999, ''z'', ''[[0,0],[1,0],[1,1]]'')') AS unknown_camera;
SELECT vms.update_privacy_zone(:z_screen, name => 'monitor', points => '[[0,0],[0.25,0],[0.25,0.25]]');
SELECT px_err(format('SELECT vms.update_privacy_zone(%s, burn_in => true)', :z_screen)) AS burn_in_liftable;
SELECT px_err(format('SELECT vms.update_privacy_zone(%s, fill => ''grey'')', :z_screen)) AS bad_fill;
SELECT px_err(format('SELECT vms.update_privacy_zone(%s, name => ''cash desk'')', :z_screen)) AS duplicate_name;
SELECT px_err('SELECT vms.update_privacy_zone(999999, name => ''x'')') AS unknown_zone;
SELECT px_err('SELECT vms.remove_privacy_zone(999999)') AS unknown_zone;
RESET ROLE;
-- A viewer may neither add, change nor remove zones; a refusal changes nothing.
SET ROLE regress_px_ann;
SELECT px_err(format('SELECT vms.add_privacy_zone(%s, ''mine'', ''[[0,0],[1,0],[1,1]]'')', :p1)) AS viewer_add;
SELECT px_err(format('SELECT vms.update_privacy_zone(%s, liftable => true)', :z_perm)) AS viewer_update;
SELECT px_err(format('SELECT vms.remove_privacy_zone(%s)', :z_perm)) AS viewer_remove;
-- Viewers of camera 1 see its zones, not those of camera 2.
SELECT id = :z_perm AS perm, id = :z_desk AS desk, name, fill, liftable, burn_in, points
  FROM vms.privacy_zones ORDER BY id;
RESET ROLE;
SET ROLE regress_px_eve;
SELECT name FROM vms.privacy_zones ORDER BY id;
RESET ROLE;
SELECT z.name, z.fill, z.liftable, z.burn_in, z.points, z.created_by FROM vms.privacy_zones z
 WHERE z.camera_id IN (:p1, :p2) ORDER BY z.id;
-- Burned in at ingest: camera 2's burn_in zone once burn_in_privacy is on.
SELECT vms._burn_in_zones(:p2) AS burn_in_off;
SET ROLE regress_manager;
SELECT vms.set_ingest_settings(:p2, burn_in_privacy => true);
RESET ROLE;
SELECT vms._burn_in_zones(:p2) AS burn_in_on, vms._burn_in_zones(:p1) AS none_on_camera_1;
-- Add, change and remove a zone: each audited with what it was.
SET ROLE regress_manager;
SELECT vms.add_privacy_zone(:p1, 'temporary', '[[0.3,0.3],[0.4,0.3],[0.4,0.4]]') AS z_tmp \gset
SELECT vms.remove_privacy_zone(:z_tmp);
RESET ROLE;
SELECT count(*) AS removed_zone_rows FROM vms.privacy_zones WHERE id = :z_tmp;
SELECT audit_settle();
SELECT action, outcome, target = :z_tmp::text AS tmp_zone, details->>'name' AS name,
       details->'old'->>'name' AS old_name, details->'new'->>'name' AS new_name
  FROM vms.audit_log WHERE action LIKE 'privacy\_zone\_%' AND outcome = 'ok' AND camera_id IN (:p1, :p2) ORDER BY seq;
SELECT action, outcome, details->>'sqlstate' AS sqlstate, count(*) FROM vms.audit_log
 WHERE action LIKE 'privacy\_zone\_%' AND outcome <> 'ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

------------------------------------------------------------------------------
-- masks_for: every zone until a lift; needs a viewing or export permission
------------------------------------------------------------------------------
SET ROLE regress_px_ann;
SELECT zone_id = :z_perm AS perm, name, liftable, fill, points, lifted_by_lift FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT count(*) AS active_lifts FROM vms.active_lifts(:p1);
SELECT px_err(format('SELECT * FROM vms.masks_for(%s)', :p2)) AS other_camera;
RESET ROLE;
SET ROLE regress_px_eve;
SELECT px_err(format('SELECT * FROM vms.masks_for(%s)', :p1)) AS no_permission;
SELECT name FROM vms.masks_for(:p2);
RESET ROLE;
SET ROLE regress_manager;
SELECT px_err('SELECT * FROM vms.masks_for(999999)') AS unknown_camera;
RESET ROLE;

------------------------------------------------------------------------------
-- Lifts without approval: in force at once, for the one who asked only
------------------------------------------------------------------------------
SET ROLE regress_px_ann;
SELECT px_err(format('SELECT vms.lift_privacy_mask(%s, %L)', :p1, '  ')) AS empty_reason;
SELECT px_err(format('SELECT vms.lift_privacy_mask(%s, ''r'', ''0 seconds'')', :p1)) AS zero_duration;
SELECT px_err(format('SELECT vms.lift_privacy_mask(%s, ''r'', ''-5 minutes'')', :p1)) AS negative_duration;
SELECT px_err(format('SELECT vms.lift_privacy_mask(%s, ''r'', ''9 hours'')', :p1)) AS above_policy;
SELECT px_err(format('SELECT vms.lift_privacy_mask(%s, ''r'', zone => %s)', :p1, :z_perm)) AS permanent_zone;
SELECT px_err(format('SELECT vms.lift_privacy_mask(%s, ''r'', zone => %s)', :p1, :z_garden)) AS zone_of_other_camera;
SELECT px_err(format('SELECT vms.lift_privacy_mask(%s, ''r'')', :p2)) AS camera_without_permission;
SELECT count(*) AS lifts_after_refusals FROM vms.privacy_lifts;
SELECT vms.lift_privacy_mask(:p1, 'Till dispute 2026-12', '20 minutes', :z_desk) AS lift_desk \gset
SELECT zone_id = :z_perm AS perm, name FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT id = :lift_desk AS lift, zone_id = :z_desk AS desk, reason, ends_at - starts_at AS lasts, approved_by
  FROM vms.active_lifts(:p1);
RESET ROLE;
-- Ben, with the same permissions, still sees every mask: the lift is Ann's.
SET ROLE regress_px_ben;
SELECT name FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT count(*) AS bens_active_lifts FROM vms.active_lifts(:p1);
-- Nor may he end Ann's lift.
SELECT px_err(format('SELECT vms.end_privacy_lift(%s)', :lift_desk)) AS not_his_lift;
RESET ROLE;
-- The lift ends by time: moved into the past, the masks are back.
UPDATE vms.privacy_lifts SET starts_at = now() - interval '1 hour', ends_at = now() - interval '40 minutes'
 WHERE id = :lift_desk;
SET ROLE regress_px_ann;
SELECT name FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT px_err(format('SELECT vms.end_privacy_lift(%s)', :lift_desk)) AS already_ran_out;
-- A lift of every liftable zone, then ended early by Ann.
SELECT vms.lift_privacy_mask(:p1, 'Search for a lost child') AS lift_all \gset
SELECT name FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT vms.end_privacy_lift(:lift_all);
SELECT name FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT px_err(format('SELECT vms.end_privacy_lift(%s)', :lift_all)) AS ended_twice;
-- A lift in force stops counting when the person loses lift_privacy_mask.
SELECT vms.lift_privacy_mask(:p1, 'Review of the cash desk', '1 hour', :z_desk) AS lift_kept \gset
SELECT name FROM vms.masks_for(:p1) ORDER BY zone_id;
RESET ROLE;
SET ROLE regress_manager;
SELECT vms.revoke_permission(id) FROM vms.grants
 WHERE role = 'regress_px_lifters' AND permission = 'lift_privacy_mask';
RESET ROLE;
SET ROLE regress_px_ann;
SELECT name AS masked_without_permission FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT count(*) AS active_without_permission FROM vms.active_lifts(:p1);
RESET ROLE;
SET ROLE regress_manager;
SELECT vms.grant_permission('regress_px_lifters', 'lift_privacy_mask', camera_id => :p1) > 0 AS granted_again;
RESET ROLE;
SET ROLE regress_px_ann;
SELECT name AS masked_with_permission_again FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT vms.end_privacy_lift(:lift_kept);
RESET ROLE;

------------------------------------------------------------------------------
-- Lifts with approval: waits; approved by another person only
------------------------------------------------------------------------------
SET ROLE regress_px_ann;
SELECT px_err(format('SELECT vms.set_privacy_lift_policy(%s, true)', :p1)) AS viewer_sets_policy;
RESET ROLE;
SET ROLE regress_manager;
SELECT px_err(format('SELECT vms.set_privacy_lift_policy(%s, true, ''8 days'')', :p1)) AS too_long;
SELECT px_err(format('SELECT vms.set_privacy_lift_policy(%s, NULL)', :p1)) AS null_approval;
SELECT px_err('SELECT vms.set_privacy_lift_policy(999999, true)') AS unknown_camera;
SELECT vms.set_privacy_lift_policy(:p1, true, '2 hours');
RESET ROLE;
SELECT camera_id = :p1 AS p1, needs_approval, max_duration, updated_by FROM vms.privacy_lift_policy;
SET ROLE regress_px_ann;
SELECT px_err(format('SELECT vms.lift_privacy_mask(%s, ''r'', ''3 hours'')', :p1)) AS above_new_policy;
SELECT vms.lift_privacy_mask(:p1, 'Incident 2026-117', '1 hour', :z_screen) AS lift_pending \gset
SELECT starts_at IS NULL AS waiting, ends_at IS NULL AS no_end, needs_approval FROM vms.privacy_lifts WHERE id = :lift_pending;
SELECT name AS still_masked FROM vms.masks_for(:p1) ORDER BY zone_id;
-- Ann may not approve her own lift.
SELECT px_err(format('SELECT vms.approve_privacy_lift(%s)', :lift_pending)) AS own_lift;
RESET ROLE;
-- Ben has no approve_privacy_lift; Eve sees another camera only.
SET ROLE regress_px_ben;
SELECT px_err(format('SELECT vms.approve_privacy_lift(%s)', :lift_pending)) AS no_approve_permission;
RESET ROLE;
SET ROLE regress_px_cat;
SELECT px_err('SELECT vms.approve_privacy_lift(999999)') AS unknown_lift;
-- Cat's own lift waits for someone else too.
SELECT vms.lift_privacy_mask(:p1, 'Cat checks the till', '10 minutes', :z_desk) AS lift_cat \gset
SELECT px_err(format('SELECT vms.approve_privacy_lift(%s)', :lift_cat)) AS cat_own_lift;
SELECT vms.approve_privacy_lift(:lift_pending);
SELECT px_err(format('SELECT vms.approve_privacy_lift(%s)', :lift_pending)) AS approved_twice;
-- Approved for Ann, not for Cat: Cat still sees the screen masked.
SELECT name AS cat_sees_masked FROM vms.masks_for(:p1) ORDER BY zone_id;
RESET ROLE;
SET ROLE regress_px_ann;
SELECT name AS ann_sees_masked FROM vms.masks_for(:p1) ORDER BY zone_id;
SELECT id = :lift_pending AS lift, reason, ends_at - starts_at AS lasts, approved_by FROM vms.active_lifts(:p1);
RESET ROLE;
SELECT approved_by, approved_at = starts_at AS from_approval, ends_at - starts_at AS lasts
  FROM vms.privacy_lifts WHERE id = :lift_pending;
-- A withdrawn request can no longer be approved.
SET ROLE regress_px_cat;
SELECT vms.end_privacy_lift(:lift_cat);
RESET ROLE;
SET ROLE regress_px_ann;
SELECT px_err(format('SELECT vms.approve_privacy_lift(%s)', :lift_cat)) AS ann_has_no_approve;
RESET ROLE;
-- The lifts as each person sees them.
SET ROLE regress_px_ben;
SELECT count(*) AS lifts_ben_sees FROM vms.privacy_lifts;
RESET ROLE;
SET ROLE regress_px_cat;
SELECT count(*) AS lifts_cat_sees FROM vms.privacy_lifts WHERE camera_id = :p1;
RESET ROLE;
SELECT audit_settle();
SELECT action, outcome, count(*) FROM vms.audit_log
 WHERE action IN ('privacy_lift', 'privacy_lift_approve', 'privacy_lift_end', 'privacy_lift_policy') AND outcome = 'ok'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT action, outcome, details->>'sqlstate' AS sqlstate, count(*) FROM vms.audit_log
 WHERE action IN ('privacy_lift', 'privacy_lift_approve', 'privacy_lift_end', 'privacy_lift_policy', 'masks_for')
   AND outcome <> 'ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT actor, details->>'reason' AS reason, details->>'needs_approval' AS needs_approval
  FROM vms.audit_log WHERE action = 'privacy_lift' AND outcome = 'ok' ORDER BY seq;

------------------------------------------------------------------------------
-- Export profiles: system managers only; one certificate; mp4 and png only
------------------------------------------------------------------------------
SET ROLE regress_px_ann;
SELECT px_err(format('SELECT vms.set_export_profile(''court'', %L)', :'pem1')) AS not_a_manager;
RESET ROLE;
SET ROLE regress_manager;
SELECT px_err(format('SELECT vms.set_export_profile(''court'', %L)', c)) AS bad_certificate
  FROM unnest(ARRAY['not a certificate', :'pem1' || :'pem2',
                    E'-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
                    :'pem1' || E'-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', '']) c;
SELECT px_err(format('SELECT vms.set_export_profile(''court'', %L, signer_chain => %L)', :'pem1', 'junk')) AS bad_chain;
SELECT px_err(format('SELECT vms.set_export_profile(''court'', %L, formats => %L)', :'pem1', f)) AS bad_formats
  FROM unnest(ARRAY['{}', '{avi}', '{mp4,jpeg}', '{mp4,NULL}']) f;
SELECT px_err(format('SELECT vms.set_export_profile(''court'', %L, tsa_url => %L)', :'pem1', u)) AS bad_tsa_url
  FROM unnest(ARRAY['ftp://tsa.example.org/', 'https://user:pw@tsa.example.org/', 'tsa.example.org']) u;
SELECT vms.set_export_profile('court', :'pem1', signer_chain => :'pem2', tsa_url => 'http://127.0.0.1:3180/tsr',
                              description => 'Evidence for court');
SELECT vms.set_export_profile('snap', :'pem1', formats => '{png}', key_needs_passphrase => false,
                              encryption_required => true);
SELECT vms.set_export_profile('temp', :'pem2');
SELECT vms.remove_export_profile('temp');
SELECT px_err('SELECT vms.remove_export_profile(''temp'')') AS unknown_profile;
RESET ROLE;
SELECT name, encode(signer_sha256, 'hex') = encode(sha256(decode(
           regexp_replace(signer_certificate, '-----[A-Z ]+-----|\s', '', 'g'), 'base64')), 'hex') AS fingerprint_of_der,
       encode(signer_sha256, 'hex') AS signer_sha256, signer_chain IS NOT NULL AS chain, key_needs_passphrase, formats,
       encryption_required, tsa_url, updated_by
  FROM vms.export_profiles ORDER BY name;
-- Exporters read the profiles; someone who may not export does not.
SET ROLE regress_px_dan;
SELECT name FROM vms.export_profiles ORDER BY name;
RESET ROLE;
SET ROLE regress_px_eve;
SELECT count(*) AS profiles_eve_sees FROM vms.export_profiles;
RESET ROLE;

------------------------------------------------------------------------------
-- The export register: begin (every check, in order, audited), finish, fail
------------------------------------------------------------------------------
-- Recordings: three 10-minute segments two to three hours ago, one 5 days ago.
SET ROLE regress_px_rec;
SELECT count(vms.register_segment(:p1, t, t + interval '10 minutes',
             format('%s/%s.ts', :p1, to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD-HH24MISS')), 1000 + n,
             sha256(('segment ' || n)::bytea), 'h264', 1920, 1080)) AS registered
  FROM (SELECT n, date_trunc('minute', now()) - interval '3 hours' + (n - 1) * interval '10 minutes' AS t
          FROM generate_series(1, 3) n
        UNION ALL SELECT 4, date_trunc('minute', now()) - interval '5 days') s;
RESET ROLE;
SELECT date_trunc('minute', now()) - interval '3 hours' AS t0 \gset
SET ROLE regress_manager;
SELECT vms.place_hold(:p1, :'t0'::timestamptz - interval '1 hour', :'t0'::timestamptz + interval '15 minutes',
                      'Incident 2026-117') AS hold \gset
RESET ROLE;
SET ROLE regress_px_ann;
SELECT vms.lift_privacy_mask(:p1, 'Export for court', '1 hour', :z_desk) AS lift_export \gset
RESET ROLE;
SET ROLE regress_px_cat;
SELECT vms.approve_privacy_lift(:lift_export);
RESET ROLE;
-- Refusals, one per check, in order.
SET ROLE regress_px_ann;
SELECT px_err(format($$SELECT vms.begin_export(999999, %L, %L, 'r', 'court')$$, :'t0', :'t0')) AS unknown_camera;
SELECT px_err(format($$SELECT vms.begin_export(%s, %L::timestamptz, %L::timestamptz + interval '5 minutes', ' ', 'court')$$,
              :p1, :'t0', :'t0')) AS empty_reason;
SELECT px_err(format($$SELECT vms.begin_export(%s, %L::timestamptz, %L::timestamptz, 'r', 'court')$$, :p1, :'t0', :'t0')) AS empty_range;
SELECT px_err(format($$SELECT vms.begin_export(%s, %L::timestamptz, now() + interval '1 hour', 'r', 'court')$$, :p1, :'t0')) AS ends_in_future;
SELECT px_err(format($$SELECT vms.begin_export(%s, now() - interval '26 hours', now() - interval '1 hour', 'r', 'court')$$, :p1)) AS too_long;
SELECT px_err(format($$SELECT vms.begin_export(%s, %L::timestamptz, %L::timestamptz + interval '5 minutes', 'r', 'nope')$$,
              :p1, :'t0', :'t0')) AS unknown_profile;
SELECT px_err(format($$SELECT vms.begin_export(%s, %L::timestamptz, %L::timestamptz + interval '5 minutes', 'r', 'snap')$$,
              :p1, :'t0', :'t0')) AS profile_without_mp4;
SELECT px_err(format($$SELECT vms.begin_export(%s, %L::timestamptz, %L::timestamptz + interval '5 minutes', 'r', 'court', true)$$,
              :p1, :'t0', :'t0')) AS profile_without_png;
SELECT px_err(format($$SELECT vms.begin_export(%s, now() - interval '2 hours', now() - interval '1 hour', 'r', 'court')$$,
              :p2)) AS camera_without_permission;
SELECT px_err(format($$SELECT vms.begin_export(%s, now() - interval '50 minutes', now() - interval '40 minutes', 'r', 'court')$$,
              :p1)) AS no_recordings;
RESET ROLE;
-- Dan may export 2 days back: not the recording of 5 days ago.
SET ROLE regress_px_dan;
SELECT px_err(format($$SELECT vms.begin_export(%s, now() - interval '5 days', now() - interval '5 days' + interval '5 minutes', 'r', 'court')$$,
              :p1)) AS before_window;
RESET ROLE;
-- Eve may not export at all (and learns nothing of cameras she cannot use).
SET ROLE regress_px_eve;
SELECT px_err(format($$SELECT vms.begin_export(%s, %L::timestamptz, %L::timestamptz + interval '5 minutes', 'r', 'court')$$,
              :p1, :'t0', :'t0')) AS no_export_permission;
SELECT px_err(format($$SELECT vms.begin_export(999999, %L, %L::timestamptz + interval '5 minutes', 'r', 'court')$$,
              :'t0', :'t0')) AS unknown_camera_for_eve;
RESET ROLE;
-- A system manager learns that a camera does not exist.
SET ROLE regress_manager;
SELECT px_err(format($$SELECT vms.begin_export(999999, %L, %L::timestamptz + interval '5 minutes', 'r', 'court')$$,
              :'t0', :'t0')) AS unknown_camera_for_manager;
RESET ROLE;
SELECT count(*) AS exports_after_refusals FROM vms.exports;
-- Ann exports 12 minutes from the first segment: two segments, her lift applies.
SET ROLE regress_px_ann;
SELECT vms.begin_export(:p1, :'t0'::timestamptz + interval '5 minutes', :'t0'::timestamptz + interval '17 minutes',
                        'Incident 2026-117', 'court') AS j \gset
RESET ROLE;
SELECT :'j'::jsonb ->> 'export_id' AS e1 \gset
SELECT (j->>'export_id')::bigint = :e1 AS id, j->'camera'->>'name' AS camera, j->'camera'->'id' = to_jsonb(:p1) AS camera_id,
       j->>'from' = to_char((:'t0'::timestamptz + interval '5 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS from_iso,
       j->>'to' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$' AS to_iso, j->>'kind' AS kind, j->>'reason' AS reason,
       j->>'exported_by' AS exported_by, j->>'session_user' AS session_user_name,
       j->>'started_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$' AS started_iso
  FROM (SELECT :'j'::jsonb AS j) x;
SELECT jsonb_pretty((:'j'::jsonb -> 'profile') - 'signer_certificate' - 'signer_chain') AS profile,
       (:'j'::jsonb -> 'profile' ->> 'signer_certificate') = :'pem1' AS certificate,
       (:'j'::jsonb -> 'profile' ->> 'signer_chain') = :'pem2' AS chain;
SELECT s.id = g.id AS segment_id, s.start = vms._utc_iso(g.start_time) AS start_iso, s."end" = vms._utc_iso(g.end_time) AS end_iso,
       s.path = g.path AS path, s.bytes, s.sha256 = encode(g.sha256, 'hex') AS sha256, s.codec, s.width, s.height
  FROM jsonb_to_recordset(:'j'::jsonb -> 'segments')
       AS s(id bigint, start text, "end" text, path text, bytes bigint, sha256 text, codec text, width int, height int)
  JOIN vms.segments g ON g.id = s.id ORDER BY s.start;
SELECT m.zone_id = :z_perm AS perm, m.name, m.liftable, m.fill, m.points
  FROM jsonb_to_recordset(:'j'::jsonb -> 'masks') AS m(zone_id bigint, name text, liftable boolean, fill text, points jsonb);
SELECT l.lift_id = :lift_export AS lift, l.zone_id = :z_desk AS desk, l.reason, l.requested_by, l.approved_by,
       l.ends_at > l.starts_at AS ordered
  FROM jsonb_to_recordset(:'j'::jsonb -> 'lifts')
       AS l(lift_id bigint, zone_id bigint, reason text, requested_by text, approved_by text, starts_at text, ends_at text);
SELECT h.hold_id = :hold AS hold, h.reason, h."from" = vms._utc_iso(:'t0'::timestamptz - interval '1 hour') AS from_iso
  FROM jsonb_to_recordset(:'j'::jsonb -> 'holds') AS h(hold_id bigint, reason text, "from" text, "to" text);
-- Ben's export of the same range masks everything: Ann's lift is hers.
SET ROLE regress_px_ben;
SELECT jsonb_array_length(j->'masks') AS bens_masks, jsonb_array_length(j->'lifts') AS bens_lifts,
       j->>'export_id' AS e2
  FROM vms.begin_export(:p1, :'t0'::timestamptz + interval '5 minutes', :'t0'::timestamptz + interval '17 minutes',
                        'Second copy', 'court') j \gset
SELECT :bens_masks AS bens_masks, :bens_lifts AS bens_lifts;
RESET ROLE;
-- The register row.
SELECT id = :e1 AS e1, camera_name, to_time - from_time AS span, kind, reason, profile, requested_by, session_user_name,
       state, segments, bytes, jsonb_array_length(masks) AS masks, jsonb_array_length(lifts) AS lifts,
       jsonb_array_length(holds) AS holds, encryption_required, encode(signer_sha256, 'hex') AS signer_sha256
  FROM vms.exports ORDER BY id;
-- Finish: only the one who began it, with the profile's certificate, once.
SET ROLE regress_px_ben;
SELECT px_err(format($$SELECT vms.finish_export(%s, sha256('m'), sha256('o'), %L)$$, :e1, :'pem1')) AS not_his_export;
SELECT count(*) AS exports_ben_sees FROM vms.exports;
RESET ROLE;
SET ROLE regress_px_ann;
SELECT px_err(format($$SELECT vms.finish_export(%s, sha256('m'), sha256('o'), %L)$$, :e1, :'pem2')) AS other_signer;
SELECT px_err(format($$SELECT vms.finish_export(%s, '\x0102', sha256('o'), %L)$$, :e1, :'pem1')) AS short_hash;
SELECT px_err(format($$SELECT vms.finish_export(%s, sha256('m'), sha256('o'), %L, encrypted => 'rot13')$$, :e1, :'pem1')) AS bad_encryption;
SELECT px_err(format($$SELECT vms.finish_export(999999, sha256('m'), sha256('o'), %L)$$, :'pem1')) AS unknown_export;
SELECT vms.finish_export(:e1, sha256('manifest'), sha256('output'), :'pem1', timestamped => true,
                         signer_subject => 'CN=Regress Evidence Signer');
SELECT px_err(format($$SELECT vms.finish_export(%s, sha256('m'), sha256('o'), %L)$$, :e1, :'pem1')) AS finished_twice;
SELECT px_err(format($$SELECT vms.fail_export(%s, 'late')$$, :e1)) AS fail_after_finish;
SELECT count(*) AS exports_ann_sees FROM vms.exports;
RESET ROLE;
-- Ben's export fails (a segment differs from the index).
SET ROLE regress_px_ben;
SELECT px_err(format($$SELECT vms.fail_export(%s, '')$$, :e2)) AS empty_failure;
SELECT vms.fail_export(:e2, 'segment 2 (x.ts): SHA-256 differs from the index');
RESET ROLE;
-- A profile that requires encryption: a snapshot must say how it was encrypted.
SET ROLE regress_px_ann;
SELECT (vms.begin_export(:p1, :'t0'::timestamptz + interval '1 minute', :'t0'::timestamptz + interval '2 minutes',
                         'Still for the report', 'snap', true))->>'export_id' AS e3 \gset
SELECT px_err(format($$SELECT vms.finish_export(%s, sha256('m'), sha256('o'), %L)$$, :e3, :'pem1')) AS not_encrypted;
SELECT vms.finish_export(:e3, sha256('m3'), sha256('o3'), :'pem1', encrypted => 'password');
RESET ROLE;
SELECT id = :e1 AS e1, kind, state, finished_at IS NOT NULL AS finished, encode(manifest_sha256, 'hex') = encode(sha256('manifest'), 'hex') AS manifest,
       encode(output_sha256, 'hex') = encode(sha256('output'), 'hex') AS output, signer_subject, timestamped, encrypted, failure
  FROM vms.exports ORDER BY id;
SELECT audit_settle();
SELECT action, outcome, actor, details->>'sqlstate' AS sqlstate, count(*) FROM vms.audit_log
 WHERE action IN ('export_begin', 'export_finish', 'export_fail') GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
SELECT details->>'manifest_sha256' = encode(sha256('manifest'), 'hex') AS manifest, details->>'signer_subject' AS signer,
       details->>'timestamped' AS timestamped
  FROM vms.audit_log WHERE action = 'export_finish' AND outcome = 'ok' AND target = :'e1';
SELECT details->>'sqlstate' AS sqlstate, details->>'failure' AS failure FROM vms.audit_log
 WHERE action = 'export_fail' AND outcome = 'error' AND target = :'e2' ORDER BY seq;
SELECT actor, outcome, details->>'sqlstate' AS sqlstate, regexp_replace(details->>'message', '[0-9]+', '#', 'g') AS refusal
  FROM vms.audit_log WHERE action = 'export_begin' AND outcome <> 'ok' ORDER BY seq;
SELECT action, outcome, target, details->>'formats' AS formats FROM vms.audit_log
 WHERE action LIKE 'export\_profile\_%' ORDER BY seq;
