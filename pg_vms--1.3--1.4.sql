-- pg_vms 1.3 -> 1.4: ingest (the recording worker tools/vms-ingest).
-- Released, so frozen: it was assembled from upgrade/1.3--1.4/*.sql (see the
-- git history) and is never edited.  Same conventions as pg_vms--1.0.sql:
-- SECURITY DEFINER functions pin search_path = pg_catalog, vms, pg_temp;
-- nothing is granted to PUBLIC; each file revokes and grants what it creates.
-- docs/ingest.md explains the worker and how it uses these functions.

\echo Use "ALTER EXTENSION pg_vms UPDATE TO '1.4'" to load this file. \quit
------------------------------------------------------------------------------
-- The API's own overhead, found while measuring registration (bench section
-- 7): vms._invoker_name() was a SQL function with a query, called several
-- times by every API call.  Same result, now from the backend's cache.
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION vms._invoker_name() RETURNS text
AS 'MODULE_PATHNAME', 'vms_invoker_name' LANGUAGE C STABLE;
------------------------------------------------------------------------------
-- How a camera is recorded: transport, segment length, the camera's TLS
-- trust, and permanent privacy zones burned in at ingest.  One row per
-- camera that has settings; a camera without a row is recorded with the
-- defaults.  Not secret (the credential lives in vms.camera_credentials).
------------------------------------------------------------------------------
CREATE TABLE vms.ingest_settings (
    camera_id        integer PRIMARY KEY REFERENCES vms.cameras (id) ON DELETE CASCADE,
    transport        text NOT NULL DEFAULT 'tcp' CHECK (transport IN ('tcp', 'udp', 'http', 'https')),
    segment_seconds  integer NOT NULL DEFAULT 10 CHECK (segment_seconds BETWEEN 1 AND 600),
    tls_ca_pem       text CHECK (pg_catalog.octet_length(tls_ca_pem) <= 65536),
    tls_pin_sha256   bytea CHECK (pg_catalog.length(tls_pin_sha256) = 32),
    tls_server_name  text CHECK (pg_catalog.length(tls_server_name) BETWEEN 1 AND 253),
    burn_in_privacy  boolean NOT NULL DEFAULT false,
    privacy_zones    jsonb NOT NULL DEFAULT '[]',
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by       text NOT NULL
);
COMMENT ON TABLE vms.ingest_settings IS
    'How each camera is recorded by vms-ingest; set with vms.set_ingest_settings(), read by the recorder with vms.ingest_config()';
COMMENT ON COLUMN vms.ingest_settings.transport IS
    'RTSP transport: tcp (interleaved), udp, http (RTSP tunnelled in HTTP) or https (tunnelled in verified TLS)';
COMMENT ON COLUMN vms.ingest_settings.segment_seconds IS
    'Target segment length; segments are cut at the first keyframe at or after it';
COMMENT ON COLUMN vms.ingest_settings.tls_ca_pem IS
    'Trust anchors (PEM) for the camera''s certificate with rtsps:// or transport https (NULL: the recorder''s --ca-file or system store)';
COMMENT ON COLUMN vms.ingest_settings.tls_pin_sha256 IS
    'Optional pin: SHA-256 of the camera certificate''s SubjectPublicKeyInfo (DER)';
COMMENT ON COLUMN vms.ingest_settings.tls_server_name IS
    'Name (or IP) the camera certificate must carry (NULL: the host of the stream address)';
COMMENT ON COLUMN vms.ingest_settings.privacy_zones IS
    'Permanent privacy zones burned in at ingest when burn_in_privacy: [{"points": [[x,y],...], "fill": "black"|"blur"}], x and y in 0..1';
ALTER TABLE vms.ingest_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.ingest_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY managers ON vms.ingest_settings FOR SELECT
    USING (vms.authorize('manage_cameras', camera_id));
SELECT pg_catalog.pg_extension_config_dump('vms.ingest_settings', '');

-- A zone list is checked here once, so the worker never parses anything it
-- has not been promised: an array of at most 32 simple shapes of 3-64 points
-- in 0..1, each filled black or blurred.
CREATE FUNCTION vms._check_privacy_zones(zones jsonb)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    z jsonb;
    p jsonb;
    n integer := 0;
BEGIN
    IF zones IS NULL THEN
        RETURN;
    END IF;
    IF pg_catalog.jsonb_typeof(zones) <> 'array' OR pg_catalog.jsonb_array_length(zones) > 32 THEN
        RAISE EXCEPTION 'privacy_zones must be a JSON array of at most 32 zones'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Example: [{"points": [[0.1,0.1],[0.4,0.1],[0.4,0.3]], "fill": "black"}]';
    END IF;
    FOR z IN SELECT e FROM pg_catalog.jsonb_array_elements(zones) e LOOP
        n := n + 1;
        IF pg_catalog.jsonb_typeof(z) <> 'object'
           OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_object_keys(z) k WHERE k NOT IN ('points', 'fill'))
           OR pg_catalog.jsonb_typeof(z -> 'points') IS DISTINCT FROM 'array'
           OR pg_catalog.jsonb_array_length(z -> 'points') NOT BETWEEN 3 AND 64
           OR (z -> 'fill') IS NULL OR (z ->> 'fill') NOT IN ('black', 'blur') THEN
            RAISE EXCEPTION 'privacy zone % must be {"points": [3 to 64 [x, y] pairs], "fill": "black" or "blur"}', n
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR p IN SELECT e FROM pg_catalog.jsonb_array_elements(z -> 'points') e LOOP
            IF pg_catalog.jsonb_typeof(p) <> 'array' OR pg_catalog.jsonb_array_length(p) <> 2
               OR pg_catalog.jsonb_typeof(p -> 0) <> 'number' OR pg_catalog.jsonb_typeof(p -> 1) <> 'number'
               OR (p ->> 0)::numeric NOT BETWEEN 0 AND 1 OR (p ->> 1)::numeric NOT BETWEEN 0 AND 1 THEN
                RAISE EXCEPTION 'privacy zone %: every point must be [x, y] with x and y between 0 and 1', n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._check_privacy_zones(jsonb) IS 'Validates a list of permanent privacy zones';

CREATE FUNCTION vms._set_ingest_settings(camera_id integer, transport text DEFAULT NULL, segment_seconds integer DEFAULT NULL,
                                        tls_ca_pem text DEFAULT NULL, tls_pin_sha256 bytea DEFAULT NULL,
                                        tls_server_name text DEFAULT NULL, burn_in_privacy boolean DEFAULT NULL,
                                        privacy_zones jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    url text;
    new_transport text;
    changed jsonb;
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera_id);
    IF transport IS NOT NULL AND transport NOT IN ('tcp', 'udp', 'http', 'https') THEN
        RAISE EXCEPTION 'transport must be tcp, udp, http or https' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF segment_seconds IS NOT NULL AND segment_seconds NOT BETWEEN 1 AND 600 THEN
        RAISE EXCEPTION 'segment_seconds must be between 1 and 600' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- An empty value clears an optional setting.
    IF tls_ca_pem IS NOT NULL AND tls_ca_pem <> '' THEN
        IF pg_catalog.octet_length(tls_ca_pem) > 65536
           OR tls_ca_pem !~ '-----BEGIN CERTIFICATE-----' OR tls_ca_pem ~ 'PRIVATE KEY-----' THEN
            RAISE EXCEPTION 'tls_ca_pem must hold PEM certificates only (at most 64 kB)'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    IF tls_pin_sha256 IS NOT NULL AND pg_catalog.length(tls_pin_sha256) NOT IN (0, 32) THEN
        RAISE EXCEPTION 'tls_pin_sha256 must be 32 bytes (the SHA-256 of the certificate''s public key)'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'openssl x509 -pubkey -noout -in cam.pem | openssl pkey -pubin -outform DER | openssl dgst -sha256';
    END IF;
    IF tls_server_name IS NOT NULL AND tls_server_name <> ''
       AND tls_server_name !~ '^[A-Za-z0-9]([A-Za-z0-9.:-]{0,251}[A-Za-z0-9])?$' THEN
        RAISE EXCEPTION 'tls_server_name must be a host name or an IP address' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM vms._check_privacy_zones(privacy_zones);

    SELECT c.stream_url INTO url FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    new_transport := COALESCE(transport, (SELECT s.transport FROM vms.ingest_settings s
                                           WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id), 'tcp');
    IF url ~ '^rtsps://' AND new_transport NOT IN ('tcp') THEN
        RAISE EXCEPTION 'an rtsps:// camera is recorded over tcp only' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'RTP over UDP or an HTTP tunnel would leave the TLS session; use transport https with an rtsp:// address for tunnelling.';
    END IF;

    INSERT INTO vms.ingest_settings AS s (camera_id, transport, segment_seconds, tls_ca_pem, tls_pin_sha256,
                                         tls_server_name, burn_in_privacy, privacy_zones, updated_by)
    VALUES (camera_id, COALESCE(transport, 'tcp'), COALESCE(segment_seconds, 10), NULLIF(tls_ca_pem, ''),
            NULLIF(tls_pin_sha256, ''::bytea), NULLIF(tls_server_name, ''), COALESCE(burn_in_privacy, false),
            COALESCE(privacy_zones, '[]'::jsonb), vms._invoker_name())
    ON CONFLICT ON CONSTRAINT ingest_settings_pkey DO UPDATE
       SET transport = COALESCE(transport, s.transport),
           segment_seconds = COALESCE(segment_seconds, s.segment_seconds),
           tls_ca_pem = CASE WHEN tls_ca_pem IS NULL THEN s.tls_ca_pem ELSE NULLIF(tls_ca_pem, '') END,
           tls_pin_sha256 = CASE WHEN tls_pin_sha256 IS NULL THEN s.tls_pin_sha256 ELSE NULLIF(tls_pin_sha256, ''::bytea) END,
           tls_server_name = CASE WHEN tls_server_name IS NULL THEN s.tls_server_name ELSE NULLIF(tls_server_name, '') END,
           burn_in_privacy = COALESCE(burn_in_privacy, s.burn_in_privacy),
           privacy_zones = COALESCE(privacy_zones, s.privacy_zones),
           updated_at = pg_catalog.now(), updated_by = EXCLUDED.updated_by;
    changed := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'transport', transport, 'segment_seconds', segment_seconds,
        'tls_ca_changed', CASE WHEN tls_ca_pem IS NOT NULL THEN true END,
        'tls_pin_sha256', CASE WHEN tls_pin_sha256 IS NOT NULL THEN pg_catalog.encode(tls_pin_sha256, 'hex') END,
        'tls_server_name', tls_server_name, 'burn_in_privacy', burn_in_privacy,
        'privacy_zones', pg_catalog.jsonb_array_length(privacy_zones)));
    PERFORM vms._audit('set_ingest_settings', camera_id, NULL, changed);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('set_ingest_settings', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_ingest_settings(integer, text, integer, text, bytea, text, boolean, jsonb) IS 'Body of vms.set_ingest_settings(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_ingest_settings(camera_id integer, transport text DEFAULT NULL, segment_seconds integer DEFAULT NULL,
                                       tls_ca_pem text DEFAULT NULL, tls_pin_sha256 bytea DEFAULT NULL,
                                       tls_server_name text DEFAULT NULL, burn_in_privacy boolean DEFAULT NULL,
                                       privacy_zones jsonb DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_ingest_settings(integer, text, integer, text, bytea, text, boolean, jsonb) IS
    'How a camera is recorded (manage_cameras on it): NULL leaves a setting unchanged, an empty string or bytea clears an optional one';

-- Where the zones burned in at ingest come from.  The extension point for
-- privacy zones managed elsewhere: a later version replaces this body.
CREATE FUNCTION vms._burn_in_zones(camera_id integer)
RETURNS jsonb LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT COALESCE((SELECT s.privacy_zones FROM vms.ingest_settings s
                      WHERE s.camera_id OPERATOR(pg_catalog.=) _burn_in_zones.camera_id), '[]'::jsonb);
$$;
COMMENT ON FUNCTION vms._burn_in_zones(integer) IS
    'The permanent privacy zones vms-ingest burns into a camera''s recordings (the source of zones: replace to take them from elsewhere)';

CREATE FUNCTION vms._ingest_config(camera_id integer, OUT camera_name text, OUT stream_url text, OUT enabled boolean,
                                  OUT transport text, OUT segment_seconds integer, OUT tls_ca_pem text,
                                  OUT tls_pin_sha256 bytea, OUT tls_server_name text, OUT burn_in_privacy boolean,
                                  OUT privacy_zones jsonb)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    s vms.ingest_settings;
BEGIN
    PERFORM vms._require_recorder(camera_id);
    SELECT c.name, c.stream_url, c.enabled INTO camera_name, stream_url, enabled
      FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    SELECT * INTO s FROM vms.ingest_settings x WHERE x.camera_id OPERATOR(pg_catalog.=) camera_id;
    transport := COALESCE(s.transport, 'tcp');
    segment_seconds := COALESCE(s.segment_seconds, 10);
    tls_ca_pem := s.tls_ca_pem;
    tls_pin_sha256 := s.tls_pin_sha256;
    tls_server_name := s.tls_server_name;
    burn_in_privacy := COALESCE(s.burn_in_privacy, false);
    privacy_zones := CASE WHEN burn_in_privacy THEN vms._burn_in_zones(camera_id) ELSE '[]'::jsonb END;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('ingest_config', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._ingest_config(integer) IS 'Body of vms.ingest_config(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.ingest_config(camera_id integer, OUT camera_name text, OUT stream_url text, OUT enabled boolean,
                                 OUT transport text, OUT segment_seconds integer, OUT tls_ca_pem text,
                                 OUT tls_pin_sha256 bytea, OUT tls_server_name text, OUT burn_in_privacy boolean,
                                 OUT privacy_zones jsonb)
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.ingest_config(integer) IS
    'What vms-ingest needs to record a camera, for the vms_recorder assigned to it (the credential comes from vms.camera_credential())';

REVOKE ALL ON vms.ingest_settings FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._check_privacy_zones(jsonb),
                       vms._set_ingest_settings(integer, text, integer, text, bytea, text, boolean, jsonb),
                       vms.set_ingest_settings(integer, text, integer, text, bytea, text, boolean, jsonb),
                       vms._burn_in_zones(integer), vms._ingest_config(integer), vms.ingest_config(integer) FROM PUBLIC;
GRANT SELECT ON vms.ingest_settings TO vms_user;
GRANT EXECUTE ON FUNCTION vms.set_ingest_settings(integer, text, integer, text, bytea, text, boolean, jsonb),
                          vms.ingest_config(integer) TO vms_user;
------------------------------------------------------------------------------
-- Registration is idempotent: a recorder that crashed between registering a
-- segment and learning that it did registers it again on restart.  The same
-- file at the same start returns the existing id and changes nothing; another
-- file at that start is still refused (23505).
------------------------------------------------------------------------------
-- The row registered for the camera at this start, if it is this same file:
-- its id; NULL when there is none; raises when it is another file.
CREATE FUNCTION vms._registered_segment(camera_id integer, start_time timestamptz, end_time timestamptz,
                                       path text, bytes bigint, sha256 bytea)
RETURNS bigint LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    s record;
BEGIN
    SELECT x.id, x.end_time, x.path, x.bytes, x.sha256 INTO s FROM vms.segments x
     WHERE x.camera_id OPERATOR(pg_catalog.=) camera_id AND x.start_time OPERATOR(pg_catalog.=) start_time;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF s.path IS DISTINCT FROM path OR s.bytes IS DISTINCT FROM bytes OR s.sha256 IS DISTINCT FROM sha256
       OR s.end_time IS DISTINCT FROM end_time THEN
        RAISE EXCEPTION 'camera % already has another segment starting at %', camera_id, start_time
            USING ERRCODE = 'unique_violation',
                  DETAIL = pg_catalog.format('Segment %s is %s.', s.id, s.path),
                  HINT = 'A segment is registered again only with the same path, end_time, bytes and sha256.';
    END IF;
    RETURN s.id;
END
$$;
COMMENT ON FUNCTION vms._registered_segment(integer, timestamptz, timestamptz, text, bigint, bytea) IS
    'The id of this same segment if already registered, NULL if none; raises if another file holds that start';

-- One function, one subtransaction: registration is the recorders' hot path
-- (bench section 7).  It replaces the 1.3 pair of _register_segment (which
-- checked the recorder and made the partition) and _register_segment_body
-- (which checked again, then inserted).
CREATE OR REPLACE FUNCTION vms._register_segment(camera_id integer, start_time timestamptz, end_time timestamptz,
                                     path text, bytes bigint, sha256 bytea, codec text DEFAULT NULL,
                                     width integer DEFAULT NULL, height integer DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    suffix text;
    part text;
    held boolean := false;
    new_id bigint;
BEGIN
    PERFORM vms._require_recorder(camera_id);
    IF start_time IS NULL OR end_time IS NULL OR bytes IS NULL OR sha256 IS NULL THEN
        RAISE EXCEPTION 'start_time, end_time, path, bytes and sha256 must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM vms._check_text('path', path, 1024);
    IF end_time <= start_time THEN
        RAISE EXCEPTION 'end_time must be after start_time' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF end_time - start_time > '1 day'::interval THEN
        RAISE EXCEPTION 'a segment may not be longer than a day' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF end_time > pg_catalog.now() + '5 minutes'::interval THEN
        RAISE EXCEPTION 'end_time is in the future' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Check the recording server''s clock.';
    END IF;
    IF path ~ '^/' OR path ~ '(^|/)\.\.(/|$)' THEN
        RAISE EXCEPTION 'path must be relative to the storage root and must not contain ".."'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF bytes < 0 THEN
        RAISE EXCEPTION 'bytes must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.length(sha256) <> 32 THEN
        RAISE EXCEPTION 'sha256 must be 32 bytes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM vms._check_optional_text('codec', codec, 32);
    IF (width IS NOT NULL AND (width < 1 OR width > 16384)) OR (height IS NOT NULL AND (height < 1 OR height > 16384)) THEN
        RAISE EXCEPTION 'width and height must be between 1 and 16384' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Hold the day partition (ROW EXCLUSIVE, as the insert will) so that a
    -- retention run cannot retire it before the insert; when it is missing
    -- or was retired meanwhile, the slower path makes it.
    suffix := pg_catalog.to_char((start_time AT TIME ZONE 'UTC')::date, 'YYYYMMDD');
    part := 'segments_p' || suffix;
    IF pg_catalog.to_regclass('vms.' || part) IS NOT NULL THEN
        BEGIN
            EXECUTE 'LOCK TABLE ONLY vms.' || pg_catalog.quote_ident(part) || ' IN ROW EXCLUSIVE MODE';
            held := EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                             WHERE i.inhrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || part)
                               AND i.inhparent OPERATOR(pg_catalog.=) 'vms.segments'::pg_catalog.regclass);
        EXCEPTION WHEN undefined_table THEN
            held := false;
        END;
    END IF;
    IF NOT held THEN
        PERFORM vms._partition_for_registration('register_segment', 'segments', camera_id, start_time, path);
    END IF;
    -- A late segment makes its day's event tables too, if their locks are free.
    IF pg_catalog.to_regclass('vms.events_p' || suffix) IS NULL OR pg_catalog.to_regclass('vms.face_events_p' || suffix) IS NULL THEN
        PERFORM vms._ensure_day_partitions((start_time AT TIME ZONE 'UTC')::date);
    END IF;
    -- ON CONFLICT, not a subtransaction: a conflict is a repeat of a
    -- registration that committed (the same answer, no new row) or another
    -- file at that start (refused).
    INSERT INTO vms.segments (camera_id, start_time, end_time, path, bytes, sha256, codec, width, height, recorder)
    VALUES (camera_id, start_time, end_time, path, bytes, sha256, codec, width, height, vms._invoker_name())
    ON CONFLICT DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        new_id := vms._registered_segment(camera_id, start_time, end_time, path, bytes, sha256);
        IF new_id IS NULL THEN
            RAISE EXCEPTION 'camera % already has a segment starting at %', camera_id, start_time
                USING ERRCODE = 'unique_violation';
        END IF;
        RETURN new_id;
    END IF;
    PERFORM vms._audit('register_segment', camera_id, path,
                       pg_catalog.jsonb_build_object('segment_id', new_id, 'start_time', start_time,
                                                     'end_time', end_time, 'bytes', bytes,
                                                     'sha256', pg_catalog.encode(sha256, 'hex')));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('register_segment', camera_id, path, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
DROP FUNCTION vms._register_segment_body(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer);

-- Where a restarted recorder resumes: files it finds on disk that start at or
-- after this point may not have been registered yet.
CREATE FUNCTION vms._ingest_resume_point(camera_id integer)
RETURNS timestamptz LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._require_recorder(camera_id);
    RETURN (SELECT pg_catalog.max(s.start_time) FROM vms.segments s
             WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('ingest_resume_point', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._ingest_resume_point(integer) IS 'Body of vms.ingest_resume_point(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.ingest_resume_point(camera_id integer)
RETURNS timestamptz AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.ingest_resume_point(integer) IS
    'Start of the camera''s latest registered segment (its assigned vms_recorder only): where a restarted recorder resumes registering';

REVOKE ALL ON FUNCTION vms._registered_segment(integer, timestamptz, timestamptz, text, bigint, bytea),
                       vms._ingest_resume_point(integer), vms.ingest_resume_point(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vms.ingest_resume_point(integer) TO vms_user;
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
