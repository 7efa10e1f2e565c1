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
