#!/usr/bin/env bash
# make demo: a scripted walk through pg_vms on a private, throw-away cluster.
#   DEMO_KEEP=1  leave the cluster running and print how to connect
#   DEMO_PORT=N  port for the cluster (default 54329)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
port=${DEMO_PORT:-54329}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cd "$top"
say "Building and installing pg_vms and its tools"
make -s >/dev/null
make -s install >/dev/null
make -s -C tools >/dev/null

# The cluster runs as the unprivileged 'postgres' user (initdb refuses root),
# in .demo/ when that user can reach the checkout, else in a temporary directory.
dir="$top/.demo"
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$dir"
  chown postgres: "$dir"
  if ! runuser -u postgres -- test -w "$dir"; then
    rmdir "$dir" 2>/dev/null || true
    dir=$(mktemp -d /tmp/pg_vms_demo.XXXXXX)
    echo "(postgres cannot reach $top; the demo cluster lives in $dir)"
  fi
fi
if [ -f "$dir/data/postmaster.pid" ]; then
  bash scripts/pgcluster.sh stop "$dir" immediate 2>/dev/null || true
fi
rm -rf "$dir/data" "$dir/server.log" "$dir/storage" "$dir/pki" "$dir/evidence" "$dir/tampered"

say "Starting a private PostgreSQL 15 cluster in $dir (port $port, pg_vms and pg_cron preloaded)"
bash scripts/pgcluster.sh init "$dir" "$port" vms
bash scripts/pgcluster.sh start "$dir"
cleanup() {
  if [ -n "${camera_pid:-}" ]; then kill "$camera_pid" 2>/dev/null || true; fi
  if [ -z "${DEMO_KEEP:-}" ]; then
    bash scripts/pgcluster.sh stop "$dir" fast 2>/dev/null || true
  fi
}
trap cleanup EXIT

psql_su() { bash scripts/pgcluster.sh psql "$dir" -v ON_ERROR_STOP=1 "$@"; }
# Logins over TCP with SCRAM passwords; the password travels in PGPASSWORD,
# never on a command line.
psql_as() {
  local user=$1 password=$2; shift 2
  PGPASSWORD=$password /usr/lib/postgresql/15/bin/psql -X -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$port dbname=vms user=$user sslmode=disable" "$@"
}

psql_su -d postgres -q -c 'CREATE DATABASE vms'
say "The superuser installs the extension and names a system manager (not a superuser)"
psql_su -d vms -e < demo/01_install.sql

say "The system manager sets up cameras, a camera group, a role and two users"
psql_as manager 'Kestrel-Lake-71' -e -f demo/02_setup.sql

say "The recording server registers segments (one 1 hour old, one 6 hours old, per camera)"
psql_as recorder1 'Heron-Field-72' -e -f demo/03_record.sql

say "The manager stores the entrance camera's login: encrypted, readable only by its recorder"
psql_as manager 'Kestrel-Lake-71' -e -f demo/03b_credentials.sql
psql_su -d vms -e < demo/03c_ciphertext.sql
psql_as recorder1 'Heron-Field-72' -e -c "SELECT * FROM vms.camera_credential(1);"

say "A real camera: GStreamer's RTSP server with digest authentication, on 127.0.0.1"
# The camera side knows its own password (from a file, so not in `ps`).
(umask 077; printf '%s' 'Entrance-cam-pw-7' >"$dir/camera.pw")
/usr/bin/python3 test/tools/rtsp_camera.py --port 0 --auth digest --user admin \
  --password-file "$dir/camera.pw" >"$dir/camera.out" 2>"$dir/camera.log" &
camera_pid=$!
for _ in $(seq 1 100); do grep -q '^ready' "$dir/camera.out" 2>/dev/null && break; sleep 0.1; done
camera_url=$(sed -n 's/^ready \(rtsp:[^ ]*\).*/\1/p' "$dir/camera.out")
echo "  $camera_url"
psql_as manager 'Kestrel-Lake-71' -e -v camera_url="$camera_url" -f demo/03d_ingest.sql

