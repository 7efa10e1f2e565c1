------------------------------------------------------------------------------
-- Privacy zones: named polygons per camera, in normalised coordinates (0,0
-- top left, 1,1 bottom right), filled black or blurred.  A zone is permanent
-- (never lifted) or liftable (vms.lift_privacy_mask, 30_privacy_lifts.sql);
-- permanent zones may also be burned into the recording by vms-ingest
-- (burn_in, with ingest_settings.burn_in_privacy on).  They replace the 1.4
-- zone list in vms.ingest_settings.privacy_zones, which is moved here.
-- docs/privacy.md explains the model.
------------------------------------------------------------------------------
CREATE SEQUENCE vms.privacy_zones_id_seq AS bigint;
CREATE TABLE vms.privacy_zones (
    id         bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.privacy_zones_id_seq'::pg_catalog.regclass),
    camera_id  integer NOT NULL REFERENCES vms.cameras (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (pg_catalog.octet_length(name) BETWEEN 1 AND 200),
    points     jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(points) = 'array'
                                     AND pg_catalog.jsonb_array_length(points) BETWEEN 3 AND 64),
    fill       text NOT NULL DEFAULT 'black' CHECK (fill IN ('black', 'blur')),
    liftable   boolean NOT NULL DEFAULT false,
    burn_in    boolean NOT NULL DEFAULT false,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT privacy_zones_burn_in_permanent CHECK (NOT (burn_in AND liftable)),
    CONSTRAINT privacy_zones_camera_name_key UNIQUE (camera_id, name)
);
ALTER SEQUENCE vms.privacy_zones_id_seq OWNED BY vms.privacy_zones.id;
COMMENT ON TABLE vms.privacy_zones IS
    'Privacy zones per camera: masked for every viewer and export; liftable ones may be lifted per person (vms.lift_privacy_mask)';
COMMENT ON COLUMN vms.privacy_zones.points IS
    'The polygon: 3 to 64 [x, y] pairs, x and y in 0..1 of the picture''s width and height, (0,0) top left';
COMMENT ON COLUMN vms.privacy_zones.fill IS 'How the zone is masked: black or blur';
COMMENT ON COLUMN vms.privacy_zones.liftable IS 'false: permanent, never lifted; true: a holder of lift_privacy_mask may lift it for themselves';
COMMENT ON COLUMN vms.privacy_zones.burn_in IS
    'Burned into the recording by vms-ingest when the camera''s burn_in_privacy is on (permanent zones only)';
ALTER TABLE vms.privacy_zones ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.privacy_zones FORCE ROW LEVEL SECURITY;
CREATE POLICY viewers ON vms.privacy_zones FOR SELECT
    USING (vms.authorize('manage_cameras', camera_id) OR vms.authorize('view_live', camera_id)
           OR vms.authorize('view_recorded', camera_id));
SELECT pg_catalog.pg_extension_config_dump('vms.privacy_zones', '');
SELECT pg_catalog.pg_extension_config_dump('vms.privacy_zones_id_seq', '');

-- The 1.4 zone lists become permanent burn-in zones, named by their place in
-- the list; the column goes.
INSERT INTO vms.privacy_zones (camera_id, name, points, fill, liftable, burn_in, created_by, created_at, updated_at)
SELECT s.camera_id, 'zone ' || z.n, z.zone OPERATOR(pg_catalog.->) 'points', z.zone OPERATOR(pg_catalog.->>) 'fill',
       false, true, s.updated_by, s.updated_at, s.updated_at
  FROM vms.ingest_settings s, pg_catalog.jsonb_array_elements(s.privacy_zones) WITH ORDINALITY z(zone, n)
 ORDER BY s.camera_id, z.n;

