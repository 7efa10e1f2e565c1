-- Retention: the policy and its cap, evidence holds, vms.apply_retention()
-- (row path and whole partitions), the purge queue, reports, scheduling.
\set VERBOSITY terse
SELECT (now() AT TIME ZONE 'UTC')::date AS today \gset
SELECT id AS cam1 FROM vms.cameras WHERE name = 'entrance' \gset

SET ROLE regress_manager;
SELECT vms.add_camera_group('archive') > 0 AS archive_added;
SELECT vms.add_camera('arch-1', camera_group => 'archive') AS a1 \gset
SELECT vms.add_camera('arch-2', camera_group => 'archive') AS a2 \gset
SELECT vms.add_camera('arch-3', camera_group => 'archive') AS a3 \gset
SELECT vms.create_role('regress_retention');
SELECT vms.grant_permission('regress_retention', 'manage_retention', camera_group => 'archive') > 0 AS granted;
SELECT vms.create_user('regress_archivist', 'Archivist-pw-1-Zephyr');
SELECT vms.create_user('regress_archivist2', 'Archivist-pw-2-Zephyr');
SELECT vms.add_member('regress_retention', 'regress_archivist');
SELECT vms.add_member('regress_retention', 'regress_archivist2');
SELECT vms.create_role('regress_archive_viewers');
SELECT vms.grant_permission('regress_archive_viewers', 'view_live', camera_group => 'archive') > 0 AS granted;
SELECT vms.create_user('regress_viewer', 'Viewer-pw-1-Zephyr');
SELECT vms.add_member('regress_archive_viewers', 'regress_viewer');
SELECT vms.create_user('regress_rec3', 'Recorder-pw-3-Zephyr');
SELECT vms.add_member('vms_recorder', 'regress_rec3');
SELECT vms.assign_recorder(c, 'regress_rec3') FROM unnest(ARRAY[:a1, :a2, :a3]) c;
RESET ROLE;

------------------------------------------------------------------------------
-- Policy: per camera, a default, a cap only a superuser raises
------------------------------------------------------------------------------
SELECT camera_name, camera_setting, default_retention, max_retention, effective_retention, capped
  FROM vms.camera_retention WHERE camera_name LIKE 'arch-%' ORDER BY camera_id;
SET ROLE regress_archivist;
SELECT vms.set_retention(:a1, '2 days');
SELECT vms.set_retention(:a2, '1 mon') AS a_month_is_30_days;
SELECT expect_error(format('SELECT vms.set_retention(%s, ''31 days'')', :a1)) AS over_the_cap;
SELECT expect_error(format('SELECT vms.set_retention(%s, ''0 s'')', :a1)) AS zero;
SELECT expect_error(format('SELECT vms.set_retention(%s, ''-1 day'')', :a1)) AS negative;
SELECT expect_error(format('SELECT vms.set_retention(%s, ''1 day'')', :cam1)) AS not_in_scope;
SELECT expect_error('SELECT vms.set_retention(999999, ''1 day'')') AS unknown_camera;
SELECT expect_error('SELECT vms.set_default_retention(''7 days'')') AS default_needs_scope_all;
RESET ROLE;
-- The failures changed nothing.
SELECT camera_name, camera_setting, effective_retention FROM vms.camera_retention
 WHERE camera_name LIKE 'arch-%' ORDER BY camera_id;
-- A superuser raises the cap; a retention above 30 days is then allowed...
ALTER SYSTEM SET vms.max_retention = '90d';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SET ROLE regress_archivist;
SELECT vms.set_retention(:a3, '60 days');
RESET ROLE;
-- ...and when the cap comes down again it cuts what is in force.
ALTER SYSTEM RESET vms.max_retention;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT camera_name, camera_setting, effective_retention, capped FROM vms.camera_retention WHERE camera_id = :a3;
-- The default: scope all (a system manager).
SET ROLE regress_manager;
SELECT vms.set_default_retention('14 days');
SELECT expect_error('SELECT vms.set_default_retention(NULL)') AS null_default;
RESET ROLE;
SELECT default_retention FROM vms.retention_settings;
-- Every change is audited.
SELECT audit_settle();
SELECT action, actor, details->>'new' AS new FROM vms.audit_log
 WHERE action IN ('set_retention', 'set_default_retention') AND outcome = 'ok' ORDER BY seq;
SELECT action, outcome, details->>'sqlstate' AS sqlstate FROM vms.audit_log
 WHERE action = 'set_retention' AND outcome <> 'ok' ORDER BY seq;