say "vms-ingest records the entrance camera for 12 s as recorder1 (credential read from pg_vms, never on its command line)"
storage="$dir/storage"
mkdir -p "$storage"
[ "$(id -u)" -eq 0 ] && chown postgres: "$storage"
as_recorder() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
install -m 0755 tools/bin/vms-ingest "$dir/vms-ingest"   # where the recorder's user can run it
as_recorder "$dir/vms-ingest" --camera 1 --storage-root "$storage" \
  --dbname "host=$dir port=$port dbname=vms user=recorder1" --duration 12 2>&1 | sed 's/^/  /'
kill "$camera_pid" 2>/dev/null || true
psql_as manager 'Kestrel-Lake-71' -e -f demo/03e_recorded.sql
echo "  sha256sum of the files on disk (compare with the registered hashes above):"
(cd "$storage" && find 1 -name '*.ts' | sort | xargs sha256sum | sed 's/^/  /')

say "alice (lobby guard: live + 4 hours back, lobby cameras only) reads the tables"
psql_as alice 'Falcon-Creek-74' -e -f demo/04_as_user.sql
say "bob (vault watcher: live view of the vault camera only) reads the same tables"
psql_as bob 'Plover-Dune-75' -e -f demo/04_as_user.sql

say "bob tries to give himself more; pg_vms refuses and audits the attempt"
psql_as bob 'Plover-Dune-75' -e -f demo/05_attempt.sql || true

say "Someone guesses bob's password: after 3 failures bob is locked out for 30 s"
for guess in letmein password1 Bob12345; do
  psql_as bob "$guess" -c 'SELECT 1' 2>&1 | sed 's/^/  /' || true
done
echo "  ... and now bob's right password gets the same answer:"
psql_as bob 'Plover-Dune-75' -c 'SELECT 1' 2>&1 | sed 's/^/  /' || true
psql_as manager 'Kestrel-Lake-71' -e -c "SELECT kind, role, client_addr, locked_until - now() AS locked_for FROM vms.login_lockouts();"
psql_as manager 'Kestrel-Lake-71' -e -c "SELECT vms.unlock_login('bob');"
psql_as bob 'Plover-Dune-75' -At -c "SELECT 'bob is back in: ' || current_user"

say "Retention: 3 hours for every camera, except what an evidence hold keeps"
psql_su -d vms -q -c "CREATE EXTENSION pg_cron"
psql_as manager 'Kestrel-Lake-71' -e -f demo/10_retention.sql
say "The recording server removes the released files and confirms"
psql_as recorder1 'Heron-Field-72' -e -f demo/11_purge.sql

say "Evidence: a demo CA issues the export station's signing certificate (no extended key usage)"
pki="$dir/pki"
mkdir -p "$pki"
(umask 077; printf '%s' 'Export-station-pass-8' >"$pki/signer.pass")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" -out "$pki/ca.pem" \
  -days 30 -subj "/O=Demo Site/CN=Demo Evidence CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$pki/signer.key" -passout "file:$pki/signer.pass" \
  -out "$pki/signer.csr" -subj "/O=Demo Site/CN=Export station 1" 2>/dev/null
printf 'keyUsage=critical,digitalSignature,nonRepudiation\n' >"$pki/signer.ext"
openssl x509 -req -in "$pki/signer.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
  -extfile "$pki/signer.ext" -out "$pki/signer.pem" 2>/dev/null
openssl x509 -in "$pki/signer.pem" -noout -subject -issuer -enddate | sed 's/^/  /'
psql_as manager 'Kestrel-Lake-71' -e -v signer_cert="$(cat "$pki/signer.pem")" -f demo/12_export_setup.sql

