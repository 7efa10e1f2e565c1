-- Time partitions: daily for segments and events (UTC days), monthly for the
-- audit log; made ahead by the worker, and on demand for a late segment.
\set VERBOSITY terse
SELECT vms.create_partitions(7, 1) >= 0 AS created;
SELECT vms.create_partitions(7, 1) AS created_again;
SELECT count(*) >= 9 AS enough_segment_days FROM pg_inherits WHERE inhparent = 'vms.segments'::regclass;
SELECT count(*) >= 9 AS enough_event_days FROM pg_inherits WHERE inhparent = 'vms.events'::regclass;
SELECT count(*) >= 2 AS audit_months FROM pg_inherits WHERE inhparent = 'vms.audit_log'::regclass;
-- Partition bounds are whole UTC days.
SET TIME ZONE 'UTC';
SET DateStyle = 'ISO, YMD';
SELECT bool_and(pg_get_expr(c.relpartbound, c.oid)
                ~ '^FOR VALUES FROM \(''[0-9-]+ 00:00:00\+00''\) TO \(''[0-9-]+ 00:00:00\+00''\)$')
       AS midnight_utc
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'vms.segments'::regclass;
RESET TIME ZONE;
RESET DateStyle;
-- No privileges on partitions for anyone but the owner: reading goes through
-- the parent and its row-level security.
SELECT count(*) AS partition_grants
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent IN ('vms.segments'::regclass, 'vms.events'::regclass, 'vms.audit_log'::regclass)
   AND c.relacl IS NOT NULL;

-- A recorder registering a backlog from three days ago: the missing day is created.
SELECT to_regclass('vms.segments_p' || to_char((now() AT TIME ZONE 'UTC')::date - 3, 'YYYYMMDD')) IS NULL AS day_missing;
SELECT id AS cam_entrance FROM vms.cameras WHERE name = 'entrance' \gset
SET ROLE regress_rec;
SELECT vms.register_segment(:cam_entrance,
                            now() - interval '3 days', now() - interval '3 days' + interval '6 s',
                            'entrance/backlog.ts', 500, sha256('backlog')) > 0 AS registered;
RESET ROLE;
SELECT to_regclass('vms.segments_p' || to_char((now() - interval '3 days') AT TIME ZONE 'UTC', 'YYYYMMDD')) IS NOT NULL AS day_created;
SELECT tableoid::regclass::text ~ '^vms\.segments_p[0-9]{8}$' AS stored_in_day_partition
  FROM vms.segments WHERE path = 'entrance/backlog.ts';

-- Bad arguments.
SELECT expect_error('SELECT vms.create_partitions(-1)');
SELECT expect_error('SELECT vms.create_partitions(7, NULL)');
SELECT expect_error('SELECT vms.create_partitions(1000)');
