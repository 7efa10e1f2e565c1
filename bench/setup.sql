CREATE EXTENSION pg_vms CASCADE;
-- No TOTP prompt for the scripted system manager here (docs/authentication.md).
SELECT vms.set_second_factor_required('vms_system_manager', false);
-- Bench data: 1,000 cameras in 10 groups; bench_user holds view_recorded
-- (1 day back) and view_live on cameras 1-100; 1,000 segments of 6 s per
-- camera over the last 100 minutes (1,000,000 rows).
SELECT vms.create_partitions(1, 1);
SELECT vms.add_camera_group('group_' || g) FROM generate_series(1, 10) g;
SELECT vms.add_camera('cam_' || i, camera_group => 'group_' || (1 + i % 10)) FROM generate_series(1, 1000) i;
SELECT vms.create_role('bench_viewers');
SELECT vms.grant_permission('bench_viewers', p, camera_id => i, recorded_window => '1 day')
  FROM generate_series(1, 100) i, unnest(ARRAY['view_live', 'view_recorded']) p;
SELECT vms.create_user('bench_user', 'Bench-user-1');
SELECT vms.add_member('bench_viewers', 'bench_user');
SELECT vms.create_role('bench_grants');
SELECT vms.create_user('bench_manager', 'Bench-manager-1');
SELECT vms.add_member('vms_system_manager', 'bench_manager');
SELECT vms.create_user('bench_rec', 'Bench-rec-1-Zephyr');
SELECT vms.add_member('vms_recorder', 'bench_rec');

-- The index is filled directly by the owner: this measures reading, not registration.
INSERT INTO vms.segments (camera_id, start_time, end_time, path, bytes, sha256, codec, width, height, recorder)
SELECT c, now() - interval '100 minutes' + s * interval '6 seconds',
       now() - interval '100 minutes' + (s + 1) * interval '6 seconds',
       format('cam_%s/%s.ts', c, s), 3000000, sha256(int4send(c) || int4send(s)), 'h264', 1920, 1080, 'bench_rec'
  FROM generate_series(1, 1000) c, generate_series(0, 999) s;
ANALYZE vms.segments;

-- 1,000,000 (camera, time) pairs for the decision benchmark.
CREATE UNLOGGED TABLE public.bench_decisions AS
SELECT 1 + (i % 200) AS camera_id, now() - (i % 7200) * interval '1 second' * 20 AS at
  FROM generate_series(1, 1000000) i;
ANALYZE public.bench_decisions;
GRANT SELECT ON public.bench_decisions TO bench_user;
GRANT EXECUTE ON FUNCTION vms._noop_authorize(text, integer, timestamptz) TO bench_user;

-- Best-of-N wall time of one statement, in milliseconds.
CREATE FUNCTION public.best_ms(stmt text, runs integer DEFAULT 5) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    best numeric;
    ms numeric;
BEGIN
    FOR i IN 1 .. runs LOOP
        t0 := clock_timestamp();
        EXECUTE stmt;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        best := LEAST(best, ms);
        IF best IS NULL THEN best := ms; END IF;
    END LOOP;
    RETURN round(best, 1);
END
$$;
GRANT EXECUTE ON FUNCTION public.best_ms(text, integer) TO bench_user;