say "carol exports the entrance camera's last two minutes; the privacy zone is masked in the copy"
evidence="$dir/evidence"
mkdir -p "$evidence"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$evidence" "$pki"
install -m 0755 tools/bin/vms-export "$dir/vms-export"
install -m 0755 tools/bin/vms-verify "$dir/vms-verify"
range_from=$(date -u -d '-2 minutes' '+%Y-%m-%dT%H:%M:%SZ')
range_to=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
export_as() {
  local user=$1 password=$2; shift 2
  as_recorder env PGPASSWORD="$password" "$dir/vms-export" \
    --dbname "host=127.0.0.1 port=$port dbname=vms user=$user sslmode=disable" \
    --camera 1 --from "$range_from" --to "$range_to" --profile court \
    --storage-root "$storage" --out "$evidence" --key "$pki/signer.key" --passphrase-file "$pki/signer.pass" "$@"
}
package=$(export_as carol 'Lark-Meadow-76' --reason 'incident 2026-131: parcel taken from the lobby')
echo "  $package"
ls -l "$package" | sed 's/^/  /'
echo "  bob has no export permission: vms-export is refused (exit 2) and the attempt is audited"
export_as bob 'Plover-Dune-75' --reason 'just curious' 2>&1 | sed 's/^/  /' || true

say "The receiver verifies the package: vms-verify, then the stock tools"
"$dir/vms-verify" --ca-file "$pki/ca.pem" "$package" | sed 's/^/  /'
echo "  \$ sha256sum -c SHA256SUMS"
(cd "$package" && sha256sum -c SHA256SUMS | sed 's/^/  /')
echo "  \$ openssl cms -verify -binary -inform DER -in manifest.json.p7s -content manifest.json -CAfile ca.pem"
openssl cms -verify -binary -inform DER -in "$package/manifest.json.p7s" -content "$package/manifest.json" \
  -CAfile "$pki/ca.pem" -out /dev/null 2>&1 | sed 's/^/  /'
echo "  one byte of the video changed: the verifier names it"
cp -r "$package" "$dir/tampered"
printf 'X' | dd of="$dir/tampered/video.mp4" bs=1 seek=5000 conv=notrunc status=none
"$dir/vms-verify" --ca-file "$pki/ca.pem" "$dir/tampered" 2>&1 | sed 's/^/  /' || true
psql_as manager 'Kestrel-Lake-71' -e -c "SELECT id, camera_name, requested_by, reason, state, segments, signer_subject, encode(output_sha256, 'hex') AS output_sha256 FROM vms.exports ORDER BY id;"

say "System managers need a second factor (TOTP) for administration"
psql_su -d vms -q -c "SELECT vms.set_second_factor_required('vms_system_manager', true)"
psql_as manager 'Kestrel-Lake-71' -e -f demo/08_second_factor.sql >"$dir/enrol.out" 2>&1
cat "$dir/enrol.out"
uri=$(grep '^otpauth://' "$dir/enrol.out" | tail -1)
rm -f "$dir/enrol.out"   # the secret is shown once, not kept
secret=$(printf '%s' "$uri" | sed -E 's/.*[?&]secret=([A-Z2-7]+).*/\1/')
code=$(oathtool --totp -b "$secret")
echo "  oathtool (an independent RFC 6238 implementation) gives the code $code"
psql_as manager 'Kestrel-Lake-71' -e -c "SELECT vms.totp_verify('$code') AS elevated_until;" \
  -c "SELECT vms.add_camera('loading-dock') AS camera_added;"

say "The auditor reads the audit log and verifies its hash chain"
# The worker seals entries within vms.audit_flush_interval; wait for it.
psql_su -d vms -q -At -c "DO \$\$ BEGIN FOR i IN 1..300 LOOP
    EXIT WHEN vms.audit_queue_length() = 0 AND NOT EXISTS (SELECT 1 FROM vms.audit_pending);
    PERFORM pg_sleep(0.1); END LOOP; END \$\$"
psql_as auditor 'Osprey-Ridge-73' -e -f demo/06_audit.sql
say "The auditor runs the hardening report"
psql_as auditor 'Osprey-Ridge-73' -e -f demo/09_report.sql

say "A superuser tampers with one audit entry; verification names it"
psql_su -d vms -e < demo/07_tamper.sql

if [ -n "${DEMO_KEEP:-}" ]; then
  say "The cluster keeps running"
  echo "  psql \"host=$dir port=$port dbname=vms user=postgres\"        (superuser)"
  echo "  psql \"host=127.0.0.1 port=$port dbname=vms user=alice\"      (password Falcon-Creek-74)"
  echo "  stop it with: bash scripts/pgcluster.sh stop $dir"
else
  say "Done; stopping the cluster (DEMO_KEEP=1 keeps it running)"
fi
