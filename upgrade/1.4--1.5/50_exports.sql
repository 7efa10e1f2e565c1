------------------------------------------------------------------------------
-- The export register: every evidence export, begun by vms-export with
-- vms.begin_export() (every check, and everything the tool needs, in one
-- call), then finished (hashes of the signed manifest and of the output) or
-- failed.  Refusals are audited and survive the caller's rollback.
-- docs/export.md explains the package; docs/privacy.md the masks.
------------------------------------------------------------------------------
CREATE SEQUENCE vms.exports_id_seq AS bigint;
CREATE TABLE vms.exports (
    id                  bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.exports_id_seq'::pg_catalog.regclass),
    camera_id           integer NOT NULL,
    camera_name         text NOT NULL,
    from_time           timestamptz NOT NULL,
    to_time             timestamptz NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('video', 'snapshot')),
    reason              text NOT NULL,
    profile             text NOT NULL,
    requested_by        text NOT NULL,
    session_user_name   text NOT NULL,
    client_addr         inet,
    started_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    state               text NOT NULL DEFAULT 'started' CHECK (state IN ('started', 'finished', 'failed')),
    finished_at         timestamptz,
    segments            integer NOT NULL,
    bytes               bigint NOT NULL,
    masks               jsonb NOT NULL,
    lifts               jsonb NOT NULL,
    holds               jsonb NOT NULL,
    encryption_required boolean NOT NULL,
    manifest_sha256     bytea CHECK (pg_catalog.length(manifest_sha256) = 32),
    output_sha256       bytea CHECK (pg_catalog.length(output_sha256) = 32),
    signer_subject      text,
    signer_sha256       bytea NOT NULL CHECK (pg_catalog.length(signer_sha256) = 32),
    timestamped         boolean,
    encrypted           text CHECK (encrypted IN ('recipients', 'password')),
    failure             text,
    CHECK (to_time > from_time),
    CHECK ((state = 'started') = (finished_at IS NULL)),
    CHECK (state <> 'finished' OR (manifest_sha256 IS NOT NULL AND output_sha256 IS NOT NULL AND timestamped IS NOT NULL)),
    CHECK ((state = 'failed') = (failure IS NOT NULL))
);
ALTER SEQUENCE vms.exports_id_seq OWNED BY vms.exports.id;
CREATE INDEX ON vms.exports (camera_id, started_at);
CREATE INDEX ON vms.exports (requested_by, started_at);
COMMENT ON TABLE vms.exports IS
    'The export register: who exported which camera''s footage, when, why, with which masks, lifts and profile, and the hashes of what was signed';
COMMENT ON COLUMN vms.exports.camera_name IS 'The camera''s name at the time (the register outlives renames and removals)';
COMMENT ON COLUMN vms.exports.requested_by IS 'The role that exported';
COMMENT ON COLUMN vms.exports.masks IS 'The privacy zones masked in the output, as vms.begin_export() gave them';
COMMENT ON COLUMN vms.exports.lifts IS 'The exporter''s privacy lifts in force when the export began';
COMMENT ON COLUMN vms.exports.holds IS 'Evidence holds on the camera overlapping the range when the export began';
COMMENT ON COLUMN vms.exports.encryption_required IS 'The profile required encryption when the export began';
COMMENT ON COLUMN vms.exports.signer_sha256 IS
    'SHA-256 of the signer certificate''s DER: the profile''s when the export began; vms.finish_export() checks the one used against it';
COMMENT ON COLUMN vms.exports.manifest_sha256 IS 'SHA-256 of the signed manifest.json';
COMMENT ON COLUMN vms.exports.output_sha256 IS 'SHA-256 of the exported video or still (before any encryption)';
COMMENT ON COLUMN vms.exports.encrypted IS 'NULL: not encrypted; recipients (certificates) or password';
ALTER TABLE vms.exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.exports FORCE ROW LEVEL SECURITY;
-- Auditors and system managers see every export, a user their own.
CREATE POLICY visible ON vms.exports FOR SELECT
    USING (requested_by OPERATOR(pg_catalog.=) CURRENT_USER::text OR vms.has_permission('view_audit'));
