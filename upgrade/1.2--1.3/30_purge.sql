------------------------------------------------------------------------------
-- The purge queue: segment files that retention has released.  The database
-- never deletes a file: the recorder that wrote it claims it, unlinks it and
-- confirms.  Two forms, both written in the transaction that removes the rows:
--  * vms.purge_queue: one row per file, from the row-deletion path;
--  * vms.purge_batches: a whole expired daily partition, detached from
--    vms.segments and kept (renamed vms.expired_segments_p<day>) as the list
--    of its files, so dropping a day costs no per-row work.  apply_retention
--    drops the table once its last file is confirmed.
------------------------------------------------------------------------------
CREATE TABLE vms.purge_queue (
    segment_id  bigint PRIMARY KEY,
    camera_id   integer NOT NULL,
    recorder    text NOT NULL,
    start_time  timestamptz NOT NULL,
    end_time    timestamptz,
    path        text NOT NULL,
    bytes       bigint NOT NULL,
    sha256      bytea NOT NULL,
    released_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX ON vms.purge_queue (recorder, camera_id, start_time);
COMMENT ON TABLE vms.purge_queue IS
    'Segment files released by retention, one row each, until their recorder confirms it removed them (vms.purge_confirm)';

CREATE SEQUENCE vms.purge_batches_id_seq AS bigint;
CREATE TABLE vms.purge_batches (
    id          bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.purge_batches_id_seq'::pg_catalog.regclass),
    table_name  text NOT NULL UNIQUE,
    day         date NOT NULL,
    released_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE vms.purge_batches_id_seq OWNED BY vms.purge_batches.id;
COMMENT ON TABLE vms.purge_batches IS
    'Whole days of segments released by retention: each names a detached partition listing the files still to remove';

ALTER TABLE vms.purge_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.purge_queue FORCE ROW LEVEL SECURITY;
ALTER TABLE vms.purge_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.purge_batches FORCE ROW LEVEL SECURITY;
-- Read through vms.retention_report() and vms.purge_claim(); no policies.
SELECT pg_catalog.pg_extension_config_dump('vms.purge_queue', '');
SELECT pg_catalog.pg_extension_config_dump('vms.purge_batches', '');
SELECT pg_catalog.pg_extension_config_dump('vms.purge_batches_id_seq', '');

-- Raises unless the caller is a recording server.  Purging works on the files
-- a recorder wrote (segments.recorder), even after its camera moved elsewhere.
CREATE FUNCTION vms._require_recorder_role()
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF NOT vms._role_has(vms._invoker(), 'vms_recorder') THEN
        PERFORM vms._deny('only recording servers (members of vms_recorder) may do this');
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_recorder_role() IS 'Raises unless the caller is a member of vms_recorder';

-- Every released file: the queue and each batch, as one relation.  Owner only.
CREATE FUNCTION vms._released_files(recorder text, camera_id integer, max_files integer)
RETURNS TABLE (segment_id bigint, start_time timestamptz, path text, bytes bigint, sha256 bytea)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    b record;
    left_over integer := max_files;
    n integer;
    hfrom timestamptz[];
    hto timestamptz[];
BEGIN
    -- A hold placed after the release keeps the file (its index row is gone;
    -- the file stays until the hold ends).
    SELECT pg_catalog.array_agg(h.from_time), pg_catalog.array_agg(h.to_time) INTO hfrom, hto
      FROM vms.active_holds h WHERE h.camera_id OPERATOR(pg_catalog.=) camera_id;
    RETURN QUERY SELECT q.segment_id, q.start_time, q.path, q.bytes, q.sha256 FROM vms.purge_queue q
                  WHERE q.recorder OPERATOR(pg_catalog.=) recorder AND q.camera_id OPERATOR(pg_catalog.=) camera_id
                    AND NOT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest(hfrom), pg_catalog.unnest(hto)) h(f, t)
                                     WHERE q.start_time OPERATOR(pg_catalog.<) h.t
                                       AND COALESCE(q.end_time, q.start_time OPERATOR(pg_catalog.+) '24:00:00'::interval)
                                           OPERATOR(pg_catalog.>=) h.f)
                  ORDER BY q.start_time LIMIT left_over;
    GET DIAGNOSTICS n = ROW_COUNT;
    left_over := left_over - n;
    FOR b IN SELECT * FROM vms.purge_batches x ORDER BY x.day LOOP
        EXIT WHEN left_over <= 0;
        BEGIN
            RETURN QUERY EXECUTE pg_catalog.format(
                'SELECT s.id, s.start_time, s.path, s.bytes, s.sha256 FROM vms.%I s '
                'WHERE s.camera_id OPERATOR(pg_catalog.=) $1 AND s.recorder OPERATOR(pg_catalog.=) $2 '
                '  AND NOT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($4::timestamptz[]), pg_catalog.unnest($5::timestamptz[])) h(f, t) '
                '                   WHERE s.start_time OPERATOR(pg_catalog.<) h.t AND s.end_time OPERATOR(pg_catalog.>=) h.f) '
                'ORDER BY s.start_time LIMIT $3', b.table_name) USING camera_id, recorder, left_over, hfrom, hto;
            GET DIAGNOSTICS n = ROW_COUNT;
            left_over := left_over - n;
        EXCEPTION WHEN undefined_table THEN
            NULL;  -- finished and dropped by a run since the list was read
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._released_files(text, integer, integer) IS 'Files released for removal by one recorder for one camera: the queue, then the batches by day';