DROP FUNCTION vms.set_ingest_settings(integer, text, integer, text, bytea, text, boolean, jsonb);
DROP FUNCTION vms._set_ingest_settings(integer, text, integer, text, bytea, text, boolean, jsonb);
DROP FUNCTION vms._check_privacy_zones(jsonb);
ALTER TABLE vms.ingest_settings DROP COLUMN privacy_zones;
COMMENT ON COLUMN vms.ingest_settings.burn_in_privacy IS
    'Burn the camera''s permanent burn_in privacy zones (vms.privacy_zones) into its recordings';

-- One zone's polygon: 3 to 64 [x, y] pairs in 0..1.  Checked here once, so
-- the recorder and the exporter never parse anything they were not promised.
CREATE FUNCTION vms._check_zone_points(points jsonb)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    p jsonb;
BEGIN
    IF points IS NULL THEN
        RAISE EXCEPTION 'points must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.jsonb_typeof(points) OPERATOR(pg_catalog.<>) 'array'
       OR pg_catalog.jsonb_array_length(points) NOT BETWEEN 3 AND 64 THEN
        RAISE EXCEPTION 'points must be a JSON array of 3 to 64 [x, y] pairs'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'x and y are fractions of the picture''s width and height, (0,0) top left: [[0.1,0.1],[0.4,0.1],[0.4,0.3]]';
    END IF;
    FOR p IN SELECT e FROM pg_catalog.jsonb_array_elements(points) e LOOP
        IF pg_catalog.jsonb_typeof(p) OPERATOR(pg_catalog.<>) 'array' OR pg_catalog.jsonb_array_length(p) OPERATOR(pg_catalog.<>) 2
           OR pg_catalog.jsonb_typeof(p OPERATOR(pg_catalog.->) 0) OPERATOR(pg_catalog.<>) 'number'
           OR pg_catalog.jsonb_typeof(p OPERATOR(pg_catalog.->) 1) OPERATOR(pg_catalog.<>) 'number'
           OR (p OPERATOR(pg_catalog.->>) 0)::numeric NOT BETWEEN 0 AND 1
           OR (p OPERATOR(pg_catalog.->>) 1)::numeric NOT BETWEEN 0 AND 1 THEN
            RAISE EXCEPTION 'every point must be [x, y] with x and y between 0 and 1, not %', p
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Coordinates are normalised: 0 is the left or top edge, 1 the right or bottom edge.';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._check_zone_points(jsonb) IS 'Validates a privacy zone''s polygon';

-- The settings of a zone, checked together (after defaults or merging).
CREATE FUNCTION vms._check_zone(name text, points jsonb, fill text, liftable boolean, burn_in boolean)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._check_text('name', name, 200);
    PERFORM vms._check_zone_points(points);
    IF fill IS NULL OR fill NOT IN ('black', 'blur') THEN
        RAISE EXCEPTION 'fill must be black or blur' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF liftable IS NULL OR burn_in IS NULL THEN
        RAISE EXCEPTION 'liftable and burn_in must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF burn_in AND liftable THEN
        RAISE EXCEPTION 'a liftable zone cannot be burned in'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'What is burned into the recording can never be lifted: burn in permanent zones only (liftable => false).';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._check_zone(text, jsonb, text, boolean, boolean) IS 'Validates a privacy zone';

