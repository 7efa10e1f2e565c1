# shellcheck shell=bash disable=SC2154
# Section 6 of bench/run.sh (sourced from there: uses psql_su and $dir).
#
# One UTC day, 20 days back, of 1,000 cameras at 6-second segments (14.4
# million rows) in its partition of vms.segments, then on those same rows:
#   a. DELETE FROM vms.segments of the whole day, rolled back (the baseline);
#   b. the row-deletion path: cameras 1-500 at 10 days (their rows expired),
#      501-1000 at 30 days (kept): vms.apply_retention() deletes 7.2 million
#      rows and queues each file in vms.purge_queue; rolled back;
#   c. the partition-drop path: every camera at 10 days: vms.apply_retention()
#      retires the partition whole (committed).
# Each timed step starts after a CHECKPOINT, so it pays the full-page writes of
# a partition nobody has written since the last one.  Nothing here passes or fails; targets that are not
# met are said so.

ret_start=$SECONDS
days_ago=20
out=$(psql_su -d vms -c "
  SELECT d, d + 1, to_char(d, 'YYYYMMDD'), 'segments_p' || to_char(d, 'YYYYMMDD')
    FROM (SELECT (now() AT TIME ZONE 'UTC')::date - $days_ago AS d) x")
IFS='|' read -r day next_day dayname part <<<"$out"
from_ts="$day 00:00:00+00"
to_ts="$next_day 00:00:00+00"
cams=$(psql_su -d vms -c "SELECT count(*) FROM vms.cameras WHERE id BETWEEN 1 AND 1000")
if [ "$cams" != 1000 ]; then
  echo "retention bench: expected cameras 1-1000 (bench/setup.sql), found $cams" >&2
  exit 1
fi
# The day takes 3 GB; WAL reaches several GB between the checkpoints.
free_gb=$(df -B1G --output=avail "$dir" | tail -1 | tr -d ' ')
echo "disk: $free_gb GB free in $dir (the section needs about 15)"
if [ "$free_gb" -lt 15 ]; then
  echo "retention bench: skipped, not enough disk space" >&2
  return 0
fi

# The only server setting changed for this section: WAL may grow to 16 GB
# between checkpoints (at 1 GB: a checkpoint every 7 s while loading).
psql_su -d vms -c "ALTER SYSTEM SET max_wal_size = '16GB'" -c "SELECT pg_reload_conf()" >/dev/null

echo "generating $day: 1,000 cameras x 14,400 segments of 6 s = 14,400,000 rows into vms.$part (two sessions) ..."
t=$SECONDS
psql_su -d vms -c "SELECT vms._ensure_day_partitions('$day')" >/dev/null
# An autovacuum worker on the partition would hold a lock apply_retention
# never waits for, and it would empty the partition row by row instead of
# detaching it (README, finding 3); a partition that old was vacuumed long ago.
psql_su -d vms -c "ALTER TABLE vms.$part SET (autovacuum_enabled = off)"
ret_fill() {
  psql_su -d vms -v part="$part" -v day="$day" -v dayname="$dayname" \
    -v from_tick="$1" -v to_tick="$2" <bench/retention_day.sql
}
ret_fill 0 7200 & ret_p1=$!
ret_fill 7200 14400 & ret_p2=$!
wait $ret_p1
wait $ret_p2
gen_s=$((SECONDS - t))
echo "  loaded in $gen_s s; VACUUM (ANALYZE), as autovacuum would have done long ago ..."
t=$SECONDS
psql_su -d vms -c "VACUUM (ANALYZE) vms.$part"
echo "  vacuumed in $((SECONDS - t)) s; $(psql_su -d vms -c "SELECT format('heap %s, primary key %s',
  pg_size_pretty(pg_table_size('vms.$part')), pg_size_pretty(pg_indexes_size('vms.$part')))")"

echo "a. DELETE FROM vms.segments of the day (rolled back) ..."
out=$(psql_su -d vms <<SQL
CHECKPOINT;
BEGIN;
SELECT clock_timestamp() AS t0, pg_current_wal_insert_lsn() AS l0 \gset
DELETE FROM vms.segments WHERE start_time >= '$from_ts' AND start_time < '$to_ts';
SELECT :ROW_COUNT, round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1),
       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0'));
ROLLBACK;
SQL
)
IFS='|' read -r del_rows del_ms del_wal <<<"$out"
awk -v n="$del_rows" -v ms="$del_ms" -v w="$del_wal" 'BEGIN {
  printf "  %d rows in %.1f s: %.0f rows/s; %s of WAL\n", n, ms / 1000, n / (ms / 1000), w }'

