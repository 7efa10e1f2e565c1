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
