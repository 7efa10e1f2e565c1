-- Plain SELECTs; row-level security decides what comes back.
SELECT id, name, location FROM vms.cameras ORDER BY id;
SELECT c.name AS camera, s.start_time::timestamp(0) AS start, now() - s.start_time > interval '4 hours' AS older_than_4h
  FROM vms.segments s JOIN vms.cameras c ON c.id = s.camera_id ORDER BY 1, 2;
SELECT vms.authorize('view_live', id) AS may_watch_live, name FROM vms.cameras ORDER BY id;
