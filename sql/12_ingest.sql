-- Ingest: how a camera is recorded (vms.set_ingest_settings), what the
-- recorder reads (vms.ingest_config), idempotent registration, where a
-- restarted recorder resumes, and the state it reports (vms.report_ingest).
\set VERBOSITY terse
SELECT id AS cam1 FROM vms.cameras WHERE name = 'entrance' \gset
SET ROLE regress_manager;
SELECT vms.add_camera('ingest-1', 'rtsp://127.0.0.1:8554/test') AS i1 \gset
SELECT vms.add_camera('ingest-tls', 'rtsps://127.0.0.1:8555/test') AS i2 \gset
SELECT vms.create_user('regress_ingest_rec', 'Recorder-pw-9-Zephyr');
SELECT vms.add_member('vms_recorder', 'regress_ingest_rec');
SELECT vms.assign_recorder(:i1, 'regress_ingest_rec');
SELECT vms.assign_recorder(:i2, 'regress_ingest_rec');
RESET ROLE;

------------------------------------------------------------------------------
-- Settings: managers of the camera only; bad values refused, nothing changed
------------------------------------------------------------------------------
SET ROLE regress_manager;
SELECT vms.set_ingest_settings(:i1, transport => 'udp', segment_seconds => 4);
SELECT vms.set_ingest_settings(:i1, segment_seconds => 6) AS only_the_length;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, transport => ''sctp'')', :i1)) AS bad_transport;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, segment_seconds => 0)', :i1)) AS zero_length;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, segment_seconds => 601)', :i1)) AS too_long;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, tls_ca_pem => ''not a certificate'')', :i1)) AS ca_not_pem;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, tls_ca_pem => %L)', :i1,
       E'-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n')) AS ca_with_a_key;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, tls_pin_sha256 => ''\x0102'')', :i1)) AS short_pin;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, tls_server_name => ''cam one'')', :i1)) AS bad_name;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, transport => ''udp'')', :i2)) AS rtsps_over_udp;
-- Zones are vms.privacy_zones from 1.5 (13_privacy_export); the 1.4 parameter is gone.
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, privacy_zones => ''[]'')', :i1)) AS no_zone_parameter;
SELECT expect_error(format('SELECT vms.add_privacy_zone(%s, ''z'', %L, %L)', :i1, z.points, z.fill)) AS bad_zones
  FROM (VALUES ('{}', 'black'), ('[[0,0],[1,0]]', 'black'), ('[[0,0],[1,0],[1,1.5]]', 'black'),
               ('[[0,0],[1,0],[1,1]]', 'pink'), ('[[0,0],[1,0],["a",1]]', 'blur')) z(points, fill);
SELECT expect_error('SELECT vms.set_ingest_settings(999999, segment_seconds => 5)') AS unknown_camera;
RESET ROLE;
SELECT camera_id = :i1 AS i1, transport, segment_seconds, tls_ca_pem IS NULL AS no_ca, burn_in_privacy
  FROM vms.ingest_settings ORDER BY camera_id;
SELECT count(*) AS zones FROM vms.privacy_zones WHERE camera_id = :i1;
-- A viewer may not change how a camera is recorded, nor see its settings.
SET ROLE regress_viewer;
SELECT expect_error(format('SELECT vms.set_ingest_settings(%s, segment_seconds => 2)', :i1)) AS viewer_refused;
SELECT count(*) AS settings_seen_by_viewer FROM vms.ingest_settings;
RESET ROLE;

-- TLS trust, a pin and permanent zones; an empty value clears a setting.
SET ROLE regress_manager;
SELECT vms.set_ingest_settings(:i2, tls_ca_pem => E'-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
       tls_pin_sha256 => sha256('camera key'::bytea), tls_server_name => 'cam2.example.org',
       burn_in_privacy => true);