------------------------------------------------------------------------------
-- Recordings: arch-1 (2 days) alone on days -20 and -8; with arch-2 on day -5
------------------------------------------------------------------------------
SET ROLE regress_rec3;
SELECT count(vms.register_segment(c, t, t + interval '6 s', format('%s/%s.ts', c, to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD-HH24MISS')),
                                  1000, sha256(convert_to(c || '@' || t, 'UTF8')))) AS registered
  FROM (VALUES (:a1, -20, 0), (:a1, -20, 1), (:a1, -8, 0), (:a1, -8, 1), (:a1, -8, 2), (:a1, -8, 3),
               (:a1, -5, 0), (:a1, -5, 1), (:a2, -5, 0), (:a1, 0, 0), (:a2, 0, 0)) v(c, d, h),
       LATERAL (SELECT CASE WHEN d = 0 THEN date_trunc('minute', now()) - interval '10 minutes' - h * interval '1 minute'
                            ELSE ((:'today'::date + d)::text || ' 10:00:00+00')::timestamptz + h * interval '1 hour' END AS t) x;
SELECT count(vms.register_event(:a1, CASE WHEN d = 0 THEN now() - interval '5 minutes'
                                           ELSE ((:'today'::date + d)::text || ' 10:30:00+00')::timestamptz END, 'motion')) AS events
  FROM (VALUES (-20), (-5), (0)) v(d);
RESET ROLE;

------------------------------------------------------------------------------
-- Evidence holds
------------------------------------------------------------------------------
SET ROLE regress_archivist;
-- Day -8, 11:00: one of four segments, released only with a second person.
SELECT vms.place_hold(:a1, ((:'today'::date - 8)::text || ' 11:00:00+00')::timestamptz,
                      ((:'today'::date - 8)::text || ' 11:30:00+00')::timestamptz, 'case 7: break-in at the archive',
                      release_needs_approval => true) AS hold_day8 \gset
-- Day -5, 10:00-10:30: one segment and no event; expires in an hour.
SELECT vms.place_hold(:a1, ((:'today'::date - 5)::text || ' 10:00:00+00')::timestamptz,
                      ((:'today'::date - 5)::text || ' 10:05:00+00')::timestamptz, 'case 8: fall',
                      expires_at => now() + interval '1 hour', owner => 'det. Okafor') AS hold_day5 \gset
-- (The times in these messages vary from run to run: cut off.)
SELECT split_part(expect_error(format($$SELECT vms.place_hold(%s, now(), now() - interval '1 hour', 'backwards')$$, :a1)), ':', 2) AS reversed;
SELECT split_part(expect_error(format($$SELECT vms.place_hold(%s, now() - interval '1 hour', now() - interval '1 hour', 'empty')$$, :a1)), ':', 2) AS empty_range;
SELECT expect_error(format($$SELECT vms.place_hold(%s, now() - interval '1 hour', now(), NULL)$$, :a1)) AS no_reason;
SELECT expect_error(format($$SELECT vms.place_hold(%s, now() - interval '1 hour', now(), 'x', expires_at => now() - interval '1 s')$$, :a1)) AS expired_already;
SELECT expect_error($$SELECT vms.place_hold(999999, now() - interval '1 hour', now(), 'unknown')$$) AS unknown_camera;
SELECT expect_error(format($$SELECT vms.place_hold(%s, now() - interval '1 hour', now(), 'not mine')$$, :cam1)) AS out_of_scope;
SELECT expect_error(format($$SELECT vms.place_hold(%s, '-infinity', now(), 'forever')$$, :a1)) AS infinite;
RESET ROLE;
SELECT count(*) AS holds FROM vms.evidence_holds;
-- Visible to whoever may see the camera, and to no one else.
SET ROLE regress_viewer;
SELECT count(*) AS viewer_sees FROM vms.evidence_holds;
SET ROLE regress_alice;
SELECT count(*) AS alice_sees FROM vms.evidence_holds;
SELECT count(*) AS alice_sees_active FROM vms.active_holds;
RESET ROLE;

------------------------------------------------------------------------------
-- Expiry
------------------------------------------------------------------------------
SET ROLE regress_archivist;
SELECT expect_error('SELECT vms.apply_retention()') AS needs_scope_all;
SET ROLE regress_manager;
SELECT partitions_retired >= 2 AS some_retired, rows_deleted, files_queued, bytes_queued,
       held_rows_kept, audit_partitions_dropped, partitions_deferred
  FROM vms.apply_retention();
RESET ROLE;
-- What is left of arch-1: the held segment of day -8, the held one of day -5
-- and today's; arch-2's day -5 segment is within its 30 days.
CREATE FUNCTION pg_temp.day_of(t timestamptz, today date) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN t > now() - interval '1 day' THEN 'recent'
                ELSE 'day ' || ((t AT TIME ZONE 'UTC')::date - today) || ' ' || to_char(t AT TIME ZONE 'UTC', 'HH24:MI') END;
$$;
SELECT camera_id = :a1 AS arch_1, pg_temp.day_of(start_time, :'today') AS at
  FROM vms.segments WHERE camera_id IN (:a1, :a2) ORDER BY camera_id, start_time;
SELECT camera_id = :a1 AS arch_1, pg_temp.day_of(event_time, :'today') AS at
  FROM vms.events WHERE camera_id IN (:a1, :a2) ORDER BY event_time;
-- Day -20 was retired whole: its files are a purge batch; day -8 too, its
-- held segment moved into a fresh partition of the same day.
SELECT table_name = 'expired_segments_p' || to_char(day, 'YYYYMMDD') AS named_by_day, day - :'today'::date AS day
  FROM vms.purge_batches ORDER BY day;
SELECT to_regclass('vms.segments_p' || to_char(:'today'::date - 20, 'YYYYMMDD')) IS NULL AS day20_gone,
       to_regclass('vms.segments_p' || to_char(:'today'::date - 8, 'YYYYMMDD')) IS NOT NULL AS day8_partition_again,
       to_regclass('vms.events_p' || to_char(:'today'::date - 20, 'YYYYMMDD')) IS NULL AS day20_events_dropped;
-- Day -5 kept arch-2: arch-1's expired, unheld segment went row by row to the queue.
SELECT camera_id = :a1 AS arch_1, pg_temp.day_of(start_time, :'today') AS at, recorder, bytes
  FROM vms.purge_queue ORDER BY start_time;
-- Nobody but the owner reads the queue or a batch directly.
SELECT min(table_name) AS batch FROM vms.purge_batches \gset
SET ROLE regress_manager;
SELECT expect_error('SELECT count(*) FROM vms.purge_queue') AS queue_hidden;
SELECT expect_error('SELECT count(*) FROM vms.purge_batches') AS batches_hidden;
SELECT regexp_replace(expect_error('SELECT count(*) FROM vms.' || :'batch'), '[0-9]{8}', 'YYYYMMDD') AS batch_hidden;
RESET ROLE;
SELECT relrowsecurity AND relforcerowsecurity AS batch_rls, relacl IS NULL AS batch_no_grants
  FROM pg_class WHERE oid = ('vms.' || (SELECT min(table_name) FROM vms.purge_batches))::regclass;
-- Retention reads the holds at READ COMMITTED only, and its time arithmetic
-- is in UTC whatever the caller's TimeZone (a crafted zone could otherwise
-- shrink a day).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT expect_error('SELECT vms.apply_retention()') AS repeatable_read;
ROLLBACK;
SELECT p.proname, 'TimeZone=UTC' = ANY (p.proconfig) AS utc FROM pg_proc p
 WHERE p.proname IN ('_apply_retention', '_retention_report', '_security_report') ORDER BY 1;
