------------------------------------------------------------------------------
-- Scheduling with pg_cron.  The jobs run as vms_maintenance, a built-in role
-- that may run retention and create partitions and nothing else.  pg_cron
-- runs a job only as a role with LOGIN, so this role has LOGIN but no
-- password: pg_cron connects as it through a background worker
-- (cron.use_background_workers = on) or a local connection that pg_hba.conf
-- lets in (docs/retention.md).  Audit sealing is continuous (the pg_vms
-- worker), so it needs no job.
------------------------------------------------------------------------------
DO $role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'vms_maintenance') THEN
        CREATE ROLE vms_maintenance LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    GRANT vms_user TO vms_maintenance;
END
$role$;
COMMENT ON ROLE vms_maintenance IS
    'pg_vms: runs the scheduled maintenance jobs (retention, partitions); LOGIN for pg_cron, no password';
INSERT INTO vms.principals (name, kind, description, created_by)
VALUES ('vms_maintenance', 'builtin', 'Scheduled maintenance (pg_cron jobs)', 'pg_vms');

-- The jobs, as data: name, command.
CREATE FUNCTION vms._maintenance_job_list(OUT job_name text, OUT command text)
RETURNS SETOF record LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    VALUES ('pg_vms: apply retention', 'SELECT vms.apply_retention()'),
           ('pg_vms: create partitions', 'SELECT vms.create_partitions()');
$$;
COMMENT ON FUNCTION vms._maintenance_job_list() IS 'The maintenance jobs pg_vms schedules';

