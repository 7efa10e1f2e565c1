#!/usr/bin/env bash
# A private, throw-away PostgreSQL 15 cluster for the demo, tests and benchmarks.
#
#   pgcluster.sh init  DIR PORT [DBNAME]   initdb + config (pg_vms and pg_cron preloaded)
#   pgcluster.sh start DIR                 start (waits until ready)
#   pgcluster.sh stop  DIR [MODE]          stop (MODE: fast, smart or immediate)
#   pgcluster.sh psql  DIR [ARGS...]       psql as the superuser over the Unix socket
#
# initdb refuses to run as root, so as root every server command runs as the
# unprivileged 'postgres' user, which owns DIR.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pgcluster.sh init|start|stop|psql DIR ...}
dir=${2:?cluster directory}
shift 2

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  init)
    port=${1:?port}
    db=${2:-vms}
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    # A master key (version 1) beside the data directory, mode 0600.
    mkdir -p "$dir/keys"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/keys/master-1.key"
    chmod 0700 "$dir/keys"
    chmod 0600 "$dir/keys/master-1.key"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir/keys"
    cat >>"$dir/data/postgresql.conf" <<CONF
# pg_vms private cluster
vms.key_file = '$dir/keys/master-%v.key'
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_vms,pg_cron'
vms.database_name = '$db'
cron.database_name = '$db'
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %u@%d '
fsync = off
CONF
    echo "$port" >"$dir/port"
    echo "$db" >"$dir/dbname"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/port" "$dir/dbname"
    ;;
  start)
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
    ;;
  stop)
    mode=${1:-fast}
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
    ;;
  psql)
    as_owner "$PGBIN/psql" -X -h "$dir" -p "$(cat "$dir/port")" -U postgres "$@"
    ;;
  *)
    echo "pgcluster.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
