-- As 'manager': every camera keeps 3 hours from now on (the cap is 30 days);
-- an investigation needs the entrance footage of 6 hours ago.
SELECT vms.set_default_retention('3 hours');
SELECT vms.place_hold((SELECT id FROM vms.cameras WHERE name = 'entrance'),
                      now() - interval '7 hours', now() - interval '5 hours',
                      'incident 2026-114: tailgating at the front door', owner => 'manager') AS hold_id;
SELECT camera_name, effective_retention FROM vms.camera_retention ORDER BY camera_id;
SELECT * FROM vms.apply_retention();
SELECT camera_name, retention, complies, held_ranges IS NOT NULL AS held, held_segments, purge_pending_files
  FROM vms.retention_report() ORDER BY camera_id;
-- pg_cron runs it every hour from now on, as vms_maintenance.
SELECT job_name, schedule, command FROM vms.schedule_maintenance('17 * * * *');
