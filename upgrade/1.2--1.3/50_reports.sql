------------------------------------------------------------------------------
-- Reports: retention compliance per camera, and storage reconciliation.
--
-- The database cannot see a recorder's disk.  The recorder's check (tools/
-- vms-storage check) reads vms.storage_manifest(), walks <root>/<camera_id>/,
-- hashes the files and reports orphans (files without rows), missing files
-- (rows without files) and mismatches (the file's SHA-256 is not the one
-- registered) with vms.storage_check_report().  It is read-only unless asked
-- to repair: then it removes orphan files and calls vms.storage_forget_missing()
-- for rows whose file is gone.  A mismatch is never repaired: it is evidence.
------------------------------------------------------------------------------

-- Cameras the caller may report on (manage_retention), in id order.
CREATE FUNCTION vms._retention_cameras()
RETURNS SETOF vms.cameras LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT c.* FROM vms.cameras c
     WHERE vms._authorized('manage_retention', c.id, pg_catalog.now()) ORDER BY c.id;
$$;
COMMENT ON FUNCTION vms._retention_cameras() IS 'Cameras on which the caller holds manage_retention';

-- Files released for removal per camera (all recorders): queue and batches.
CREATE FUNCTION vms._purge_pending(camera_id integer, OUT files bigint, OUT bytes bigint)
RETURNS record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    b record;
    n bigint;
    nb bigint;
BEGIN
    SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(q.bytes), 0) INTO files, bytes
      FROM vms.purge_queue q WHERE q.camera_id OPERATOR(pg_catalog.=) camera_id;
    FOR b IN SELECT x.table_name FROM vms.purge_batches x LOOP
        BEGIN
            EXECUTE pg_catalog.format('SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(s.bytes), 0) FROM vms.%I s '
                                      'WHERE s.camera_id OPERATOR(pg_catalog.=) $1', b.table_name)
                INTO n, nb USING camera_id;
            files := files + n;
            bytes := bytes + nb;
        EXCEPTION WHEN undefined_table THEN
            NULL;  -- finished and dropped since the list was read
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._purge_pending(integer) IS 'Files of a camera released by retention and not yet confirmed removed';

-- Segments of a camera past a cutoff that no hold keeps: what the next run removes.
CREATE FUNCTION vms._expired_rows(camera_id integer, cutoff timestamptz)
RETURNS bigint LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT pg_catalog.count(*) FROM vms.segments s
     WHERE s.camera_id OPERATOR(pg_catalog.=) $1
       AND s.start_time OPERATOR(pg_catalog.<) $2 AND s.end_time OPERATOR(pg_catalog.<=) $2
       AND NOT EXISTS (SELECT 1 FROM vms.active_holds h
                        WHERE h.camera_id OPERATOR(pg_catalog.=) s.camera_id
                          AND s.start_time OPERATOR(pg_catalog.<) h.to_time
                          AND s.end_time OPERATOR(pg_catalog.>=) h.from_time);
$$;
COMMENT ON FUNCTION vms._expired_rows(integer, timestamptz) IS 'Segments of a camera past a cutoff that no active hold keeps';