SELECT vms.add_privacy_zone(:i2, 'door', '[[0.1,0.1],[0.4,0.1],[0.4,0.3],[0.1,0.3]]', 'black', burn_in => true) > 0 AS zone_1;
SELECT vms.add_privacy_zone(:i2, 'window', '[[0.6,0.6],[0.9,0.6],[0.75,0.9]]', 'blur', burn_in => true) > 0 AS zone_2;
-- Only permanent burn_in zones are burned in: not this liftable one, nor a permanent one without burn_in.
SELECT vms.add_privacy_zone(:i2, 'desk', '[[0.5,0.1],[0.6,0.1],[0.6,0.2]]', 'black', liftable => true) > 0 AS zone_3;
SELECT vms.add_privacy_zone(:i2, 'sign', '[[0.7,0.1],[0.8,0.1],[0.8,0.2]]', 'blur') > 0 AS zone_4;
SELECT vms.set_ingest_settings(:i2, tls_server_name => '') AS cleared_name;
RESET ROLE;
SELECT transport, tls_ca_pem IS NOT NULL AS ca, encode(tls_pin_sha256, 'hex') = encode(sha256('camera key'::bytea), 'hex') AS pinned,
       tls_server_name, (SELECT count(*) FROM vms.privacy_zones z WHERE z.camera_id = :i2) AS zones
  FROM vms.ingest_settings WHERE camera_id = :i2;
SELECT audit_settle();
SELECT action, outcome, details - 'tls_pin_sha256' AS details FROM vms.audit_log
 WHERE action = 'set_ingest_settings' AND camera_id = :i2 AND outcome = 'ok' ORDER BY seq;
SELECT outcome, details->>'sqlstate' AS sqlstate, count(*) FROM vms.audit_log
 WHERE action = 'set_ingest_settings' AND outcome <> 'ok' GROUP BY 1, 2 ORDER BY 1, 2;

------------------------------------------------------------------------------
-- What the recorder reads: its own cameras only; zones only when burned in
------------------------------------------------------------------------------
SET ROLE regress_ingest_rec;
SELECT camera_name, stream_url, enabled, transport, segment_seconds, tls_ca_pem IS NULL AS no_ca,
       burn_in_privacy, privacy_zones FROM vms.ingest_config(:i1);
SELECT camera_name, transport, tls_ca_pem IS NOT NULL AS ca, length(tls_pin_sha256) AS pin_bytes, tls_server_name,
       burn_in_privacy, jsonb_array_length(privacy_zones) AS zones FROM vms.ingest_config(:i2);
-- The flat form the worker reads the zones in (no JSON parsing in C).
SELECT z.n AS zone, z.zone->>'fill' AS fill, p.n AS point, (p.pt->>0)::float8 AS x, (p.pt->>1)::float8 AS y
  FROM vms.ingest_config(:i2) c, jsonb_array_elements(c.privacy_zones) WITH ORDINALITY z(zone, n),
       jsonb_array_elements(z.zone->'points') WITH ORDINALITY p(pt, n) ORDER BY 1, 3;
SELECT expect_error(format('SELECT * FROM vms.ingest_config(%s)', :cam1)) AS not_assigned;
SELECT expect_error('SELECT * FROM vms.ingest_config(999999)') AS unknown_camera;
RESET ROLE;
SET ROLE regress_rec;
SELECT expect_error(format('SELECT * FROM vms.ingest_config(%s)', :i1)) AS other_recorder;
RESET ROLE;
SET ROLE regress_viewer;
SELECT expect_error(format('SELECT * FROM vms.ingest_config(%s)', :i1)) AS viewer;
RESET ROLE;
-- Burn-in off: the zones stay in the settings but are not handed out.
SET ROLE regress_manager;
SELECT vms.set_ingest_settings(:i2, burn_in_privacy => false);
RESET ROLE;
SET ROLE regress_ingest_rec;
SELECT burn_in_privacy, privacy_zones FROM vms.ingest_config(:i2);
RESET ROLE;

------------------------------------------------------------------------------
-- Registration is idempotent; another file at the same start is refused
------------------------------------------------------------------------------
SET ROLE regress_ingest_rec;
SELECT vms.ingest_resume_point(:i1) IS NULL AS nothing_registered_yet;
SELECT vms.register_segment(:i1, '2026-01-05 10:00:00+00', '2026-01-05 10:00:04.04+00',
       :i1 || '/2026-01-05/20260105T100000.000Z_4040.ts', 1500000, sha256('seg a'::bytea), 'h264', 1280, 720) AS seg_a \gset
SELECT vms.register_segment(:i1, '2026-01-05 10:00:00+00', '2026-01-05 10:00:04.04+00',
       :i1 || '/2026-01-05/20260105T100000.000Z_4040.ts', 1500000, sha256('seg a'::bytea), 'h264', 1280, 720) = :seg_a AS repeat_returns_same_id;
