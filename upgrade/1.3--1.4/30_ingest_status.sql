------------------------------------------------------------------------------
-- What each camera's recorder is doing: the state its vms-ingest last
-- reported, kept per camera, and audited on every change (a worker retrying
-- a refused login every minute changes nothing and writes nothing new).
------------------------------------------------------------------------------
CREATE TABLE vms.ingest_status (
    camera_id   integer PRIMARY KEY REFERENCES vms.cameras (id) ON DELETE CASCADE,
    recorder    text NOT NULL,
    state       text NOT NULL CHECK (state IN ('recording', 'reconnecting', 'auth_failed', 'tls_failed',
                                                'stream_error', 'backlog', 'stopped')),
    detail      text,
    since       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reported_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE vms.ingest_status IS
    'The state each camera''s vms-ingest last reported (vms.report_ingest); see vms.ingest_overview';
COMMENT ON COLUMN vms.ingest_status.since IS 'When the camera entered this state';
ALTER TABLE vms.ingest_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.ingest_status FORCE ROW LEVEL SECURITY;
CREATE POLICY viewers ON vms.ingest_status FOR SELECT
    USING (vms.authorize('manage_cameras', camera_id) OR vms.authorize('view_metadata', camera_id));
SELECT pg_catalog.pg_extension_config_dump('vms.ingest_status', '');

CREATE FUNCTION vms._report_ingest(camera_id integer, state text, detail text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    old vms.ingest_status;
    me text := vms._invoker_name();
BEGIN
    PERFORM vms._require_recorder(camera_id);
    IF state IS NULL OR state NOT IN ('recording', 'reconnecting', 'auth_failed', 'tls_failed',
                                      'stream_error', 'backlog', 'stopped') THEN
        RAISE EXCEPTION 'state must be recording, reconnecting, auth_failed, tls_failed, stream_error, backlog or stopped'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM vms._check_optional_text('detail', detail, 1000);
    -- A detail that looks like it carries a credential is refused: the worker
    -- redacts them, and this keeps a mistake out of the audit log.
    IF detail ~ '[a-z][a-z0-9+.-]*://[^/@[:space:]]*@' THEN
        RAISE EXCEPTION 'detail must not contain an address with credentials' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO old FROM vms.ingest_status s WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id FOR UPDATE;
    IF FOUND AND old.state OPERATOR(pg_catalog.=) state AND old.recorder OPERATOR(pg_catalog.=) me
       AND old.detail IS NOT DISTINCT FROM detail THEN
        UPDATE vms.ingest_status s SET reported_at = pg_catalog.now() WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id;
        RETURN;
    END IF;
    INSERT INTO vms.ingest_status AS s (camera_id, recorder, state, detail)
    VALUES (camera_id, me, state, detail)
    ON CONFLICT ON CONSTRAINT ingest_status_pkey DO UPDATE
       SET recorder = EXCLUDED.recorder, state = EXCLUDED.state, detail = EXCLUDED.detail,
           since = CASE WHEN s.state OPERATOR(pg_catalog.=) EXCLUDED.state THEN s.since ELSE pg_catalog.now() END,
           reported_at = pg_catalog.now();
    -- A failure is audited as an error entry; the report itself succeeded.
    IF state IN ('auth_failed', 'tls_failed', 'stream_error') THEN
        PERFORM vms._audit_enqueue('ingest_' || state, 'error', camera_id, me,
                                   pg_catalog.jsonb_build_object('detail', detail, 'previous', old.state));
    ELSE
        PERFORM vms._audit('ingest_' || state, camera_id, me,
                           pg_catalog.jsonb_build_object('detail', detail, 'previous', old.state));
    END IF;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('report_ingest', camera_id, state, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._report_ingest(integer, text, text) IS 'Body of vms.report_ingest(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.report_ingest(camera_id integer, state text, detail text DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.report_ingest(integer, text, text) IS
    'vms-ingest reports its camera''s state (the camera''s assigned vms_recorder only); each change is audited, failures as errors';

-- One row per camera for the console: what is recording, what is not, and
-- the newest recording indexed.  Rows follow the reader's permissions.
CREATE VIEW vms.ingest_overview WITH (security_invoker = true) AS
SELECT c.id AS camera_id, c.name AS camera_name, c.enabled, c.recorder AS assigned_recorder,
       s.recorder AS reporting_recorder, COALESCE(s.state, 'unknown') AS state, s.detail, s.since, s.reported_at,
       (SELECT pg_catalog.max(g.end_time) FROM vms.segments g WHERE g.camera_id OPERATOR(pg_catalog.=) c.id) AS last_recording_end,
       COALESCE(i.segment_seconds, 10) AS segment_seconds, COALESCE(i.transport, 'tcp') AS transport,
       c.stream_url ~ '^rtsps://' OR i.transport OPERATOR(pg_catalog.=) 'https' AS camera_tls,
       COALESCE(i.burn_in_privacy, false) AS burn_in_privacy
  FROM vms.cameras c
  LEFT JOIN vms.ingest_status s ON s.camera_id OPERATOR(pg_catalog.=) c.id
  LEFT JOIN vms.ingest_settings i ON i.camera_id OPERATOR(pg_catalog.=) c.id;
COMMENT ON VIEW vms.ingest_overview IS
    'Per camera: its recorder, the state vms-ingest last reported, the end of its newest indexed recording, and how it is recorded';

REVOKE ALL ON vms.ingest_status, vms.ingest_overview FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._report_ingest(integer, text, text), vms.report_ingest(integer, text, text) FROM PUBLIC;
GRANT SELECT ON vms.ingest_status, vms.ingest_overview TO vms_user;
GRANT EXECUTE ON FUNCTION vms.report_ingest(integer, text, text) TO vms_user;