echo "b. row path: cameras 1-500 at 10 days, 501-1000 at 30 days; vms.apply_retention() (rolled back) ..."
out=$(psql_su -d vms <<SQL
UPDATE vms.cameras SET retention = CASE WHEN id <= 500 THEN interval '10 days' ELSE interval '30 days' END
 WHERE id BETWEEN 1 AND 1000;
CHECKPOINT;
BEGIN;
SELECT clock_timestamp() AS t0, pg_current_wal_insert_lsn() AS l0 \gset
SELECT * FROM vms.apply_retention() \gset r_
SELECT :r_rows_deleted, :r_files_queued, round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1),
       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0'));
ROLLBACK;
SQL
)
IFS='|' read -r row_rows row_files row_ms row_wal <<<"$out"
awk -v n="$row_rows" -v f="$row_files" -v ms="$row_ms" -v w="$row_wal" 'BEGIN {
  printf "  %d rows deleted, %d files queued in vms.purge_queue, in %.1f s: %.0f rows/s; %s of WAL\n", n, f, ms / 1000, n / (ms / 1000), w }'
if [ "$row_rows" != 7200000 ] || [ "$row_files" != 7200000 ]; then
  echo "  NOTE: expected 7200000 rows deleted and files queued (cameras 1-500)"
fi

echo "c. drop path: every camera at 10 days; vms.apply_retention() (committed) ..."
out=$(psql_su -d vms <<SQL
UPDATE vms.cameras SET retention = interval '10 days' WHERE id BETWEEN 1 AND 1000;
CHECKPOINT;
-- Where the time goes: the functions apply_retention calls (only this session tracks them).
SET track_functions = 'all';
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM vms.apply_retention() \gset d_
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1) AS drop_ms \gset
SELECT pg_stat_force_next_flush() \g /dev/null
SELECT COALESCE(string_agg(format('%s %s ms (%s calls)', funcname, round(total_time::numeric, 1), calls), ', '
                           ORDER BY total_time DESC), 'none') AS top_funcs
  FROM (SELECT * FROM pg_stat_user_functions
         WHERE schemaname = 'vms' AND funcname NOT IN ('apply_retention', '_apply_retention')
         ORDER BY total_time DESC LIMIT 3) f \gset
-- Nothing left to do: the fixed cost of a run.
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM vms.apply_retention() \gset i_
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1) AS idle_ms \gset
SELECT :d_partitions_retired, :d_partitions_deferred, :d_rows_deleted, :drop_ms, :'top_funcs',
       to_regclass('vms.$part') IS NULL,
       EXISTS (SELECT 1 FROM vms.purge_batches WHERE table_name = 'expired_$part'), :idle_ms;
SQL
)
IFS='|' read -r drop_parts drop_deferred drop_rows drop_ms top_funcs gone batch idle_ms <<<"$out"
awk -v p="$drop_parts" -v ms="$drop_ms" 'BEGIN {
  printf "  %d partitions retired (the day of vms.segments, vms.events, vms.face_events) in %.1f ms\n", p, ms }'
echo "  vms.$part detached: $gone; listed in vms.purge_batches as expired_$part: $batch"
echo "  the functions it spent most in (nested: each includes those it calls): $top_funcs"
echo "  vms.apply_retention() again, nothing to do: $idle_ms ms"
if [ "$drop_deferred" != 0 ] || [ "$gone" != t ] || [ "$batch" != t ] || [ "$drop_rows" != 0 ]; then
  echo "  NOTE: the drop path did not retire the partition as expected (deferred $drop_deferred, rows deleted $drop_rows)"
fi

echo "cleaning up ..."
psql_su -d vms <<SQL
DROP TABLE IF EXISTS vms.expired_$part;
DELETE FROM vms.purge_batches WHERE table_name = 'expired_$part';
UPDATE vms.cameras SET retention = NULL WHERE id BETWEEN 1 AND 1000;
VACUUM vms.purge_queue;
ALTER SYSTEM RESET max_wal_size;
SELECT pg_reload_conf() \g /dev/null
SQL

echo "DELETE of the day:               $(awk -v ms="$del_ms" 'BEGIN { printf "%.2f s", ms / 1000 }') for $del_rows rows"
echo "drop path (partition retired):   $drop_ms ms  (target under 1,000 ms)"
awk -v ms="$drop_ms" 'BEGIN { if (ms >= 1000) printf "  TARGET NOT MET: the drop path took %.1f ms, not under 1 s\n", ms }'
awk -v d="$del_ms" -v ms="$drop_ms" 'BEGIN {
  r = d / ms; printf "DELETE / drop path time:         %.1f  (target at least 100)\n", r
  if (r < 100) printf "  TARGET NOT MET: the drop path is %.1fx faster than the DELETE, not 100x\n", r }'
awk -v n="$row_rows" -v ms="$row_ms" -v d="$del_ms" -v dn="$del_rows" 'BEGIN {
  printf "row path (mixed retention):      %.0f rows/s, deleting and queueing each file (plain DELETE: %.0f rows/s)\n",
         n / (ms / 1000), dn / (d / 1000) }'
echo "section time: $((SECONDS - ret_start)) s"
