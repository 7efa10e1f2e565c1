# Section 8 of bench/run.sh (sourced): the recording worker.
#  a) CPU per camera-minute of 1080p H.264 at about 4 Mbit/s: vms-ingest
#     (remux to MPEG-TS segments, SHA-256 while writing, fsync, rename,
#     registration) against `ffmpeg -c copy -f segment` on the same 10
#     minutes of input, both on one core, reading the file as fast as they can.
#  b) How many such streams one core keeps in real time: N workers, each
#     reading the 60 s file paced at real time (as from a camera), all pinned
#     to one core; CPU used per stream and whether every worker kept up.
ing_dir=$(mktemp -d /tmp/pg_vms_bench_ingest.XXXXXX)
chmod 0755 "$ing_dir"
(cd tools && make -s >/dev/null)
echo "making the input: 60 s of 1080p25 H.264 at 4 Mbit/s (GOP 2 s), then 10 minutes of it"
ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=25 -t 60 \
  -c:v libx264 -preset veryfast -b:v 4M -maxrate 4M -bufsize 8M -g 50 -pix_fmt yuv420p "$ing_dir/src60.mp4"
ffmpeg -hide_banner -nostdin -loglevel error -stream_loop 9 -i "$ing_dir/src60.mp4" -c copy "$ing_dir/src600.mp4"
ls -l "$ing_dir"/src*.mp4 | awk '{printf "  %s: %.1f MB\n", $NF, $5 / 1e6}'
chown -R postgres: "$ing_dir"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cpu_of() { awk '{printf "%.3f", $1 + $2}' "$1"; }    # user + sys from /usr/bin/time -f '%U %S'

# A camera per run, assigned to bench_rec, its stream a local file.
new_file_camera() {
  local name=$1 file=$2
  psql_su -d vms <<SQL
SELECT vms.add_camera('$name', 'file://$file') AS id \gset
SELECT vms.assign_recorder(:id, 'bench_rec');
SELECT vms.set_ingest_settings(:id, segment_seconds => 10);
SELECT :id;
SQL
}
worker_conn="host=$dir port=$port dbname=vms user=bench_rec"

# Process CPU hides the kernel's writeback of dirty pages: ffmpeg never
# fsyncs, so its pages are written later by kernel threads that its time does
# not count, while vms-ingest pays for its fsyncs itself.  So each run is also
# measured as busy time of the whole machine from its start to the end of a
# following `sync` (the bytes durable on disk in both cases; for vms-ingest
# this includes the PostgreSQL backend registering the segments).
busy_jiffies() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
hz=$(getconf CLK_TCK)

