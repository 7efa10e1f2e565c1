# Section 7 of bench/run.sh (sourced): segments registered through the API
# (vms.register_segment as a recording server, over TCP with SCRAM) against a
# plain INSERT of the same rows by the table owner, 16 concurrent clients,
# each its own camera, as 16 vms-ingest workers would.  Both insert into the
# same day partition of vms.segments with its keys; the API also checks the
# recorder, holds the partition, audits every registration (sealed into the
# hash chain by the background worker meanwhile) and answers repeats.
# bench_rec (setup.sql) is the recording server.
# Yesterday, 00:00 UTC, in seconds since the epoch.
reg_day=$(psql_su -d vms -c "SELECT extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') - interval '1 day')::bigint")
psql_su -d vms <<SQL >/dev/null
SELECT vms.add_camera('bench-reg-' || i) FROM generate_series(1, 16) i;
SELECT vms.assign_recorder(c.id, 'bench_rec') FROM vms.cameras c WHERE c.name LIKE 'bench-reg-%';
SQL
first_cam=$(psql_su -d vms -c "SELECT min(id) FROM vms.cameras WHERE name LIKE 'bench-reg-%'")
reg_dir=$(mktemp -d /tmp/pg_vms_bench_reg.XXXXXX)
# A random start within the day (microseconds); a repeat of a start is
# answered as a repeat by the API and skipped by ON CONFLICT in the baseline.
cat >"$reg_dir/api.sql" <<'SQL'
\set us random(0, 86000000000)
\set cam :first_cam + :client_id
SELECT vms.register_segment(:cam, pg_catalog.to_timestamp(:day + :us / 1000000.0),
       pg_catalog.to_timestamp(:day + :us / 1000000.0 + 10),
       :cam || '/' || :day || '/' || :us || '.ts', 5000000, sha256(:us::text::bytea), 'h264', 1920, 1080);
SQL
cat >"$reg_dir/insert.sql" <<'SQL'
\set us random(0, 86000000000)
\set cam :first_cam + :client_id
INSERT INTO vms.segments (camera_id, start_time, end_time, path, bytes, sha256, codec, width, height, recorder)
VALUES (:cam, pg_catalog.to_timestamp(:day + :us / 1000000.0),
        pg_catalog.to_timestamp(:day + :us / 1000000.0 + 10),
        :cam || '/' || :day || '/' || :us || '.ts', 5000000, sha256(:us::text::bytea), 'h264', 1920, 1080, 'bench_rec')
ON CONFLICT DO NOTHING;
SQL
chmod -R a+rX "$reg_dir"
declare -a api_runs=() insert_runs=()
for round in 1 2 3; do
  api_runs+=("$(pgbench_as bench_rec Bench-rec-1-Zephyr -c 16 -j 2 -T 15 -D first_cam="$first_cam" \
                  -D day="$reg_day" -f "$reg_dir/api.sql" | tps)")
  insert_runs+=("$(pgbench_as postgres Bench-owner-1 -c 16 -j 2 -T 15 -D first_cam="$first_cam" \
                  -D day="$reg_day" -f "$reg_dir/insert.sql" | tps)")
done
echo "vms.register_segment, 16 clients: ${api_runs[*]} segments/s"
echo "plain INSERT, 16 clients:         ${insert_runs[*]} rows/s"
mid() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
awk -v a="$(mid "${api_runs[@]}")" -v i="$(mid "${insert_runs[@]}")" \
  'BEGIN { printf "median: API %.0f/s, INSERT %.0f/s, INSERT / API %.2f  (target: API at least 2,000/s)\n", a, i, i / a }'
echo "audit entries sealed meanwhile: $(psql_su -d vms -c "SELECT count(*) FROM vms.audit_log WHERE action = 'register_segment'")"
rm -rf "$reg_dir"