CREATE FUNCTION vms._maintenance_commands(cron_expression text)
RETURNS TABLE (job_name text, schedule text, command text, statement text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._require_all('manage_retention');
    PERFORM vms._check_text('cron_expression', cron_expression, 200);
    RETURN QUERY SELECT j.job_name, cron_expression, j.command,
                        pg_catalog.format('SELECT cron.schedule_in_database(%L, %L, %L, %L, %L);', j.job_name,
                                          cron_expression, j.command, pg_catalog.current_database(), 'vms_maintenance')
                   FROM vms._maintenance_job_list() j;
END
$$;
COMMENT ON FUNCTION vms._maintenance_commands(text) IS 'Body of vms.maintenance_commands(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.maintenance_commands(cron_expression text)
RETURNS TABLE (job_name text, schedule text, command text, statement text)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.maintenance_commands(text) IS
    'The statements that schedule pg_vms maintenance, to run as a superuser in pg_cron''s database when that is not this one';

-- Raises unless pg_cron is installed in this database.
CREATE FUNCTION vms._require_pg_cron()
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    cron_db text := pg_catalog.current_setting('cron.database_name', true);
BEGIN
    IF pg_catalog.to_regproc('cron.schedule_in_database') IS NOT NULL THEN
        RETURN;
    END IF;
    IF cron_db IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not loaded'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add pg_cron to shared_preload_libraries, restart, and CREATE EXTENSION pg_cron in the database named by cron.database_name.';
    ELSIF cron_db OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN
        RAISE EXCEPTION 'pg_cron runs in database "%", not in this one', cron_db
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Get the statements with vms.maintenance_commands(cron_expression) and run them there as a superuser.';
    ELSE
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'CREATE EXTENSION pg_cron; (as a superuser), then schedule again.';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_pg_cron() IS 'Raises, with what to do, unless pg_cron is installed in this database';

CREATE FUNCTION vms._schedule_maintenance(cron_expression text)
RETURNS TABLE (job_name text, jobid bigint, schedule text, command text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    j record;
BEGIN
    PERFORM vms._require_all('manage_retention');
    PERFORM vms._check_text('cron_expression', cron_expression, 200);
    PERFORM vms._require_pg_cron();
    FOR j IN SELECT * FROM vms._maintenance_job_list() LOOP
        BEGIN
            -- Upserts by (job name, user): calling again changes the schedule.
            EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4, $5)'
                INTO jobid USING j.job_name, cron_expression, j.command, pg_catalog.current_database(), 'vms_maintenance';
        EXCEPTION WHEN OTHERS THEN
            IF SQLERRM OPERATOR(pg_catalog.~*) 'schedule' THEN
                RAISE EXCEPTION 'pg_cron rejects the schedule "%": %', cron_expression, SQLERRM
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Use cron syntax: ''17 * * * *'' is minute 17 of every hour.';
            END IF;
            RAISE;
        END;
        job_name := j.job_name;
        schedule := cron_expression;
        command := j.command;
        RETURN NEXT;
    END LOOP;
    PERFORM vms._audit('schedule_maintenance', NULL, NULL,
                       pg_catalog.jsonb_build_object('schedule', cron_expression, 'run_as', 'vms_maintenance'));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('schedule_maintenance', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._schedule_maintenance(text) IS 'Body of vms.schedule_maintenance(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.schedule_maintenance(cron_expression text)
RETURNS TABLE (job_name text, jobid bigint, schedule text, command text)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.schedule_maintenance(text) IS
    'Creates or updates the pg_cron jobs (retention, partitions ahead) run as vms_maintenance (manage_retention, scope all)';

CREATE FUNCTION vms._unschedule_maintenance()
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    n integer := 0;
    id bigint;
BEGIN
    PERFORM vms._require_all('manage_retention');
    PERFORM vms._require_pg_cron();
    FOR id IN EXECUTE 'SELECT j.jobid FROM cron.job j WHERE j.username OPERATOR(pg_catalog.=) $1 '
                      'AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database() '
                      'AND j.jobname OPERATOR(pg_catalog.=) ANY ($2)'
                 USING 'vms_maintenance', ARRAY(SELECT l.job_name FROM vms._maintenance_job_list() l) LOOP
        EXECUTE 'SELECT cron.unschedule($1)' USING id;
        n := n + 1;
    END LOOP;
    PERFORM vms._audit('unschedule_maintenance', NULL, NULL, pg_catalog.jsonb_build_object('jobs', n));
    RETURN n;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('unschedule_maintenance', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._unschedule_maintenance() IS 'Body of vms.unschedule_maintenance(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.unschedule_maintenance()
RETURNS integer AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.unschedule_maintenance() IS 'Removes the pg_cron jobs of pg_vms maintenance (manage_retention, scope all)';

CREATE FUNCTION vms._maintenance_jobs()
RETURNS TABLE (job_name text, jobid bigint, schedule text, command text, active boolean,
               last_start timestamptz, last_status text, last_message text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    -- The jobs serve every camera: scope all, like scheduling them.
    PERFORM vms._require_all('manage_retention');
    PERFORM vms._require_pg_cron();
    RETURN QUERY EXECUTE
        'SELECT j.jobname::text, j.jobid, j.schedule::text, j.command::text, j.active, r.start_time, r.status::text, r.return_message::text '
        '  FROM cron.job j '
        '  LEFT JOIN LATERAL (SELECT d.start_time, d.status, d.return_message FROM cron.job_run_details d '
        '                      WHERE d.jobid OPERATOR(pg_catalog.=) j.jobid ORDER BY d.runid DESC LIMIT 1) r ON true '
        ' WHERE j.username OPERATOR(pg_catalog.=) $1 AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database() '
        ' ORDER BY j.jobname'
        USING 'vms_maintenance';
END
$$;
COMMENT ON FUNCTION vms._maintenance_jobs() IS 'Body of vms.maintenance_jobs(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.maintenance_jobs()
RETURNS TABLE (job_name text, jobid bigint, schedule text, command text, active boolean,
               last_start timestamptz, last_status text, last_message text)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.maintenance_jobs() IS 'The pg_cron jobs of pg_vms maintenance and their last run (manage_retention, scope all)';

REVOKE ALL ON FUNCTION vms._maintenance_job_list(), vms._maintenance_commands(text), vms.maintenance_commands(text),
                       vms._require_pg_cron(), vms._schedule_maintenance(text), vms.schedule_maintenance(text),
                       vms._unschedule_maintenance(), vms.unschedule_maintenance(),
                       vms._maintenance_jobs(), vms.maintenance_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vms.maintenance_commands(text), vms.schedule_maintenance(text),
                          vms.unschedule_maintenance(), vms.maintenance_jobs() TO vms_user;
-- Exactly what the jobs run (apply_retention is granted to vms_user and
-- admits vms_maintenance itself).
GRANT EXECUTE ON FUNCTION vms.create_partitions(integer, integer) TO vms_maintenance;