SELECT pg_catalog.pg_extension_config_dump('vms.exports', '');
SELECT pg_catalog.pg_extension_config_dump('vms.exports_id_seq', '');

CREATE FUNCTION vms._begin_export(camera integer, from_time timestamptz, to_time timestamptz, reason text,
                                 profile text, snapshot boolean DEFAULT false)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    perm text := CASE WHEN snapshot THEN 'snapshot' ELSE 'export' END;
    kind text := CASE WHEN snapshot THEN 'snapshot' ELSE 'video' END;
    fmt text := CASE WHEN snapshot THEN 'png' ELSE 'mp4' END;
    longest interval := vms._setting_interval('vms.max_export_range');
    cam vms.cameras;
    prof vms.export_profiles;
    segs jsonb;
    nsegs integer;
    nbytes bigint;
    masks jsonb;
    lifts jsonb;
    holds jsonb;
    new_id bigint;
    started timestamptz := pg_catalog.now();
    me text := vms._invoker_name();
BEGIN
    IF camera IS NULL OR from_time IS NULL OR to_time IS NULL OR snapshot IS NULL THEN
        RAISE EXCEPTION 'camera, from_time, to_time and snapshot must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- 1. The camera.  As vms._require_camera: only a caller who could use it
    -- learns that it does not exist.
    SELECT * INTO cam FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera;
    IF NOT FOUND THEN
        IF NOT vms._authorized(perm, camera, pg_catalog.now()) THEN
            PERFORM vms._deny(pg_catalog.format('%s on camera %s', perm, camera));
        END IF;
        RAISE EXCEPTION 'camera % does not exist', camera USING ERRCODE = 'undefined_object';
    END IF;
    -- 2. The reason.
    PERFORM vms._check_text('reason', reason, 2000);
    -- 3. The range.
    IF to_time <= from_time THEN
        RAISE EXCEPTION 'the export range is empty or reversed: to_time (%) must be after from_time (%)',
                        vms._utc_iso(to_time), vms._utc_iso(from_time)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_time > pg_catalog.now() THEN
        RAISE EXCEPTION 'the export range ends in the future (%)', vms._utc_iso(to_time)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Export what has been recorded: to_time at most now.';
    END IF;
    IF to_time - from_time > longest THEN
        RAISE EXCEPTION 'the export range (%) is longer than vms.max_export_range (%)', to_time - from_time, longest
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Export it in parts.';
    END IF;
    -- 4. The profile, and 5. its formats.
    PERFORM vms._check_text('profile', profile, 63);
    SELECT * INTO prof FROM vms.export_profiles p WHERE p.name OPERATOR(pg_catalog.=) profile;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'export profile "%" does not exist', profile
            USING ERRCODE = 'undefined_object', HINT = 'The profiles are listed in vms.export_profiles.';
    END IF;
    IF NOT fmt OPERATOR(pg_catalog.=) ANY (prof.formats) THEN
        RAISE EXCEPTION 'export profile "%" does not offer % (%)', profile, fmt, kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = pg_catalog.format('It offers %s.', pg_catalog.array_to_string(prof.formats, ', '));
    END IF;
    -- 6. The permissions, for footage recorded at from_time: the grant's
    -- recorded_window applies.
    IF NOT vms._authorized(perm, camera, pg_catalog.now()) THEN
        PERFORM vms._deny(pg_catalog.format('%s on camera %s', perm, camera));
    END IF;
    IF NOT vms._authorized(perm, camera, from_time) THEN
        PERFORM vms._deny(pg_catalog.format('the range starts before your recorded-video window for %s on camera %s (at %s)',
                                            perm, camera, vms._utc_iso(from_time)),
                          'Your grant limits how far back you may export; ask for a later range or a wider grant.');
    END IF;
    IF NOT vms._authorized('view_recorded', camera, pg_catalog.now()) THEN
        PERFORM vms._deny(pg_catalog.format('view_recorded on camera %s', camera));
    END IF;
    IF NOT vms._authorized('view_recorded', camera, from_time) THEN
        PERFORM vms._deny(pg_catalog.format('the range starts before your recorded-video window for view_recorded on camera %s (at %s)',
                                            camera, vms._utc_iso(from_time)),
                          'Your grant limits how far back you may see recordings; ask for a later range or a wider grant.');
    END IF;
    -- 7. The recordings.
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'id', s.id, 'start', vms._utc_iso(s.start_time), 'end', vms._utc_iso(s.end_time), 'path', s.path,
               'bytes', s.bytes, 'sha256', pg_catalog.encode(s.sha256, 'hex'), 'codec', s.codec,
               'width', s.width, 'height', s.height) ORDER BY s.start_time, s.id),
           pg_catalog.count(*), COALESCE(pg_catalog.sum(s.bytes), 0)
      INTO segs, nsegs, nbytes
      FROM vms.segments s
     WHERE s.camera_id OPERATOR(pg_catalog.=) camera
       AND s.start_time OPERATOR(pg_catalog.<) to_time AND s.end_time OPERATOR(pg_catalog.>) from_time
       -- the partition key bounds the scan (a segment is at most a day long)
       AND s.start_time OPERATOR(pg_catalog.>) (from_time OPERATOR(pg_catalog.-) '1 day'::interval);
    IF nsegs OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'no recordings of camera % between % and %', camera, vms._utc_iso(from_time), vms._utc_iso(to_time)
            USING ERRCODE = 'no_data_found';
    END IF;

    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'zone_id', m.id, 'name', m.name, 'liftable', m.liftable, 'fill', m.fill, 'points', m.points) ORDER BY m.id),
           '[]'::jsonb)
      INTO masks FROM vms._masks(camera) m;
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'lift_id', l.id, 'zone_id', l.zone_id, 'reason', l.reason, 'requested_by', l.requested_by,
               'approved_by', l.approved_by, 'starts_at', vms._utc_iso(l.starts_at), 'ends_at', vms._utc_iso(l.ends_at))
               ORDER BY l.id), '[]'::jsonb)
      INTO lifts FROM vms._lifts_in_force(camera) l;
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'hold_id', h.id, 'reason', h.reason, 'from', vms._utc_iso(h.from_time), 'to', vms._utc_iso(h.to_time))
               ORDER BY h.id), '[]'::jsonb)
      INTO holds FROM vms.active_holds h
     WHERE h.camera_id OPERATOR(pg_catalog.=) camera
       AND h.from_time OPERATOR(pg_catalog.<) to_time AND h.to_time OPERATOR(pg_catalog.>) from_time;

    INSERT INTO vms.exports (camera_id, camera_name, from_time, to_time, kind, reason, profile, requested_by,
                             session_user_name, client_addr, started_at, segments, bytes, masks, lifts, holds,
                             encryption_required, signer_sha256)
    VALUES (camera, cam.name, from_time, to_time, kind, reason, prof.name, me, SESSION_USER::text,
            pg_catalog.inet_client_addr(), started, nsegs, nbytes, masks, lifts, holds,
            prof.encryption_required, prof.signer_sha256)
    RETURNING id INTO new_id;
    PERFORM vms._audit('export_begin', camera, new_id::text,
                       pg_catalog.jsonb_build_object('export_id', new_id, 'kind', kind, 'from', from_time, 'to', to_time,
                                                     'reason', reason, 'profile', prof.name, 'segments', nsegs,
                                                     'bytes', nbytes,
                                                     'masks', (SELECT pg_catalog.jsonb_agg(e OPERATOR(pg_catalog.->) 'zone_id')
                                                                 FROM pg_catalog.jsonb_array_elements(masks) e),
                                                     'lifts', (SELECT pg_catalog.jsonb_agg(e OPERATOR(pg_catalog.->) 'lift_id')
                                                                 FROM pg_catalog.jsonb_array_elements(lifts) e)));
    RETURN pg_catalog.jsonb_build_object(
        'export_id', new_id,
        'camera', pg_catalog.jsonb_build_object('id', cam.id, 'name', cam.name),
        'from', vms._utc_iso(from_time), 'to', vms._utc_iso(to_time),
        'kind', kind, 'reason', reason, 'exported_by', me, 'session_user', SESSION_USER::text,
        'started_at', vms._utc_iso(started),
        'profile', pg_catalog.jsonb_build_object(
            'name', prof.name, 'signer_certificate', prof.signer_certificate, 'signer_chain', prof.signer_chain,
            'signer_sha256', pg_catalog.encode(prof.signer_sha256, 'hex'),
            'key_needs_passphrase', prof.key_needs_passphrase, 'formats', pg_catalog.to_jsonb(prof.formats),
            'encryption_required', prof.encryption_required, 'tsa_url', prof.tsa_url),
        'segments', segs, 'masks', masks, 'lifts', lifts, 'holds', holds);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('export_begin', camera, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._begin_export(integer, timestamptz, timestamptz, text, text, boolean) IS 'Body of vms.begin_export(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.begin_export(camera integer, from_time timestamptz, to_time timestamptz, reason text,
                                profile text, snapshot boolean DEFAULT false)