SELECT expect_error(format($$SELECT vms.register_segment(%s, '2026-01-05 10:00:00+00', '2026-01-05 10:00:04.04+00',
       '%s/2026-01-05/other.ts', 1500000, sha256('seg a'::bytea))$$, :i1, :i1)) AS other_path;
SELECT expect_error(format($$SELECT vms.register_segment(%s, '2026-01-05 10:00:00+00', '2026-01-05 10:00:04.04+00',
       '%s/2026-01-05/20260105T100000.000Z_4040.ts', 1500000, sha256('tampered'::bytea))$$, :i1, :i1)) AS other_hash;
SELECT expect_error(format($$SELECT vms.register_segment(%s, '2026-01-05 10:00:00+00', '2026-01-05 10:00:05+00',
       '%s/2026-01-05/20260105T100000.000Z_4040.ts', 1500000, sha256('seg a'::bytea))$$, :i1, :i1)) AS other_end;
SELECT vms.register_segment(:i1, '2026-01-05 10:00:04.04+00', '2026-01-05 10:00:08.08+00',
       :i1 || '/2026-01-05/20260105T100004.040Z_4040.ts', 1400000, sha256('seg b'::bytea), 'h264', 1280, 720) > :seg_a AS next_one;
SELECT vms.ingest_resume_point(:i1) AS resume_at;
SELECT expect_error(format('SELECT vms.ingest_resume_point(%s)', :cam1)) AS resume_not_assigned;
RESET ROLE;
-- One row per segment, and one audit entry per registration that made one.
SELECT count(*) AS rows FROM vms.segments WHERE camera_id = :i1;
SELECT audit_settle();
SELECT outcome, count(*) FROM vms.audit_log WHERE action = 'register_segment' AND camera_id = :i1 GROUP BY 1 ORDER BY 1;

------------------------------------------------------------------------------
-- State reports: stored per camera, audited on change only, no credentials
------------------------------------------------------------------------------
SET ROLE regress_ingest_rec;
SELECT vms.report_ingest(:i1, 'recording');
SELECT vms.report_ingest(:i1, 'auth_failed', 'camera refused the credentials (401 Unauthorized)');
SELECT vms.report_ingest(:i1, 'auth_failed', 'camera refused the credentials (401 Unauthorized)') AS repeated;
SELECT expect_error(format('SELECT vms.report_ingest(%s, ''sleeping'')', :i1)) AS bad_state;
SELECT expect_error(format('SELECT vms.report_ingest(%s, ''stream_error'', ''rtsp://cam:hunter2@10.0.0.5/x failed'')', :i1)) AS credentials_in_detail;
SELECT expect_error(format('SELECT vms.report_ingest(%s, ''recording'')', :cam1)) AS not_assigned;
RESET ROLE;
SET ROLE regress_viewer;
SELECT expect_error(format('SELECT vms.report_ingest(%s, ''recording'')', :i1)) AS viewer;
RESET ROLE;
SELECT audit_settle();
SELECT action, outcome, details->>'detail' AS detail, details->>'previous' AS previous FROM vms.audit_log
 WHERE action LIKE 'ingest\_%' AND camera_id = :i1 ORDER BY seq;
SELECT count(*) AS refused_reports FROM vms.audit_log WHERE action = 'report_ingest' AND outcome <> 'ok';
SELECT count(*) AS credential_in_audit FROM vms.audit_log WHERE details::text LIKE '%hunter2%';
SET ROLE regress_manager;
SELECT camera_name, assigned_recorder, reporting_recorder, state, detail, last_recording_end, segment_seconds,
       transport, camera_tls, burn_in_privacy
  FROM vms.ingest_overview WHERE camera_id IN (:i1, :i2) ORDER BY camera_id;
RESET ROLE;
-- A viewer of a camera sees nothing of cameras outside its grants.
SET ROLE regress_viewer;
SELECT count(*) AS overview_rows_for_viewer FROM vms.ingest_overview WHERE camera_id IN (:i1, :i2);
RESET ROLE;

------------------------------------------------------------------------------
-- The hardening report's ingest rows
------------------------------------------------------------------------------
SELECT check_name, status, detail FROM vms.security_report() WHERE check_name IN ('recorder_tls', 'camera_tls');
