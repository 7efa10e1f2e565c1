------------------------------------------------------------------------------
-- Hardening report: the retention checks this release fills in.  The 1.2
-- checks stay as they are, renamed vms._security_report_1_2.  The 1.2 row
-- retention_cap only said the cap was not enforced yet; a real check of
-- vms.max_retention replaces it.
------------------------------------------------------------------------------
ALTER FUNCTION vms._security_report() RENAME TO _security_report_1_2;
COMMENT ON FUNCTION vms._security_report_1_2() IS 'The checks of pg_vms 1.2, part of vms._security_report()';

CREATE FUNCTION vms._security_report(OUT check_name text, OUT status text, OUT detail text, OUT remediation text)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp
SET TimeZone = 'UTC' AS $$
DECLARE
    cap interval := vms._setting_interval('vms.max_retention');
    n bigint;
BEGIN
    -- The 1.2 checks (and their permission check) first.
    RETURN QUERY SELECT * FROM vms._security_report_1_2() r WHERE r.check_name OPERATOR(pg_catalog.<>) 'retention_cap';

    RETURN QUERY SELECT * FROM vms._check_row('retention_cap', cap OPERATOR(pg_catalog.<=) '30 days'::interval, 'warn',
        'vms.max_retention = ' || cap,
        'Recordings should be kept no longer than necessary (GDPR): lower vms.max_retention to 30 days or less unless the law of the site asks for more');
    SELECT pg_catalog.count(*) INTO n FROM vms.cameras c
     WHERE vms._expired_rows(c.id, pg_catalog.now() OPERATOR(pg_catalog.-) vms._effective_retention(c.retention)) OPERATOR(pg_catalog.>) 0;
    RETURN QUERY SELECT * FROM vms._check_row('retention_applied', n OPERATOR(pg_catalog.=) 0, 'warn',
        n || ' cameras keep recordings past their retention',
        'Run vms.apply_retention(), and schedule it: vms.schedule_maintenance(''17 * * * *'')');
    IF pg_catalog.to_regclass('cron.job') IS NULL THEN
        RETURN QUERY SELECT * FROM vms._check_row('retention_scheduled', false, 'warn',
            'pg_cron is not installed in this database; cannot see whether retention is scheduled',
            'Schedule with vms.schedule_maintenance() here, or in pg_cron''s database with the statements of vms.maintenance_commands()');
    ELSE
        EXECUTE 'SELECT pg_catalog.count(*) FROM cron.job j WHERE j.active AND j.command OPERATOR(pg_catalog.~) ''vms\.apply_retention'' '
                'AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()' INTO n;
        RETURN QUERY SELECT * FROM vms._check_row('retention_scheduled', n OPERATOR(pg_catalog.>) 0, 'warn',
            n || ' active pg_cron jobs run vms.apply_retention()',
            'vms.schedule_maintenance(''17 * * * *'')');
    END IF;
    -- The latest check of each recorder for each camera: one recorder's clean
    -- report does not clear another's finding.
    SELECT pg_catalog.count(DISTINCT k.camera_id) INTO n FROM vms.storage_checks k
     WHERE k.id OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(x.id) FROM vms.storage_checks x
                                          WHERE x.camera_id OPERATOR(pg_catalog.=) k.camera_id
                                            AND x.recorder OPERATOR(pg_catalog.=) k.recorder)
       AND pg_catalog.cardinality(k.mismatched_segment_ids) OPERATOR(pg_catalog.>) 0;
    RETURN QUERY SELECT * FROM vms._check_row('storage_integrity', n OPERATOR(pg_catalog.=) 0, 'fail',
        n || ' cameras have recordings whose file no longer matches its SHA-256 (latest storage check)',
        'Investigate: vms.storage_checks lists the segments; the audit log has a storage_hash_mismatch entry for each check');
END
$$;
COMMENT ON FUNCTION vms._security_report() IS 'Body of vms.security_report(): runs as the owner, for the caller the trampoline recorded';
REVOKE ALL ON FUNCTION vms._security_report() FROM PUBLIC;

-- Erasure destroys a data key by overwriting its row; the old row version
-- (with the wrapped key) lasts until VACUUM.  Let autovacuum come at once.
ALTER TABLE vms.data_keys SET (autovacuum_vacuum_threshold = 1, autovacuum_vacuum_scale_factor = 0);
