# Section 9 of bench/run.sh (sourced): evidence export and verification.
#  a) Unmasked export of 10 minutes of 1080p (60 segments of 10 s recorded by
#     vms-ingest) against `ffmpeg -f concat -safe 0 -c copy` over the same
#     segments; wall time, best of 3 and the median, each run after a
#     `sync` so that neither pays for the other's writeback.  vms-export also re-hashes every
#     segment, writes the manifest, signs it and records the export.
#  b) vms-verify against `openssl dgst -sha256` over the same video.mp4:
#     speed (bytes per second), best of 3.
#  c) Masked export (one black polygon, one blurred rectangle, libx264) of
#     60 s against the ffmpeg CLI with the same filter and encoder settings:
#     frames per second, best of 2.
exp_dir=$(mktemp -d /tmp/pg_vms_bench_export.XXXXXX)
chmod 0755 "$exp_dir"
(cd tools && make -s >/dev/null)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
best() { printf '%s\n' "$@" | sort -g | head -1; }

echo "making the input: 10 minutes of 1080p25 H.264 at 4 Mbit/s, recorded by vms-ingest as 10 s segments"
ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=25 -t 60 \
  -c:v libx264 -preset veryfast -b:v 4M -maxrate 4M -bufsize 8M -g 50 -pix_fmt yuv420p "$exp_dir/src60.mp4"
ffmpeg -hide_banner -nostdin -loglevel error -stream_loop 9 -i "$exp_dir/src60.mp4" -c copy "$exp_dir/src600.mp4"
mkdir -p "$exp_dir/store" "$exp_dir/out"
chown -R postgres: "$exp_dir"
cam=$(psql_su -d vms <<SQL | tail -1
SELECT vms.add_camera('bench-export', 'file://$exp_dir/src600.mp4') AS id \gset
SELECT vms.assign_recorder(:id, 'bench_rec');
SELECT vms.set_ingest_settings(:id, segment_seconds => 10);
SELECT :id;
SQL
)
rec_start=$(date -u -d '-30 minutes' '+%Y-%m-%dT%H:%M:%SZ')
as_pg tools/bin/vms-ingest --camera "$cam" --storage-root "$exp_dir/store" \
  --dbname "host=$dir port=$port dbname=vms user=bench_rec" --no-realtime --exit-at-eof --start-time "$rec_start" \
  2>"$exp_dir/ingest.log" || { echo "vms-ingest failed:"; tail -5 "$exp_dir/ingest.log"; }

# The signer: a test CA and a certificate without extended key usage (what
# `openssl cms -verify` accepts), P-256 as docs/export.md recommends.
pki=$exp_dir/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" -out "$pki/ca.pem" \
  -days 30 -subj "/CN=Bench Evidence CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/signer.key" -out "$pki/signer.csr" \
  -subj "/CN=Bench Export Station" 2>/dev/null
printf 'keyUsage=critical,digitalSignature,nonRepudiation\n' >"$pki/signer.ext"
openssl x509 -req -in "$pki/signer.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
  -extfile "$pki/signer.ext" -out "$pki/signer.pem" 2>/dev/null
chown -R postgres: "$pki"
psql_su -d vms -v cert="$(cat "$pki/signer.pem")" <<SQL >/dev/null
SELECT vms.set_export_profile('bench', :'cert', key_needs_passphrase => false);
SELECT vms.create_role('bench_exporters');
SELECT vms.grant_permission('bench_exporters', p, camera_id => $cam)
  FROM unnest(ARRAY['view_recorded', 'export']) p;
