#!/usr/bin/env bash
# make bench: measures, on a private cluster, the figures issue by issue asks
# for, each as a ratio taken in this one run.  Nothing here passes or fails.
#   bash bench/run.sh [SECTION...]   only these sections (number or name:
#                  1 authorize, 2 range, 3 grant, 4 face, 5 connections,
#                  6 retention, 7 registration, 8 ingest, 9 export); all by default.  Also BENCH_SECTIONS="...".
#   BENCH_PORT=N   port for the cluster (default 54339)
#   BENCH_KEEP=1   leave the cluster running afterwards
#   BENCH_FSYNC=on run the cluster with fsync = on (scripts/pgcluster.sh sets off)
set -euo pipefail

sections=" ${*:-${BENCH_SECTIONS:-}} "
# want NUMBER NAME: is this section to run?
want() {
  [ -z "${sections// /}" ] && return 0
  case "$sections" in *" $1 "* | *" $2 "*) return 0 ;; esac
  return 1
}

top=$(cd "$(dirname "$0")/.." && pwd)
port=${BENCH_PORT:-54339}
cd "$top"
make -s >/dev/null
make -s install >/dev/null

dir=$(mktemp -d /tmp/pg_vms_bench.XXXXXX)
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
bash scripts/pgcluster.sh init "$dir" "$port" vms
cat >>"$dir/data/postgresql.conf" <<CONF
shared_buffers = 1GB
max_parallel_workers_per_gather = 0
jit = off
CONF
[ "${BENCH_FSYNC:-}" = on ] && echo "fsync = on" >>"$dir/data/postgresql.conf"
bash scripts/pgcluster.sh start "$dir"
if [ -z "${BENCH_KEEP:-}" ]; then
  trap 'bash scripts/pgcluster.sh stop "$dir" fast >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
else
  echo "(BENCH_KEEP: cluster stays in $dir)"
fi

psql_su() { bash scripts/pgcluster.sh psql "$dir" -v ON_ERROR_STOP=1 -q -At "$@"; }
pgbench_as() {
  local user=$1 password=$2; shift 2
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- env PGPASSWORD="$password" /usr/lib/postgresql/15/bin/pgbench \
      -h 127.0.0.1 -p "$port" -U "$user" -n "$@" vms
  else
    PGPASSWORD="$password" /usr/lib/postgresql/15/bin/pgbench -h 127.0.0.1 -p "$port" -U "$user" -n "$@" vms
  fi
}
tps() { grep -oE 'tps = [0-9.]+' | head -1 | awk '{print $3}'; }

psql_su -d postgres -c 'CREATE DATABASE vms'
# Every measured connection goes over TCP with SCRAM, the owner's included.
psql_su -d postgres -c "ALTER ROLE postgres PASSWORD 'Bench-owner-1'"
echo "== setting up: 1,000 cameras, a role holding 100 of them, 1,000,000 segments"
psql_su -d vms < bench/setup.sql >/dev/null

if want 1 authorize; then
echo
echo "== 1. vms.authorize() over 1,000,000 rows (one core, best of 5)"
psql_su -d vms < bench/authorize.sql
fi

if want 2 range; then
echo
echo "== 2. one camera's segments in a time range (30 min, 300 rows) out of 1,000,000: user under RLS vs owner"
cat >"$dir/range.sql" <<'SQL'
\set cam random(1, 100)
SELECT id, start_time, end_time, path, bytes FROM vms.segments
 WHERE camera_id = :cam AND start_time >= now() - interval '90 minutes' AND start_time < now() - interval '60 minutes';
SQL
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir/range.sql"
echo "plan for the user:"
PGPASSWORD=Bench-user-1 /usr/lib/postgresql/15/bin/psql -X -At -h 127.0.0.1 -p "$port" -U bench_user -d vms -c \
  "EXPLAIN (COSTS OFF) SELECT id FROM vms.segments WHERE camera_id = 7 AND start_time >= now() - interval '90 minutes' AND start_time < now() - interval '60 minutes'" | sed 's/^/    /'
owner_tps=$(pgbench_as postgres Bench-owner-1 -M prepared -T 10 -f "$dir/range.sql" | tps)
user_tps=$(pgbench_as bench_user Bench-user-1 -M prepared -T 10 -f "$dir/range.sql" | tps)
rows=$(psql_su -d vms -c "SELECT count(*) FROM vms.segments WHERE camera_id = 7 AND start_time >= now() - interval '90 minutes' AND start_time < now() - interval '60 minutes'")
echo "rows per query: $rows"
echo "owner (no RLS): $owner_tps queries/s"
echo "user (RLS):     $user_tps queries/s"
awk -v o="$owner_tps" -v u="$user_tps" 'BEGIN { printf "user time / owner time: %.3f  (target at most 1.3)\n", o / u }'
fi

