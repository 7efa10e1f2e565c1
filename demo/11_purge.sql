-- As 'recorder1': the files retention released for each camera (vms-storage
-- purge unlinks them on the recording server, then confirms).
SELECT c.name, f.path, f.bytes FROM vms.cameras c, vms.purge_claim(c.id) f ORDER BY 1, 2;
SELECT c.name, vms.purge_confirm(c.id, ARRAY(SELECT segment_id FROM vms.purge_claim(c.id))) AS confirmed
  FROM vms.cameras c ORDER BY 1;
