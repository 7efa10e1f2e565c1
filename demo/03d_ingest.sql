-- As 'manager': point the entrance camera at the test camera and record it
-- in 4-second segments (:'camera_url' is set by demo/run.sh).
SELECT vms.update_camera(1, stream_url => :'camera_url');
SELECT vms.set_ingest_settings(1, segment_seconds => 4, transport => 'tcp');
SELECT camera_name, assigned_recorder, transport, segment_seconds, camera_tls FROM vms.ingest_overview WHERE camera_id = 1;
