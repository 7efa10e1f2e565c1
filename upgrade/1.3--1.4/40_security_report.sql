------------------------------------------------------------------------------
-- Hardening report: the ingest checks.  The 1.3 checks stay as they are,
-- renamed vms._security_report_1_3.
------------------------------------------------------------------------------
ALTER FUNCTION vms._security_report() RENAME TO _security_report_1_3;
COMMENT ON FUNCTION vms._security_report_1_3() IS 'The checks of pg_vms 1.3, part of vms._security_report()';

CREATE FUNCTION vms._security_report(OUT check_name text, OUT status text, OUT detail text, OUT remediation text)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp
SET TimeZone = 'UTC' AS $$
DECLARE
    n bigint;
    total bigint;
BEGIN
    -- The 1.3 checks (and their permission check) first.
    RETURN QUERY SELECT * FROM vms._security_report_1_3();

    -- Recording servers connected now over TCP without TLS: their identity is
    -- not proven and segment hashes travel unprotected.
    SELECT pg_catalog.count(*) INTO n
      FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_stat_ssl l ON l.pid OPERATOR(pg_catalog.=) a.pid
     WHERE a.client_addr IS NOT NULL AND NOT l.ssl AND a.usesysid IS NOT NULL
       AND vms._role_has(a.usesysid, 'vms_recorder');
    RETURN QUERY SELECT * FROM vms._check_row('recorder_tls', n OPERATOR(pg_catalog.=) 0, 'warn',
        n || ' recording server sessions use TCP without TLS',
        'Require TLS for vms_recorder logins in pg_hba.conf: hostssl ... cert (client certificates), see docs/ingest.md');

    -- Cameras whose stream (and, with basic auth, password) crosses the network in clear.
    SELECT pg_catalog.count(*) FILTER (WHERE c.stream_url ~ '^rtsp://' AND COALESCE(i.transport, 'tcp') OPERATOR(pg_catalog.<>) 'https'),
           pg_catalog.count(*) FILTER (WHERE c.stream_url ~ '^rtsps?://')
      INTO n, total
      FROM vms.cameras c LEFT JOIN vms.ingest_settings i ON i.camera_id OPERATOR(pg_catalog.=) c.id
     WHERE c.enabled;
    RETURN QUERY SELECT * FROM vms._check_row('camera_tls', n OPERATOR(pg_catalog.=) 0, 'warn',
        n || ' of ' || total || ' RTSP cameras are recorded without TLS (digest authentication keeps their passwords off the wire, not their video)',
        'Use rtsps:// addresses or vms.set_ingest_settings(camera, transport => ''https'') with the camera''s CA in tls_ca_pem');
END
$$;
COMMENT ON FUNCTION vms._security_report() IS 'Body of vms.security_report(): runs as the owner, for the caller the trampoline recorded';
REVOKE ALL ON FUNCTION vms._security_report() FROM PUBLIC;