CREATE FUNCTION vms._add_privacy_zone(camera integer, name text, points jsonb, fill text DEFAULT 'black',
                                     liftable boolean DEFAULT false, burn_in boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    new_id bigint;
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera);
    PERFORM vms._check_zone(name, points, fill, liftable, burn_in);
    -- Serialise zone changes of the camera (the count and the name).
    PERFORM 1 FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera FOR UPDATE;
    IF (SELECT pg_catalog.count(*) FROM vms.privacy_zones z WHERE z.camera_id OPERATOR(pg_catalog.=) camera) >= 32 THEN
        RAISE EXCEPTION 'camera % already has 32 privacy zones', camera
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A zone may have up to 64 points: merge neighbouring zones.';
    END IF;
    IF EXISTS (SELECT 1 FROM vms.privacy_zones z
                WHERE z.camera_id OPERATOR(pg_catalog.=) camera AND z.name OPERATOR(pg_catalog.=) name) THEN
        RAISE EXCEPTION 'camera % already has a privacy zone named "%"', camera, name
            USING ERRCODE = 'unique_violation', HINT = 'Change it with vms.update_privacy_zone().';
    END IF;
    INSERT INTO vms.privacy_zones (camera_id, name, points, fill, liftable, burn_in, created_by)
    VALUES (camera, name, points, fill, liftable, burn_in, vms._invoker_name())
    RETURNING id INTO new_id;
    PERFORM vms._audit('privacy_zone_add', camera, new_id::text,
                       pg_catalog.jsonb_build_object('zone_id', new_id, 'name', name, 'points', points, 'fill', fill,
                                                     'liftable', liftable, 'burn_in', burn_in));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('privacy_zone_add', camera, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._add_privacy_zone(integer, text, jsonb, text, boolean, boolean) IS 'Body of vms.add_privacy_zone(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.add_privacy_zone(camera integer, name text, points jsonb, fill text DEFAULT 'black',
                                    liftable boolean DEFAULT false, burn_in boolean DEFAULT false)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.add_privacy_zone(integer, text, jsonb, text, boolean, boolean) IS
    'Adds a privacy zone to a camera (manage_cameras on it): permanent unless liftable, burned in at ingest if burn_in; returns its id';

-- The zone, locked, for a change; raises unless the caller manages its camera.
CREATE FUNCTION vms._zone_for_change(zone bigint)
RETURNS vms.privacy_zones LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    z vms.privacy_zones;
BEGIN
    IF zone IS NULL THEN
        RAISE EXCEPTION 'zone must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO z FROM vms.privacy_zones x WHERE x.id OPERATOR(pg_catalog.=) zone FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'privacy zone % does not exist', zone USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT vms._authorized('manage_cameras', z.camera_id, pg_catalog.now()) THEN
        PERFORM vms._deny(pg_catalog.format('manage_cameras on camera %s (of privacy zone %s)', z.camera_id, zone));
    END IF;
    RETURN z;
END
$$;
COMMENT ON FUNCTION vms._zone_for_change(bigint) IS 'Locks a privacy zone for a change and checks the caller''s right';