SELECT vms.create_user('bench_exporter', 'Bench-exporter-1');
SELECT vms.add_member('bench_exporters', 'bench_exporter');
SQL
read -r from_t to_t < <(psql_su -d vms -c "SELECT to_char(min(start_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
  to_char(max(end_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM vms.segments WHERE camera_id = $cam" | tr '|' ' ')
nseg=$(psql_su -d vms -c "SELECT count(*) FROM vms.segments WHERE camera_id = $cam")
echo "  $nseg segments, $from_t .. $to_t"
export_as() {
  as_pg env PGPASSWORD=Bench-exporter-1 tools/bin/vms-export --dbname "host=127.0.0.1 port=$port dbname=vms user=bench_exporter" \
    --camera "$cam" --reason "bench" --profile bench --storage-root "$exp_dir/store" --key "$pki/signer.key" \
    --quiet "$@"
}

echo
echo "-- a) unmasked export of 10 minutes against ffmpeg -f concat -c copy (wall time, best of 3)"
psql_su -d vms -c "SELECT 'file ''' || '$exp_dir/store/' || path || '''' FROM vms.segments WHERE camera_id = $cam ORDER BY start_time" \
  >"$exp_dir/concat.txt"
declare -a ff_t=() ex_t=()
for round in 1 2 3; do
  rm -f "$exp_dir/concat.mp4"
  # Each program starts with no dirty pages of the other's output to write back
  # (ffmpeg does not fsync its output; vms-export does, and would pay for both).
  sync
  t0=$(now)
  as_pg ffmpeg -hide_banner -nostdin -loglevel error -f concat -safe 0 -i "$exp_dir/concat.txt" -c copy "$exp_dir/concat.mp4"
  ff_t+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')")
  rm -rf "$exp_dir/out" && as_pg mkdir -p "$exp_dir/out"
  sync
  t0=$(now)
  export_as --from "$from_t" --to "$to_t" --out "$exp_dir/out" >"$exp_dir/export.log" 2>&1 ||
    { echo "vms-export failed:"; tail -5 "$exp_dir/export.log"; }
  ex_t+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')")
  echo "  round $round: ffmpeg concat ${ff_t[-1]} s; vms-export ${ex_t[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
awk -v e="$(best "${ex_t[@]}")" -v f="$(best "${ff_t[@]}")" 'BEGIN {
  printf "best: vms-export %.3f s, ffmpeg -f concat -c copy %.3f s; vms-export / ffmpeg: %.2f  (target at most 1.20)\n", e, f, e / f }'
awk -v e="$(median "${ex_t[@]}")" -v f="$(median "${ff_t[@]}")" 'BEGIN {
  printf "median: vms-export %.3f s, ffmpeg -f concat -c copy %.3f s; vms-export / ffmpeg: %.2f\n", e, f, e / f }'

echo
echo "-- b) vms-verify against openssl dgst -sha256 over the same video.mp4 (best of 3)"
pkg=$(ls -d "$exp_dir"/out/export-* | head -1)
bytes=$(stat -c %s "$pkg/video.mp4")
declare -a vf_t=() dg_t=()
for round in 1 2 3; do
  t0=$(now)
  openssl dgst -sha256 "$pkg/video.mp4" >/dev/null
  dg_t+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')")
  t0=$(now)
  tools/bin/vms-verify --quiet --ca-file "$pki/ca.pem" "$pkg" >"$exp_dir/verify.log" 2>&1 ||
    { echo "vms-verify failed:"; tail -3 "$exp_dir/verify.log"; }
  vf_t+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')")
  echo "  round $round: openssl dgst ${dg_t[-1]} s; vms-verify ${vf_t[-1]} s"
done
awk -v v="$(best "${vf_t[@]}")" -v d="$(best "${dg_t[@]}")" -v n="$bytes" 'BEGIN {
  printf "best: vms-verify %.0f MB/s, openssl dgst %.0f MB/s over %.1f MB; speed vms-verify / openssl: %.2f  (target at least 0.80)\n",
    n / v / 1e6, n / d / 1e6, n / 1e6, d / v }'

echo
echo "-- c) masked export of 60 s: frames per second against the ffmpeg CLI, same filter and encoder (best of 2)"
one_min_to=$(psql_su -d vms -c "SELECT to_char((min(start_time) + interval '60 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM vms.segments WHERE camera_id = $cam")
psql_su -d vms <<SQL >/dev/null
SELECT vms.add_privacy_zone($cam, 'bench window', '[[0.3,0.25],[0.55,0.25],[0.55,0.6],[0.3,0.6]]', 'black');
SELECT vms.add_privacy_zone($cam, 'bench door', '[[0.6,0.3],[0.85,0.3],[0.85,0.7],[0.6,0.7]]', 'blur');
SQL
frames=1500
# What tools/vms-export/masked.c and tools/media/burnin.c set: preset veryfast,
# CRF 20 (segments from vms-ingest carry no bit rate), no B-frames, no
# scene-cut keyframes, an IDR every 2 s.
EXPORT_X264_ARGS="-c:v libx264 -preset veryfast -crf 20 -bf 0 -sc_threshold 0 -g 120 -force_key_frames expr:gte(t,n_forced*2) -pix_fmt yuv420p"
declare -a mx_t=() mf_t=()
for round in 1 2; do
  rm -rf "$exp_dir/out" && as_pg mkdir -p "$exp_dir/out"
  t0=$(now)
  export_as --from "$from_t" --to "$one_min_to" --out "$exp_dir/out" >"$exp_dir/export.log" 2>&1 ||
    { echo "vms-export failed:"; tail -5 "$exp_dir/export.log"; }
  mx_t+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')")
  # The same work for the CLI: black box and pixelated box at the same places,
  # libx264 with the settings docs/export.md gives for masked exports.
  t0=$(now)
  # Decoder and encoder threads automatic, the filter graph on one thread, as in vms-export.
  as_pg ffmpeg -hide_banner -nostdin -loglevel error -y -t 60 -i "$exp_dir/src600.mp4" \
    -filter_threads 1 -filter_complex_threads 1 \
    -filter_complex "[0:v]split[a][b];[b]crop=w=iw*0.25:h=ih*0.4:x=iw*0.6:y=ih*0.3,scale=w=iw/36:h=ih/36:flags=area,scale=w=iw*36:h=ih*36:flags=bilinear[p];[a][p]overlay=W*0.6:H*0.3,drawbox=x=iw*0.3:y=ih*0.25:w=iw*0.25:h=ih*0.35:color=black:t=fill[v]" \
    -map "[v]" $EXPORT_X264_ARGS "$exp_dir/cli_masked.mp4"
  mf_t+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')")
  echo "  round $round: vms-export ${mx_t[-1]} s; ffmpeg CLI ${mf_t[-1]} s ($frames frames each)"
done
awk -v e="$(best "${mx_t[@]}")" -v f="$(best "${mf_t[@]}")" -v n="$frames" 'BEGIN {
  printf "best: vms-export %.1f fps, ffmpeg CLI %.1f fps; vms-export / ffmpeg: %.2f  (target at least 1.00)\n", n / e, n / f, f / e }'

if [ -n "${BENCH_KEEP:-}" ]; then
  echo "(BENCH_KEEP: the export bench's files stay in $exp_dir)"
else
  rm -rf "$exp_dir"
fi