if want 3 grant; then
echo
echo "== 3. an audited API call (vms.grant_permission by a non-superuser system manager) vs the plain INSERT"
cat >"$dir/grant_api.sql" <<'SQL'
\set cam random(101, 1000)
SELECT vms.grant_permission('bench_grants', 'view_live', camera_id => :cam);
SQL
cat >"$dir/grant_plain.sql" <<'SQL'
\set cam random(101, 1000)
INSERT INTO vms.grants (role, permission, scope, camera_id, granted_by) VALUES ('bench_grants', 'view_live', 'camera', :cam, 'bench');
SQL
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"/grant_*.sql
api_tps=$(pgbench_as bench_manager Bench-manager-1 -M prepared -T 10 -f "$dir/grant_api.sql" | tps)
plain_tps=$(pgbench_as postgres Bench-owner-1 -M prepared -T 10 -f "$dir/grant_plain.sql" | tps)
echo "audited vms.grant_permission(): $api_tps calls/s"
echo "plain INSERT into vms.grants:   $plain_tps inserts/s"
awk -v a="$api_tps" -v p="$plain_tps" 'BEGIN { printf "audited call / plain insert throughput: %.3f\n", a / p }'
psql_su -d vms -c "SELECT 'audit rows sealed so far: ' || count(*) FROM vms.audit_log"
fi

if want 4 face; then
echo
echo "== 4. face search over encrypted embeddings (100,000 persons x 512 dimensions)"
psql_su -d vms < bench/facex.sql
fi

if want 5 connections; then
echo
echo "== 5. connection rate: pgbench -C -S over loopback TCP with SCRAM, pg_vms preloaded vs not"
# The authentication hook (lockout lookup, client address check) runs on every
# login; 100 allow-list rules of other roles are in shared memory meanwhile.
psql_su -d postgres -c 'CREATE DATABASE bench'
pgbench_conn() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- env PGPASSWORD=Bench-owner-1 /usr/lib/postgresql/15/bin/pgbench \
      -h 127.0.0.1 -p "$port" -U postgres -n "$@" bench
  else
    PGPASSWORD=Bench-owner-1 /usr/lib/postgresql/15/bin/pgbench -h 127.0.0.1 -p "$port" -U postgres -n "$@" bench
  fi
}
pgbench_conn -i -q -s 1 >/dev/null 2>&1
psql_su -d vms -c "SELECT vms.create_role('bench_site_' || i) FROM generate_series(1, 100) i" >/dev/null
psql_su -d vms -c "SELECT vms.allow_client_address('bench_site_' || i, '10.' || i || '.0.0/16') FROM generate_series(1, 100) i" >/dev/null
set_preload() {
  sed -i "s/^shared_preload_libraries = .*/shared_preload_libraries = '$1'/" "$dir/data/postgresql.conf"
  bash scripts/pgcluster.sh stop "$dir" fast >/dev/null
  bash scripts/pgcluster.sh start "$dir" >/dev/null
}
declare -a with_runs=() without_runs=()
for round in 1 2 3 4 5; do
  set_preload 'pg_cron'
  without_runs+=("$(pgbench_conn -C -S -c 2 -j 2 -T 10 | tps)")
  set_preload 'pg_vms,pg_cron'
  with_runs+=("$(pgbench_conn -C -S -c 2 -j 2 -T 10 | tps)")
done
echo "without pg_vms (pg_cron only): ${without_runs[*]} connections/s"
echo "with pg_vms preloaded:         ${with_runs[*]} connections/s"
for i in 0 1 2 3 4; do
  awk -v w="${with_runs[$i]}" -v o="${without_runs[$i]}" -v r=$((i + 1)) 'BEGIN { printf "round %d with / without: %.3f\n", r, w / o }'
done
median() { printf '%s\n' "$@" | sort -g | sed -n 3p; }
awk -v w="$(median "${with_runs[@]}")" -v o="$(median "${without_runs[@]}")" \
  'BEGIN { printf "median with / without: %.3f  (target at least 0.95)\n", w / o }'
fi

if want 6 retention; then
echo
echo "== 6. retention: expiring one day of 1,000 cameras at 6-second segments (14.4 million rows)"
# shellcheck source=bench/retention.sh
. bench/retention.sh
fi

if want 7 registration; then
echo
echo "== 7. registration: vms.register_segment against a plain INSERT, 16 concurrent recorders"
# shellcheck source=bench/registration.sh
. bench/registration.sh
fi

if want 8 ingest; then
echo
echo "== 8. ingest: vms-ingest against ffmpeg -c copy, and streams per core"
# shellcheck source=bench/ingest.sh
. bench/ingest.sh
fi

if want 9 export; then
echo
echo "== 9. export: vms-export against ffmpeg concat, vms-verify against openssl dgst, masked export fps"
# shellcheck source=bench/export.sh
. bench/export.sh
fi