CREATE FUNCTION vms._purge_claim(camera_id integer, max_files integer)
RETURNS TABLE (segment_id bigint, path text, bytes bigint, sha256 bytea)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._require_recorder_role();
    IF camera_id IS NULL THEN
        RAISE EXCEPTION 'camera_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_files IS NULL OR max_files < 1 OR max_files > 100000 THEN
        RAISE EXCEPTION 'max_files must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY SELECT f.segment_id, f.path, f.bytes, f.sha256
                   FROM vms._released_files(vms._invoker_name(), camera_id, max_files) f;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('purge_claim', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._purge_claim(integer, integer) IS 'Body of vms.purge_claim(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.purge_claim(camera_id integer, max_files integer DEFAULT 1000)
RETURNS TABLE (segment_id bigint, path text, bytes bigint, sha256 bytea)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.purge_claim(integer, integer) IS
    'Files of a camera that retention released and this recorder wrote (the queue, then whole days): unlink each, then vms.purge_confirm() (recorders only; repeatable)';

CREATE FUNCTION vms._purge_confirm(camera_id integer, segment_ids bigint[])
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me text := vms._invoker_name();
    b record;
    n bigint;
    nbytes bigint;
    total bigint := 0;
    gone bigint := 0;
BEGIN
    PERFORM vms._require_recorder_role();
    IF camera_id IS NULL OR segment_ids IS NULL THEN
        RAISE EXCEPTION 'camera_id and segment_ids must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.cardinality(segment_ids) > 100000 THEN
        RAISE EXCEPTION 'at most 100000 segment ids per call' USING ERRCODE = 'program_limit_exceeded';
    END IF;
    WITH d AS (DELETE FROM vms.purge_queue q
                WHERE q.segment_id OPERATOR(pg_catalog.=) ANY (segment_ids)
                  AND q.camera_id OPERATOR(pg_catalog.=) camera_id AND q.recorder OPERATOR(pg_catalog.=) me
               RETURNING q.bytes)
    SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(d.bytes), 0) INTO total, gone FROM d;
    FOR b IN SELECT * FROM vms.purge_batches x ORDER BY x.day LOOP
        BEGIN
            EXECUTE pg_catalog.format(
                'WITH d AS (DELETE FROM vms.%I s WHERE s.camera_id OPERATOR(pg_catalog.=) $1 '
                'AND s.recorder OPERATOR(pg_catalog.=) $2 AND s.id OPERATOR(pg_catalog.=) ANY ($3) RETURNING s.bytes) '
                'SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(d.bytes), 0) FROM d', b.table_name)
                INTO n, nbytes USING camera_id, me, segment_ids;
            total := total + n;
            gone := gone + nbytes;
        EXCEPTION WHEN undefined_table THEN
            NULL;  -- finished and dropped by a run since the list was read
        END;
    END LOOP;
    PERFORM vms._audit('purge_confirm', camera_id, NULL,
                       pg_catalog.jsonb_build_object('files_confirmed', total, 'bytes', gone,
                                                     'ids_given', pg_catalog.cardinality(segment_ids)));
    RETURN total;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('purge_confirm', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._purge_confirm(integer, bigint[]) IS 'Body of vms.purge_confirm(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.purge_confirm(camera_id integer, segment_ids bigint[])
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.purge_confirm(integer, bigint[]) IS
    'A recorder confirms it removed released files (ids from vms.purge_claim); ids already confirmed are ignored; returns how many were confirmed now';

REVOKE ALL ON vms.purge_queue, vms.purge_batches, vms.purge_batches_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._require_recorder_role(), vms._released_files(text, integer, integer),
                       vms._purge_claim(integer, integer), vms.purge_claim(integer, integer),
                       vms._purge_confirm(integer, bigint[]), vms.purge_confirm(integer, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vms.purge_claim(integer, integer), vms.purge_confirm(integer, bigint[]) TO vms_user;