CREATE FUNCTION vms._update_privacy_zone(zone bigint, name text DEFAULT NULL, points jsonb DEFAULT NULL,
                                        fill text DEFAULT NULL, liftable boolean DEFAULT NULL,
                                        burn_in boolean DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    z vms.privacy_zones;
    n vms.privacy_zones;
BEGIN
    z := vms._zone_for_change(zone);
    n := z;
    n.name := COALESCE(name, z.name);
    n.points := COALESCE(points, z.points);
    n.fill := COALESCE(fill, z.fill);
    n.liftable := COALESCE(liftable, z.liftable);
    n.burn_in := COALESCE(burn_in, z.burn_in);
    PERFORM vms._check_zone(n.name, n.points, n.fill, n.liftable, n.burn_in);
    IF n.name OPERATOR(pg_catalog.<>) z.name
       AND EXISTS (SELECT 1 FROM vms.privacy_zones x
                    WHERE x.camera_id OPERATOR(pg_catalog.=) z.camera_id AND x.name OPERATOR(pg_catalog.=) n.name) THEN
        RAISE EXCEPTION 'camera % already has a privacy zone named "%"', z.camera_id, n.name
            USING ERRCODE = 'unique_violation';
    END IF;
    UPDATE vms.privacy_zones x
       SET name = n.name, points = n.points, fill = n.fill, liftable = n.liftable, burn_in = n.burn_in,
           updated_at = pg_catalog.now()
     WHERE x.id OPERATOR(pg_catalog.=) zone;
    PERFORM vms._audit('privacy_zone_update', z.camera_id, zone::text,
                       pg_catalog.jsonb_build_object('zone_id', zone,
                           'old', pg_catalog.jsonb_build_object('name', z.name, 'points', z.points, 'fill', z.fill,
                                                                'liftable', z.liftable, 'burn_in', z.burn_in),
                           'new', pg_catalog.jsonb_build_object('name', n.name, 'points', n.points, 'fill', n.fill,
                                                                'liftable', n.liftable, 'burn_in', n.burn_in)));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('privacy_zone_update', z.camera_id, zone::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._update_privacy_zone(bigint, text, jsonb, text, boolean, boolean) IS 'Body of vms.update_privacy_zone(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.update_privacy_zone(zone bigint, name text DEFAULT NULL, points jsonb DEFAULT NULL,
                                       fill text DEFAULT NULL, liftable boolean DEFAULT NULL,
                                       burn_in boolean DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.update_privacy_zone(bigint, text, jsonb, text, boolean, boolean) IS
    'Changes a privacy zone (manage_cameras on its camera); NULL leaves a setting unchanged';

CREATE FUNCTION vms._remove_privacy_zone(zone bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    z vms.privacy_zones;
BEGIN
    z := vms._zone_for_change(zone);
    DELETE FROM vms.privacy_zones x WHERE x.id OPERATOR(pg_catalog.=) zone;
    PERFORM vms._audit('privacy_zone_remove', z.camera_id, zone::text,
                       pg_catalog.jsonb_build_object('zone_id', zone, 'name', z.name, 'points', z.points, 'fill', z.fill,
                                                     'liftable', z.liftable, 'burn_in', z.burn_in));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('privacy_zone_remove', z.camera_id, zone::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._remove_privacy_zone(bigint) IS 'Body of vms.remove_privacy_zone(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.remove_privacy_zone(zone bigint)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.remove_privacy_zone(bigint) IS 'Removes a privacy zone (manage_cameras on its camera)';

------------------------------------------------------------------------------
-- Ingest settings without the zone list (the zones are above).
------------------------------------------------------------------------------
CREATE FUNCTION vms._set_ingest_settings(camera_id integer, transport text DEFAULT NULL, segment_seconds integer DEFAULT NULL,
                                        tls_ca_pem text DEFAULT NULL, tls_pin_sha256 bytea DEFAULT NULL,
                                        tls_server_name text DEFAULT NULL, burn_in_privacy boolean DEFAULT NULL)
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

    SELECT c.stream_url INTO url FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    new_transport := COALESCE(transport, (SELECT s.transport FROM vms.ingest_settings s
                                           WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id), 'tcp');
    IF url ~ '^rtsps://' AND new_transport NOT IN ('tcp') THEN
        RAISE EXCEPTION 'an rtsps:// camera is recorded over tcp only' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'RTP over UDP or an HTTP tunnel would leave the TLS session; use transport https with an rtsp:// address for tunnelling.';
    END IF;

    INSERT INTO vms.ingest_settings AS s (camera_id, transport, segment_seconds, tls_ca_pem, tls_pin_sha256,
                                         tls_server_name, burn_in_privacy, updated_by)
    VALUES (camera_id, COALESCE(transport, 'tcp'), COALESCE(segment_seconds, 10), NULLIF(tls_ca_pem, ''),
            NULLIF(tls_pin_sha256, ''::bytea), NULLIF(tls_server_name, ''), COALESCE(burn_in_privacy, false),
            vms._invoker_name())
    ON CONFLICT ON CONSTRAINT ingest_settings_pkey DO UPDATE
       SET transport = COALESCE(transport, s.transport),
           segment_seconds = COALESCE(segment_seconds, s.segment_seconds),
           tls_ca_pem = CASE WHEN tls_ca_pem IS NULL THEN s.tls_ca_pem ELSE NULLIF(tls_ca_pem, '') END,
           tls_pin_sha256 = CASE WHEN tls_pin_sha256 IS NULL THEN s.tls_pin_sha256 ELSE NULLIF(tls_pin_sha256, ''::bytea) END,
           tls_server_name = CASE WHEN tls_server_name IS NULL THEN s.tls_server_name ELSE NULLIF(tls_server_name, '') END,
           burn_in_privacy = COALESCE(burn_in_privacy, s.burn_in_privacy),
           updated_at = pg_catalog.now(), updated_by = EXCLUDED.updated_by;
    changed := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'transport', transport, 'segment_seconds', segment_seconds,
        'tls_ca_changed', CASE WHEN tls_ca_pem IS NOT NULL THEN true END,
        'tls_pin_sha256', CASE WHEN tls_pin_sha256 IS NOT NULL THEN pg_catalog.encode(tls_pin_sha256, 'hex') END,
        'tls_server_name', tls_server_name, 'burn_in_privacy', burn_in_privacy));
    PERFORM vms._audit('set_ingest_settings', camera_id, NULL, changed);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('set_ingest_settings', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_ingest_settings(integer, text, integer, text, bytea, text, boolean) IS 'Body of vms.set_ingest_settings(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_ingest_settings(camera_id integer, transport text DEFAULT NULL, segment_seconds integer DEFAULT NULL,
                                       tls_ca_pem text DEFAULT NULL, tls_pin_sha256 bytea DEFAULT NULL,
                                       tls_server_name text DEFAULT NULL, burn_in_privacy boolean DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_ingest_settings(integer, text, integer, text, bytea, text, boolean) IS
    'How a camera is recorded (manage_cameras on it): NULL leaves a setting unchanged, an empty string or bytea clears an optional one; privacy zones are set with vms.add_privacy_zone()';

-- The zones burned in at ingest: the camera's permanent burn_in zones, when
-- its burn_in_privacy is on.  Same shape as in 1.4, so vms-ingest is unchanged.
CREATE OR REPLACE FUNCTION vms._burn_in_zones(camera_id integer)
RETURNS jsonb LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('points', z.points, 'fill', z.fill) ORDER BY z.id),
                    '[]'::jsonb)
      FROM vms.privacy_zones z
     WHERE z.camera_id OPERATOR(pg_catalog.=) _burn_in_zones.camera_id AND z.burn_in AND NOT z.liftable
       AND EXISTS (SELECT 1 FROM vms.ingest_settings s
                    WHERE s.camera_id OPERATOR(pg_catalog.=) _burn_in_zones.camera_id AND s.burn_in_privacy);
$$;
COMMENT ON FUNCTION vms._burn_in_zones(integer) IS
    'The permanent privacy zones vms-ingest burns into a camera''s recordings: its burn_in zones when burn_in_privacy is on';

REVOKE ALL ON vms.privacy_zones, vms.privacy_zones_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._check_zone_points(jsonb), vms._check_zone(text, jsonb, text, boolean, boolean),
                       vms._add_privacy_zone(integer, text, jsonb, text, boolean, boolean),
                       vms.add_privacy_zone(integer, text, jsonb, text, boolean, boolean),
                       vms._zone_for_change(bigint),
                       vms._update_privacy_zone(bigint, text, jsonb, text, boolean, boolean),
                       vms.update_privacy_zone(bigint, text, jsonb, text, boolean, boolean),
                       vms._remove_privacy_zone(bigint), vms.remove_privacy_zone(bigint),
                       vms._set_ingest_settings(integer, text, integer, text, bytea, text, boolean),
                       vms.set_ingest_settings(integer, text, integer, text, bytea, text, boolean),
                       vms._burn_in_zones(integer) FROM PUBLIC;
GRANT SELECT ON vms.privacy_zones TO vms_user;
GRANT EXECUTE ON FUNCTION vms.add_privacy_zone(integer, text, jsonb, text, boolean, boolean),
                          vms.update_privacy_zone(bigint, text, jsonb, text, boolean, boolean),
                          vms.remove_privacy_zone(bigint),
                          vms.set_ingest_settings(integer, text, integer, text, bytea, text, boolean) TO vms_user;
