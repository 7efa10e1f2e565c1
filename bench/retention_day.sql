-- Section 6 (bench/retention.sh): fills the 6-second ticks [:from_tick,
-- :to_tick) of the UTC day :'day' for cameras 1-1,000, straight into the day's
-- partition (:part), in the order recorders register them: tick by tick, and
-- within a tick the 1,000 cameras in a different order each time (so a heap
-- page holds a mix of cameras, as it does when many recorders write at once).
-- Ids follow that order, as the sequence would give them.  Two sessions fill
-- the two halves of the day side by side.
SET TimeZone = 'UTC';
INSERT INTO vms.:part (id, camera_id, start_time, end_time, path, bytes, sha256, codec, width, height, recorder, registered_at)
SELECT 10000000000 + t.s * 1000 + k, cam,
       :'day'::timestamptz + t.s * interval '6 seconds',
       :'day'::timestamptz + (t.s + 1) * interval '6 seconds',
       cam || '/' || :'dayname' || '/' || t.hms || '.ts',
       -- about 3 MB (4 Mbit/s for 6 s), varying
       2900000 + (t.s * 7919 + cam * 104729) % 200000,
       -- 32 bytes, distinct per row; a real digest costs time and changes nothing here
       int8send(10000000000 + t.s * 1000 + k) || '\x5bd4a1c07e3f9260e8d1b4a7c3f05e6d12ab34cd56ef7890'::bytea,
       'h264', 1920, 1080, 'bench_rec',
       :'day'::timestamptz + (t.s + 1) * interval '6 seconds' + interval '2 seconds'
  FROM (SELECT s, to_char(s * interval '6 seconds', 'HH24MISS') AS hms
          FROM generate_series(:from_tick, :to_tick - 1) s) t,
       -- the lateral reference keeps ticks outermost (time order)
       LATERAL generate_series(1, 1000 + 0 * t.s) k,
       -- a permutation of cameras 1-1,000 per tick (7919 is prime to 1,000)
       LATERAL (SELECT 1 + ((k - 1) * 7919 + t.s * 337) % 1000 AS cam) p;
