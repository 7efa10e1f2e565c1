-- As 'recorder1' (vms_recorder, assigned to every camera).
SELECT c.name, vms.register_segment(c.id, now() - h * interval '1 hour', now() - h * interval '1 hour' + interval '6 s',
                                    format('%s/%s.ts', c.name, to_char(now() - h * interval '1 hour', 'YYYYMMDD"T"HH24MISS')),
                                    1500000, sha256(convert_to(c.name || h, 'UTF8')), 'h264', 1920, 1080) AS segment_id
  FROM vms.cameras c, (VALUES (1), (6)) AS v(h) ORDER BY 1, 2;