CREATE FUNCTION vms._retention_report()
RETURNS TABLE (camera_id integer, camera_name text, retention interval, camera_setting interval, capped boolean,
               oldest_recording timestamptz, newest_recording timestamptz, expired_rows bigint, complies boolean,
               held_ranges tstzrange[], held_segments bigint, held_bytes bigint,
               purge_pending_files bigint, purge_pending_bytes bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp SET TimeZone = 'UTC' AS $$
#variable_conflict use_variable
DECLARE
    c vms.cameras;
    cutoff timestamptz;
    pending record;
BEGIN
    IF NOT vms._is_system_manager(vms._invoker()) AND NOT vms._invoker_holds('manage_retention', false) THEN
        PERFORM vms._deny('manage_retention is required');
    END IF;
    FOR c IN SELECT * FROM vms._retention_cameras() LOOP
        camera_id := c.id;
        camera_name := c.name;
        retention := vms._effective_retention(c.retention);
        camera_setting := c.retention;
        capped := COALESCE(c.retention, vms._default_retention())
                  OPERATOR(pg_catalog.>) vms._setting_interval('vms.max_retention');
        cutoff := pg_catalog.now() OPERATOR(pg_catalog.-) retention;
        SELECT s.start_time INTO oldest_recording FROM vms.segments s
         WHERE s.camera_id OPERATOR(pg_catalog.=) c.id ORDER BY s.start_time LIMIT 1;
        SELECT s.end_time INTO newest_recording FROM vms.segments s
         WHERE s.camera_id OPERATOR(pg_catalog.=) c.id ORDER BY s.start_time DESC LIMIT 1;
        expired_rows := vms._expired_rows(c.id, cutoff);
        complies := expired_rows OPERATOR(pg_catalog.=) 0;
        SELECT pg_catalog.array_agg(pg_catalog.tstzrange(h.from_time, h.to_time) ORDER BY h.from_time)
          INTO held_ranges FROM vms.active_holds h WHERE h.camera_id OPERATOR(pg_catalog.=) c.id;
        SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(s.bytes), 0) INTO held_segments, held_bytes
          FROM vms.segments s
         WHERE s.camera_id OPERATOR(pg_catalog.=) c.id
           AND EXISTS (SELECT 1 FROM vms.active_holds h
                        WHERE h.camera_id OPERATOR(pg_catalog.=) s.camera_id
                          AND s.start_time OPERATOR(pg_catalog.<) h.to_time
                          AND s.end_time OPERATOR(pg_catalog.>=) h.from_time);
        SELECT * INTO pending FROM vms._purge_pending(c.id);
        purge_pending_files := pending.files;
        purge_pending_bytes := pending.bytes;
        RETURN NEXT;
    END LOOP;
    PERFORM vms._audit('retention_report', NULL, NULL, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('retention_report', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._retention_report() IS 'Body of vms.retention_report(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.retention_report()
RETURNS TABLE (camera_id integer, camera_name text, retention interval, camera_setting interval, capped boolean,
               oldest_recording timestamptz, newest_recording timestamptz, expired_rows bigint, complies boolean,
               held_ranges tstzrange[], held_segments bigint, held_bytes bigint,
               purge_pending_files bigint, purge_pending_bytes bigint)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.retention_report() IS
    'Per camera (manage_retention): the retention in force, oldest recording, whether anything past it is still kept, held ranges and bytes, files awaiting removal';

------------------------------------------------------------------------------
-- Storage reconciliation
------------------------------------------------------------------------------
CREATE SEQUENCE vms.storage_checks_id_seq AS bigint;
CREATE TABLE vms.storage_checks (
    id                     bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.storage_checks_id_seq'::pg_catalog.regclass),
    camera_id              integer NOT NULL,
    recorder               text NOT NULL,
    checked_at             timestamptz NOT NULL DEFAULT pg_catalog.now(),
    files_checked          bigint NOT NULL CHECK (files_checked >= 0),
    hashes_verified        boolean NOT NULL,
    orphan_paths           text[] NOT NULL DEFAULT '{}',
    missing_segment_ids    bigint[] NOT NULL DEFAULT '{}',
    mismatched_segment_ids bigint[] NOT NULL DEFAULT '{}',
    orphans_removed        integer NOT NULL DEFAULT 0 CHECK (orphans_removed >= 0)
);
ALTER SEQUENCE vms.storage_checks_id_seq OWNED BY vms.storage_checks.id;
CREATE INDEX ON vms.storage_checks (camera_id, checked_at);
COMMENT ON TABLE vms.storage_checks IS
    'Results of recorders'' storage checks: orphan files, rows whose file is missing, files whose SHA-256 does not match';
ALTER TABLE vms.storage_checks ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.storage_checks FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vms.storage_checks FOR SELECT
    USING (vms.authorize('manage_retention', camera_id));
SELECT pg_catalog.pg_extension_config_dump('vms.storage_checks', '');
SELECT pg_catalog.pg_extension_config_dump('vms.storage_checks_id_seq', '');

-- What this recorder should have on disk for a camera: its registered files
-- and those released but not yet confirmed removed.
CREATE FUNCTION vms._storage_manifest(camera_id integer)
RETURNS TABLE (segment_id bigint, path text, bytes bigint, sha256 bytea, state text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me text := vms._invoker_name();
BEGIN
    PERFORM vms._require_recorder_role();
    IF camera_id IS NULL THEN
        RAISE EXCEPTION 'camera_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY SELECT s.id, s.path, s.bytes, s.sha256, 'recorded'::text FROM vms.segments s
                  WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id AND s.recorder OPERATOR(pg_catalog.=) me
                  ORDER BY s.start_time;
    RETURN QUERY SELECT f.segment_id, f.path, f.bytes, f.sha256, 'released'::text
                   FROM vms._released_files(me, camera_id, 2147483647) f;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('storage_manifest', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._storage_manifest(integer) IS 'Body of vms.storage_manifest(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.storage_manifest(camera_id integer)
RETURNS TABLE (segment_id bigint, path text, bytes bigint, sha256 bytea, state text)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.storage_manifest(integer) IS
    'The files this recorder should hold for a camera: recorded segments and released files awaiting removal (recorders only)';

CREATE FUNCTION vms._storage_check_report(camera_id integer, files_checked bigint, hashes_verified boolean,
                                          orphan_paths text[], missing_segment_ids bigint[],
                                          mismatched_segment_ids bigint[], orphans_removed integer)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me text := vms._invoker_name();
    new_id bigint;
    foreign_ids bigint[];
BEGIN
    PERFORM vms._require_recorder_role();
    IF camera_id IS NULL OR files_checked IS NULL OR hashes_verified IS NULL THEN
        RAISE EXCEPTION 'camera_id, files_checked and hashes_verified must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Only a recorder that holds files of the camera reports on it (and an
    -- unknown camera answers the same: no existence oracle).
    IF NOT EXISTS (SELECT 1 FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id
                                                 AND c.recorder OPERATOR(pg_catalog.=) me)
       AND NOT EXISTS (SELECT 1 FROM vms.segments s WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id
                                                      AND s.recorder OPERATOR(pg_catalog.=) me) THEN
        PERFORM vms._deny(pg_catalog.format('recorder %s holds no recordings of camera %s', me, camera_id));
    END IF;
    IF COALESCE(pg_catalog.cardinality(orphan_paths), 0) > 10000 OR COALESCE(pg_catalog.cardinality(missing_segment_ids), 0) > 100000
       OR COALESCE(pg_catalog.cardinality(mismatched_segment_ids), 0) > 100000 THEN
        RAISE EXCEPTION 'too many findings in one report (at most 10000 orphans, 100000 missing or mismatched)'
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    -- A recorder reports on its own files only.
    SELECT pg_catalog.array_agg(x) INTO foreign_ids
      FROM pg_catalog.unnest(COALESCE(missing_segment_ids, '{}') || COALESCE(mismatched_segment_ids, '{}')) x
     WHERE NOT EXISTS (SELECT 1 FROM vms.segments s WHERE s.id OPERATOR(pg_catalog.=) x
                          AND s.camera_id OPERATOR(pg_catalog.=) camera_id AND s.recorder OPERATOR(pg_catalog.=) me);
    IF foreign_ids IS NOT NULL THEN
        RAISE EXCEPTION 'segments % are not recordings of camera % by %', foreign_ids, camera_id, me
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO vms.storage_checks (camera_id, recorder, files_checked, hashes_verified, orphan_paths,
                                    missing_segment_ids, mismatched_segment_ids, orphans_removed)
    VALUES (camera_id, me, files_checked, hashes_verified, COALESCE(orphan_paths, '{}'),
            COALESCE(missing_segment_ids, '{}'), COALESCE(mismatched_segment_ids, '{}'), COALESCE(orphans_removed, 0))
    RETURNING id INTO new_id;
    PERFORM vms._audit('storage_check', camera_id, new_id::text,
                       pg_catalog.jsonb_build_object('files_checked', files_checked, 'hashes_verified', hashes_verified,
                                                     'orphans', COALESCE(pg_catalog.cardinality(orphan_paths), 0),
                                                     'orphans_removed', COALESCE(orphans_removed, 0),
                                                     'missing', COALESCE(pg_catalog.cardinality(missing_segment_ids), 0),
                                                     'mismatched', COALESCE(pg_catalog.cardinality(mismatched_segment_ids), 0)));
    -- A file that no longer matches its hash was altered or damaged: an alarm of its own.
    IF COALESCE(pg_catalog.cardinality(mismatched_segment_ids), 0) > 0 THEN
        PERFORM vms._audit('storage_hash_mismatch', camera_id, new_id::text,
                           pg_catalog.jsonb_build_object('segment_ids', mismatched_segment_ids));
    END IF;
    IF COALESCE(pg_catalog.cardinality(missing_segment_ids), 0) > 0 THEN
        PERFORM vms._audit('storage_file_missing', camera_id, new_id::text,
                           pg_catalog.jsonb_build_object('segment_ids', missing_segment_ids));
    END IF;
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('storage_check', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._storage_check_report(integer, bigint, boolean, text[], bigint[], bigint[], integer) IS 'Body of vms.storage_check_report(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.storage_check_report(camera_id integer, files_checked bigint, hashes_verified boolean,
                                         orphan_paths text[], missing_segment_ids bigint[],
                                         mismatched_segment_ids bigint[], orphans_removed integer DEFAULT 0)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.storage_check_report(integer, bigint, boolean, text[], bigint[], bigint[], integer) IS
    'A recorder reports a storage check of one camera (orphans, missing files, hash mismatches); audited; returns the check id';

CREATE FUNCTION vms._storage_forget_missing(camera_id integer, segment_ids bigint[])
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me text := vms._invoker_name();
    reported bigint[];
    refused bigint[];
    n bigint;
    forgotten jsonb;
BEGIN
    PERFORM vms._require_recorder_role();
    IF camera_id IS NULL OR segment_ids IS NULL THEN
        RAISE EXCEPTION 'camera_id and segment_ids must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Only rows the recorder's latest check of this camera found without a file.
    SELECT k.missing_segment_ids INTO reported FROM vms.storage_checks k
     WHERE k.camera_id OPERATOR(pg_catalog.=) camera_id AND k.recorder OPERATOR(pg_catalog.=) me
     ORDER BY k.id DESC LIMIT 1;
    SELECT pg_catalog.array_agg(x) INTO refused FROM pg_catalog.unnest(segment_ids) x
     WHERE NOT x OPERATOR(pg_catalog.=) ANY (COALESCE(reported, '{}'));
    IF refused IS NOT NULL THEN
        RAISE EXCEPTION 'segments % were not reported missing by the latest storage check of camera %', refused, camera_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run the storage check (vms-storage check) first; only rows it found without a file can be forgotten.';
    END IF;
    -- Held footage is evidence: its loss is reported, never tidied away.
    SELECT pg_catalog.array_agg(s.id) INTO refused FROM vms.segments s
     WHERE s.id OPERATOR(pg_catalog.=) ANY (segment_ids) AND s.camera_id OPERATOR(pg_catalog.=) camera_id
       AND EXISTS (SELECT 1 FROM vms.active_holds h WHERE h.camera_id OPERATOR(pg_catalog.=) s.camera_id
                      AND s.start_time OPERATOR(pg_catalog.<) h.to_time AND s.end_time OPERATOR(pg_catalog.>=) h.from_time);
    IF refused IS NOT NULL THEN
        RAISE EXCEPTION 'segments % are under an evidence hold; their rows are kept though the files are missing', refused
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    WITH d AS (DELETE FROM vms.segments s
                WHERE s.id OPERATOR(pg_catalog.=) ANY (segment_ids) AND s.camera_id OPERATOR(pg_catalog.=) camera_id
                  AND s.recorder OPERATOR(pg_catalog.=) me
               RETURNING s.id, s.path, s.start_time)
    SELECT pg_catalog.count(*), pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', d.id, 'path', d.path,
                                                                                  'start_time', d.start_time))
      INTO n, forgotten FROM d;
    PERFORM vms._audit('storage_forget_missing', camera_id, NULL,
                       pg_catalog.jsonb_build_object('rows_removed', n, 'segments', forgotten));
    RETURN n;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('storage_forget_missing', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._storage_forget_missing(integer, bigint[]) IS 'Body of vms.storage_forget_missing(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.storage_forget_missing(camera_id integer, segment_ids bigint[])
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.storage_forget_missing(integer, bigint[]) IS
    'Repair: removes index rows whose file the latest storage check found missing (the recorder that wrote them; never held footage); audited';

CREATE FUNCTION vms._storage_report()
RETURNS TABLE (camera_id integer, camera_name text, segments bigint, bytes bigint,
               oldest_recording timestamptz, newest_recording timestamptz,
               purge_pending_files bigint, purge_pending_bytes bigint,
               last_check_at timestamptz, last_check_recorder text, files_checked bigint, hashes_verified boolean,
               orphans integer, missing integer, mismatched integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    c vms.cameras;
    k vms.storage_checks;
    pending record;
BEGIN
    IF NOT vms._is_system_manager(vms._invoker()) AND NOT vms._invoker_holds('manage_retention', false) THEN
        PERFORM vms._deny('manage_retention is required');
    END IF;
    FOR c IN SELECT * FROM vms._retention_cameras() LOOP
        camera_id := c.id;
        camera_name := c.name;
        SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(s.bytes), 0), pg_catalog.min(s.start_time), pg_catalog.max(s.end_time)
          INTO segments, bytes, oldest_recording, newest_recording
          FROM vms.segments s WHERE s.camera_id OPERATOR(pg_catalog.=) c.id;
        SELECT * INTO pending FROM vms._purge_pending(c.id);
        purge_pending_files := pending.files;
        purge_pending_bytes := pending.bytes;
        SELECT * INTO k FROM vms.storage_checks x WHERE x.camera_id OPERATOR(pg_catalog.=) c.id ORDER BY x.id DESC LIMIT 1;
        last_check_at := k.checked_at;
        last_check_recorder := k.recorder;
        files_checked := k.files_checked;
        hashes_verified := k.hashes_verified;
        orphans := pg_catalog.cardinality(k.orphan_paths);
        missing := pg_catalog.cardinality(k.missing_segment_ids);
        mismatched := pg_catalog.cardinality(k.mismatched_segment_ids);
        RETURN NEXT;
    END LOOP;
    PERFORM vms._audit('storage_report', NULL, NULL, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('storage_report', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._storage_report() IS 'Body of vms.storage_report(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.storage_report()
RETURNS TABLE (camera_id integer, camera_name text, segments bigint, bytes bigint,
               oldest_recording timestamptz, newest_recording timestamptz,
               purge_pending_files bigint, purge_pending_bytes bigint,
               last_check_at timestamptz, last_check_recorder text, files_checked bigint, hashes_verified boolean,
               orphans integer, missing integer, mismatched integer)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.storage_report() IS
    'Per camera (manage_retention): segments and bytes indexed, files awaiting removal, and the latest recorder storage check';

REVOKE ALL ON vms.storage_checks, vms.storage_checks_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._retention_cameras(), vms._purge_pending(integer), vms._expired_rows(integer, timestamptz), vms._retention_report(), vms.retention_report(),
                       vms._storage_manifest(integer), vms.storage_manifest(integer),
                       vms._storage_check_report(integer, bigint, boolean, text[], bigint[], bigint[], integer),
                       vms.storage_check_report(integer, bigint, boolean, text[], bigint[], bigint[], integer),
                       vms._storage_forget_missing(integer, bigint[]), vms.storage_forget_missing(integer, bigint[]),
                       vms._storage_report(), vms.storage_report() FROM PUBLIC;
GRANT SELECT ON vms.storage_checks TO vms_user;
GRANT EXECUTE ON FUNCTION vms.retention_report(), vms.storage_manifest(integer),
                          vms.storage_check_report(integer, bigint, boolean, text[], bigint[], bigint[], integer),
                          vms.storage_forget_missing(integer, bigint[]), vms.storage_report() TO vms_user;