RETURNS jsonb AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.begin_export(integer, timestamptz, timestamptz, text, text, boolean) IS
    'Begins an evidence export (export, or snapshot, and view_recorded on the camera for footage at from_time): registers it and returns what vms-export needs (segments, masks, lifts, holds, profile) as jsonb';

-- The export, locked, for its end; only the role that began it.
CREATE FUNCTION vms._export_for_end(export_id bigint)
RETURNS vms.exports LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    e vms.exports;
BEGIN
    IF export_id IS NULL THEN
        RAISE EXCEPTION 'export_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO e FROM vms.exports x WHERE x.id OPERATOR(pg_catalog.=) export_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'export % does not exist', export_id USING ERRCODE = 'undefined_object';
    END IF;
    IF e.requested_by IS DISTINCT FROM vms._invoker_name() THEN
        PERFORM vms._deny(pg_catalog.format('only %s, who began export %s, may finish it', e.requested_by, export_id));
    END IF;
    IF e.state OPERATOR(pg_catalog.<>) 'started' THEN
        RAISE EXCEPTION 'export % is already %', export_id, e.state USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN e;
END
$$;
COMMENT ON FUNCTION vms._export_for_end(bigint) IS 'Locks a started export for its end and checks that the caller began it';

CREATE FUNCTION vms._finish_export(export_id bigint, manifest_sha256 bytea, output_sha256 bytea,
                                  signer_certificate text, timestamped boolean DEFAULT false,
                                  encrypted text DEFAULT NULL, signer_subject text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    e vms.exports;
    fp bytea;
BEGIN
    e := vms._export_for_end(export_id);
    IF manifest_sha256 IS NULL OR output_sha256 IS NULL OR timestamped IS NULL THEN
        RAISE EXCEPTION 'manifest_sha256, output_sha256 and timestamped must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.length(manifest_sha256) OPERATOR(pg_catalog.<>) 32 OR pg_catalog.length(output_sha256) OPERATOR(pg_catalog.<>) 32 THEN
        RAISE EXCEPTION 'manifest_sha256 and output_sha256 must be 32 bytes (SHA-256)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    fp := vms._certificate_sha256('signer_certificate', signer_certificate);
    IF fp OPERATOR(pg_catalog.<>) e.signer_sha256 THEN
        RAISE EXCEPTION 'the manifest was signed with another certificate than profile "%" names', e.profile
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('Signer SHA-256 %s, the profile''s %s.', pg_catalog.encode(fp, 'hex'),
                                             pg_catalog.encode(e.signer_sha256, 'hex'));
    END IF;
    IF encrypted IS NOT NULL AND encrypted NOT IN ('recipients', 'password') THEN
        RAISE EXCEPTION 'encrypted must be NULL, recipients or password' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF e.encryption_required AND encrypted IS NULL THEN
        RAISE EXCEPTION 'export profile "%" requires encryption', e.profile USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM vms._check_optional_text('signer_subject', signer_subject, 1024);
    UPDATE vms.exports x
       SET state = 'finished', finished_at = pg_catalog.now(), manifest_sha256 = manifest_sha256,
           output_sha256 = output_sha256, signer_subject = signer_subject, timestamped = timestamped,
           encrypted = encrypted
     WHERE x.id OPERATOR(pg_catalog.=) export_id;
    PERFORM vms._audit('export_finish', e.camera_id, export_id::text,
                       pg_catalog.jsonb_build_object('export_id', export_id,
                                                     'manifest_sha256', pg_catalog.encode(manifest_sha256, 'hex'),
                                                     'output_sha256', pg_catalog.encode(output_sha256, 'hex'),
                                                     'signer_sha256', pg_catalog.encode(fp, 'hex'),
                                                     'signer_subject', signer_subject,
                                                     'timestamped', timestamped, 'encrypted', encrypted));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('export_finish', e.camera_id, export_id::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._finish_export(bigint, bytea, bytea, text, boolean, text, text) IS 'Body of vms.finish_export(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.finish_export(export_id bigint, manifest_sha256 bytea, output_sha256 bytea,
                                 signer_certificate text, timestamped boolean DEFAULT false,
                                 encrypted text DEFAULT NULL, signer_subject text DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.finish_export(bigint, bytea, bytea, text, boolean, text, text) IS
    'Records a finished export (the role that began it): hashes of the signed manifest and the output, the signer (must be the profile''s), time stamp and encryption';

CREATE FUNCTION vms._fail_export(export_id bigint, failure text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    e vms.exports;
BEGIN
    e := vms._export_for_end(export_id);
    PERFORM vms._check_text('failure', failure, 2000);
    UPDATE vms.exports x SET state = 'failed', finished_at = pg_catalog.now(), failure = failure
     WHERE x.id OPERATOR(pg_catalog.=) export_id;
    -- An error entry, as a failed ingest report: the call itself succeeded.
    PERFORM vms._audit_enqueue('export_fail', 'error', e.camera_id, export_id::text,
                               pg_catalog.jsonb_build_object('export_id', export_id, 'failure', failure));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('export_fail', e.camera_id, export_id::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._fail_export(bigint, text) IS 'Body of vms.fail_export(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.fail_export(export_id bigint, failure text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.fail_export(bigint, text) IS
    'Records that an export failed (the role that began it), e.g. a segment whose SHA-256 differs from the index; audited as an error';

REVOKE ALL ON vms.exports, vms.exports_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._begin_export(integer, timestamptz, timestamptz, text, text, boolean),
                       vms.begin_export(integer, timestamptz, timestamptz, text, text, boolean),
                       vms._export_for_end(bigint),
                       vms._finish_export(bigint, bytea, bytea, text, boolean, text, text),
                       vms.finish_export(bigint, bytea, bytea, text, boolean, text, text),
                       vms._fail_export(bigint, text), vms.fail_export(bigint, text) FROM PUBLIC;
GRANT SELECT ON vms.exports TO vms_user;
GRANT EXECUTE ON FUNCTION vms.begin_export(integer, timestamptz, timestamptz, text, text, boolean),
                          vms.finish_export(bigint, bytea, bytea, text, boolean, text, text),
                          vms.fail_export(bigint, text) TO vms_user;
