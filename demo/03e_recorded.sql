-- As 'manager': what vms-ingest registered, and what it reported.
SELECT id, start_time, end_time - start_time AS length, path, bytes, encode(sha256, 'hex') AS sha256, codec, width, height
  FROM vms.segments WHERE camera_id = 1 AND path LIKE '1/%' ORDER BY start_time;
SELECT camera_name, state, detail, last_recording_end FROM vms.ingest_overview WHERE camera_id = 1;