-- A second run finds nothing more to do.
SELECT partitions_retired, rows_deleted, files_queued FROM vms.apply_retention();
-- A late segment for day -20 (a recorder's backlog) makes the day again; the
-- next run retires it beside the batch still waiting.
SET ROLE regress_rec3;
SELECT vms.register_segment(:a1, ((:'today'::date - 20)::text || ' 15:00:00+00')::timestamptz,
                            ((:'today'::date - 20)::text || ' 15:00:06+00')::timestamptz, 'late.ts', 1000,
                            sha256('late')) > 0 AS late_registered;
RESET ROLE;
SELECT partitions_retired FROM vms.apply_retention();
SELECT regexp_replace(table_name, '[0-9]{8}', 'YYYYMMDD') AS batch, day - :'today'::date AS day
  FROM vms.purge_batches ORDER BY id;

------------------------------------------------------------------------------
-- Reports
------------------------------------------------------------------------------
SET ROLE regress_archivist;
SELECT camera_name, retention, oldest_recording IS NOT NULL AS has_recordings, expired_rows, complies,
       cardinality(held_ranges) AS holds, held_segments, held_bytes, purge_pending_files, purge_pending_bytes
  FROM vms.retention_report() ORDER BY camera_id;
SELECT camera_name, segments, bytes, purge_pending_files, last_check_at IS NULL AS never_checked
  FROM vms.storage_report() ORDER BY camera_id;
SET ROLE regress_alice;
SELECT expect_error('SELECT * FROM vms.retention_report()') AS alice_report;
RESET ROLE;

------------------------------------------------------------------------------
-- The recorder removes the files and confirms (what vms-storage purge does)
------------------------------------------------------------------------------
-- A hold placed after the release still keeps the file: the claim leaves
-- out day -5 11:00 of arch-1 (released row by row above).
SET ROLE regress_archivist;
SELECT vms.place_hold(:a1, ((:'today'::date - 5)::text || ' 11:00:00+00')::timestamptz,
                      ((:'today'::date - 5)::text || ' 11:00:03+00')::timestamptz, 'case 9: late request') AS hold_late \gset
SET ROLE regress_rec3;
SELECT count(*) AS claimed, sum(bytes) AS bytes FROM vms.purge_claim(:a1);
SELECT count(*) AS claimed_a2 FROM vms.purge_claim(:a2);
SELECT count(*) AS limited FROM vms.purge_claim(:a1, 2);
SELECT expect_error(format('SELECT vms.purge_claim(%s, 0)', :a1)) AS bad_limit;
SELECT vms.purge_confirm(:a1, ARRAY(SELECT segment_id FROM vms.purge_claim(:a1))) AS confirmed;
SELECT vms.purge_confirm(:a1, ARRAY(SELECT id FROM vms.segments WHERE camera_id = :a1)) AS live_rows_not_confirmable;
SELECT count(*) AS left_to_remove FROM vms.purge_claim(:a1);
RESET ROLE;
SELECT count(*) AS still_queued_under_hold FROM vms.purge_queue WHERE camera_id = :a1;
SET ROLE regress_archivist;
SELECT vms.release_hold(:hold_late, 'request withdrawn');
SET ROLE regress_rec3;
SELECT count(*) AS claimable_again FROM vms.purge_claim(:a1);
SELECT vms.purge_confirm(:a1, ARRAY(SELECT segment_id FROM vms.purge_claim(:a1))) AS confirmed_after_release;
SELECT vms.purge_confirm(:a1, '{1,2,3}') AS confirming_again_is_harmless;
SET ROLE regress_alice;
SELECT expect_error(format('SELECT * FROM vms.purge_claim(%s)', :a1)) AS alice_claims;
SELECT expect_error(format('SELECT vms.purge_confirm(%s, ''{1}'')', :a1)) AS alice_confirms;
RESET ROLE;
-- Empty batches are dropped by the next run.
SELECT purge_batches_finished FROM vms.apply_retention();
SELECT count(*) AS batches_left FROM vms.purge_batches;
SELECT count(*) AS batch_tables_left FROM pg_class WHERE relname LIKE 'expired_segments_p%';

------------------------------------------------------------------------------
-- Releasing holds; expiry of a hold
------------------------------------------------------------------------------
-- Two people means two logins: SET ROLE cannot play the second one.
SET SESSION AUTHORIZATION regress_archivist;
SELECT vms.release_hold(:hold_day8, 'case closed') AS first_person;
SELECT expect_error(format('SELECT vms.approve_hold_release(%s)', :hold_day8)) AS same_person_approves;
SELECT expect_error(format('SELECT vms.release_hold(%s, ''again'')', :hold_day8)) AS asked_twice;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_viewer;
SELECT expect_error(format('SELECT vms.approve_hold_release(%s)', :hold_day8)) AS viewer_approves;
SELECT expect_error('SELECT vms.release_hold(999999, ''x'')') AS unknown_hold;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_archivist2;
SELECT vms.approve_hold_release(:hold_day8) AS second_person;
SELECT split_part(expect_error(format('SELECT vms.release_hold(%s, ''x'')', :hold_day8)), ' at ', 1) AS already_released;
RESET SESSION AUTHORIZATION;
SELECT id = :hold_day8 AS day8, released_by, release_requested_by, release_reason FROM vms.evidence_holds
 WHERE released_at IS NOT NULL;
-- The released footage goes at the next run; the day -5 hold expires by itself.
UPDATE vms.evidence_holds SET expires_at = placed_at + interval '1 ms' WHERE id = :hold_day5;
SELECT rows_deleted, files_queued FROM vms.apply_retention();
SELECT count(*) AS arch_1_left FROM vms.segments WHERE camera_id = :a1;
SELECT audit_settle();
SELECT action, camera_id = :a1 AS arch_1, target::bigint IN (:hold_day8, :hold_day5) AS hold,
       details->>'state' AS state, outcome
  FROM vms.audit_log WHERE action IN ('place_hold', 'release_hold', 'approve_hold_release', 'hold_expired')
 ORDER BY seq;
SELECT details->'partitions_retired' IS NOT NULL AS counted, actor FROM vms.audit_log
 WHERE action = 'apply_retention' AND outcome = 'ok' ORDER BY seq LIMIT 1;
SELECT outcome, details->>'sqlstate' AS sqlstate FROM vms.audit_log
 WHERE action = 'apply_retention' AND outcome <> 'ok';

------------------------------------------------------------------------------
-- Storage reconciliation (what the recorder's check reports)
------------------------------------------------------------------------------
SELECT min(id) AS a2_seg FROM vms.segments WHERE camera_id = :a2 \gset
SET ROLE regress_rec3;
SELECT count(*) AS manifest, bool_and(state = 'recorded') AS all_recorded FROM vms.storage_manifest(:a2);
SELECT vms.storage_check_report(:a2, 2, true, '{2/stray.ts}', '{}', ARRAY[:a2_seg]::bigint[]) > 0 AS reported;
SELECT expect_error(format('SELECT vms.storage_check_report(%s, 1, true, ''{}'', ''{1}'', ''{}'')', :a2)) AS not_its_segment;
RESET ROLE;
-- Another recorder cannot report on (or clear the findings of) this camera.
SET ROLE regress_rec;
SELECT expect_error(format('SELECT vms.storage_check_report(%s, 0, false, ''{}'', ''{}'', ''{}'')', :a2)) AS other_recorder;
SELECT expect_error('SELECT vms.storage_check_report(999999, 0, false, ''{}'', ''{}'', ''{}'')') AS unknown_camera;
SET ROLE regress_rec3;
SELECT expect_error(format('SELECT vms.storage_forget_missing(%s, ARRAY[%s::bigint])', :a2, :a2_seg)) AS not_reported_missing;
RESET ROLE;
SELECT camera_name, files_checked, hashes_verified, orphans, missing, mismatched
  FROM vms.storage_report() WHERE camera_id = :a2;
SELECT audit_settle();
SELECT action, camera_id = :a2 AS arch_2 FROM vms.audit_log
 WHERE action IN ('storage_check', 'storage_hash_mismatch') ORDER BY seq;
SELECT check_name, status FROM vms.security_report() WHERE check_name LIKE 'retention%' OR check_name = 'storage_integrity';

------------------------------------------------------------------------------
-- Scheduling with pg_cron (the runs themselves: TAP 012)
------------------------------------------------------------------------------
CREATE EXTENSION pg_cron;
SET ROLE regress_manager;
SELECT job_name, schedule, command FROM vms.schedule_maintenance('17 * * * *');
RESET ROLE;
SELECT jobname, schedule, command, username, database = current_database() AS here, active
  FROM cron.job ORDER BY jobname;
SET ROLE regress_manager;
SELECT job_name, schedule FROM vms.schedule_maintenance('*/10 * * * *');
SELECT expect_error($$SELECT vms.schedule_maintenance('not a schedule')$$) AS bad_cron;
SELECT expect_error($$SELECT vms.schedule_maintenance('61 * * * *')$$) AS bad_minute;
SELECT expect_error($$SELECT vms.schedule_maintenance('')$$) AS empty_cron;
SELECT job_name, schedule, active FROM vms.maintenance_jobs();
SELECT statement FROM vms.maintenance_commands('17 * * * *') ORDER BY job_name;
SET ROLE regress_archivist;
SELECT expect_error($$SELECT vms.schedule_maintenance('17 * * * *')$$) AS archivist_schedules;
RESET ROLE;
-- Unchanged by the failures: every 10 minutes.
SELECT jobname, schedule FROM cron.job ORDER BY jobname;
-- The jobs' role can do exactly their work.
SET ROLE vms_maintenance;
SELECT vms.create_partitions() >= 0 AS maintenance_creates_partitions;
SELECT partitions_retired >= 0 AS maintenance_applies_retention FROM vms.apply_retention();
SELECT expect_error($$SELECT vms.add_camera('sneaky')$$) AS maintenance_adds_camera;
SELECT expect_error($$SELECT vms.set_retention(1, '1 day')$$) AS maintenance_sets_retention;
SELECT expect_error($$SELECT vms.place_hold(1, now() - interval '1 day', now(), 'x')$$) AS maintenance_holds;
RESET ROLE;
SET ROLE regress_manager;
SELECT vms.unschedule_maintenance() AS unscheduled;
RESET ROLE;
SELECT count(*) AS jobs_left FROM cron.job;
DROP EXTENSION pg_cron;