echo
echo "-- a) CPU for 10 minutes of video, one core (taskset -c 1), best of 3"
declare -a ff_cpu=() vi_cpu=() ff_sys=() vi_sys=() sha_cpu=()
cat "$ing_dir/src600.mp4" >/dev/null    # every round reads the input from the page cache
for round in 1 2 3; do
  rm -rf "$ing_dir/ff" && as_pg mkdir -p "$ing_dir/ff" && sync
  j0=$(busy_jiffies)
  as_pg /usr/bin/time -f '%U %S' -o "$ing_dir/ff.time" taskset -c 1 ffmpeg -hide_banner -nostdin -loglevel error \
    -i "$ing_dir/src600.mp4" -c copy -f segment -segment_time 10 -segment_format mpegts -reset_timestamps 1 \
    "$ing_dir/ff/%05d.ts"
  sync
  ff_sys+=("$(awk -v a="$j0" -v b="$(busy_jiffies)" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')")
  ff_cpu+=("$(cpu_of "$ing_dir/ff.time")")
  # The hash alone: SHA-256 (OpenSSL) over the same bytes ffmpeg wrote.
  /usr/bin/time -f '%U %S' -o "$ing_dir/sha.time" taskset -c 1 openssl dgst -sha256 "$ing_dir"/ff/*.ts >/dev/null
  sha_cpu+=("$(cpu_of "$ing_dir/sha.time")")
  cam=$(new_file_camera "bench-ingest-a$round" "$ing_dir/src600.mp4" | tail -1)
  rm -rf "$ing_dir/vi" && as_pg mkdir -p "$ing_dir/vi" && sync
  start=$(date -u -d '-20 minutes' '+%Y-%m-%dT%H:%M:%SZ')
  j0=$(busy_jiffies)
  as_pg /usr/bin/time -f '%U %S' -o "$ing_dir/vi.time" taskset -c 1 tools/bin/vms-ingest --camera "$cam" \
    --storage-root "$ing_dir/vi" --dbname "$worker_conn" --no-realtime --exit-at-eof --start-time "$start" \
    2>"$ing_dir/vi.log" || { echo "vms-ingest failed:"; tail -5 "$ing_dir/vi.log"; }
  sync
  vi_sys+=("$(awk -v a="$j0" -v b="$(busy_jiffies)" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')")
  vi_cpu+=("$(cpu_of "$ing_dir/vi.time")")
  n=$(psql_su -d vms -c "SELECT count(*) || ' segments, ' || round(extract(epoch FROM sum(end_time - start_time))) || ' s' FROM vms.segments WHERE camera_id = $cam")
  echo "  round $round: ffmpeg -c copy -f segment ${ff_cpu[-1]} CPU-s, machine ${ff_sys[-1]} s to durable ($(ls "$ing_dir/ff" | wc -l) files);" \
    "vms-ingest ${vi_cpu[-1]} CPU-s, machine ${vi_sys[-1]} s ($n registered); SHA-256 alone ${sha_cpu[-1]} CPU-s"
done
best() { printf '%s\n' "$@" | sort -g | head -1; }
awk -v v="$(best "${vi_cpu[@]}")" -v f="$(best "${ff_cpu[@]}")" -v h="$(best "${sha_cpu[@]}")" \
    -v vs="$(best "${vi_sys[@]}")" -v fs="$(best "${ff_sys[@]}")" 'BEGIN {
  printf "best: vms-ingest %.3f CPU-s = %.4f CPU-s per camera-minute; ffmpeg %.3f CPU-s = %.4f per camera-minute\n", v, v / 10, f, f / 10;
  printf "process CPU, vms-ingest / ffmpeg: %.2f  (target at most 1.10)\n", v / f;
  printf "whole machine until the bytes are durable, vms-ingest / (ffmpeg + sync): %.2f\n", vs / fs;
  printf "SHA-256 alone (openssl dgst, same bytes) %.3f CPU-s, %.0f %% of ffmpeg'"'"'s whole remux: (ffmpeg + hash) / ffmpeg = %.2f\n", h, 100 * h / f, (f + h) / f;
  printf "vms-ingest less its hashing, (vms-ingest - hash) / ffmpeg: %.2f\n", (v - h) / f }'

echo
echo "-- b) streams one core keeps in real time (60 s file paced at real time, all workers on core 1)"
for n in ${INGEST_STREAMS:-8 32}; do
  rm -rf "$ing_dir/rt" && as_pg mkdir -p "$ing_dir/rt"
  cams=()
  for i in $(seq 1 "$n"); do
    cams+=("$(new_file_camera "bench-rt-$n-$i" "$ing_dir/src60.mp4" | tail -1)")
  done
  t0=$(date +%s.%N)
  pids=()
  for c in "${cams[@]}"; do
    as_pg /usr/bin/time -f '%U %S' -o "$ing_dir/rt/$c.time" taskset -c 1 tools/bin/vms-ingest --camera "$c" \
      --storage-root "$ing_dir/rt" --dbname "$worker_conn" --exit-at-eof 2>"$ing_dir/rt/$c.log" &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  t1=$(date +%s.%N)
  cpu=$(cat "$ing_dir"/rt/*.time | awk '{s += $1 + $2} END {printf "%.2f", s}')
  ids=$(IFS=,; echo "${cams[*]}")
  recorded=$(psql_su -d vms -c "SELECT round(min(s)::numeric, 1) || ' .. ' || round(max(s)::numeric, 1) FROM (SELECT extract(epoch FROM sum(end_time - start_time)) s FROM vms.segments WHERE camera_id IN ($ids) GROUP BY camera_id) x")
  awk -v n="$n" -v cpu="$cpu" -v t0="$t0" -v t1="$t1" -v rec="$recorded" 'BEGIN {
    wall = t1 - t0; share = cpu / wall;
    printf "  %d streams: wall %.1f s for 60 s of video each, %.2f CPU-s in all (%.1f %% of the core); recorded per camera %s s\n", n, wall, cpu, 100 * share, rec;
    printf "  => %.4f of a core per stream; one core would keep about %d such streams in real time\n", share / n, n / share }'
done
chown -R postgres: "$ing_dir" 2>/dev/null || true
rm -rf "$ing_dir"
