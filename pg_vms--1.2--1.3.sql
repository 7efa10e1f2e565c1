-- pg_vms 1.2 -> 1.3: retention, evidence holds and the storage lifecycle.
-- Released, so frozen: it was assembled from upgrade/1.2--1.3/*.sql (see the
-- git history) and is never edited.  Same conventions as pg_vms--1.0.sql:
-- SECURITY DEFINER functions pin search_path = pg_catalog, vms, pg_temp;
-- nothing is granted to PUBLIC; each file revokes and grants what it creates.
-- docs/retention.md explains the model.

\echo Use "ALTER EXTENSION pg_vms UPDATE TO '1.3'" to load this file. \quit
------------------------------------------------------------------------------
-- Retention policy: per camera, a default, and the cap vms.max_retention that
-- only a superuser sets (src/retention.c).  Events and face events follow
-- their camera's retention; the audit log has its own, vms.audit_retention.
------------------------------------------------------------------------------
ALTER TABLE vms.cameras ADD COLUMN retention interval CHECK (retention > '0'::interval);
COMMENT ON COLUMN vms.cameras.retention IS
    'How long this camera''s recordings, events and face events are kept (NULL: the default); set with vms.set_retention()';

CREATE TABLE vms.retention_settings (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    default_retention interval NOT NULL CHECK (default_retention > '0'::interval),
    changed_by        text NOT NULL,
    changed_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE vms.retention_settings IS
    'The default retention of cameras without their own, once set with vms.set_default_retention() (until then 30 days)';
ALTER TABLE vms.retention_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.retention_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY readable ON vms.retention_settings FOR SELECT USING (true);
SELECT pg_catalog.pg_extension_config_dump('vms.retention_settings', '');

-- A duration setting as an interval.  current_setting() shows it with a unit
-- ('30d', '5min'), which interval input reads; pg_settings would build every
-- setting on each call (half a second for a thousand cameras).
CREATE FUNCTION vms._setting_interval(name text)
RETURNS interval LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT pg_catalog.justify_hours(pg_catalog.current_setting($1)::interval);
$$;
COMMENT ON FUNCTION vms._setting_interval(text) IS 'A duration setting (in seconds) as an interval';

-- The default: as set, or 30 days.  (No row is installed: a dump carries the
-- row an administrator set, and a restore must not meet one already there.)
CREATE FUNCTION vms._default_retention()
RETURNS interval LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT COALESCE((SELECT s.default_retention FROM vms.retention_settings s), '30 days'::interval);
$$;
COMMENT ON FUNCTION vms._default_retention() IS 'The default retention of cameras: as set, or 30 days';

-- What retention applies: the camera's own or the default, never above the cap.
CREATE FUNCTION vms._effective_retention(camera_retention interval)
RETURNS interval LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT LEAST(COALESCE($1, vms._default_retention()), vms._setting_interval('vms.max_retention'));
$$;
COMMENT ON FUNCTION vms._effective_retention(interval) IS
    'The retention in force for a camera: its own or the default, capped by vms.max_retention';

-- Validates and normalises a retention: positive, exact (a month is 30
-- days), within the cap.
CREATE FUNCTION vms._check_retention(retention interval)
RETURNS interval LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    cap interval := vms._setting_interval('vms.max_retention');
    secs numeric := pg_catalog.date_part('epoch', retention)::numeric;
BEGIN
    IF secs <= 0 THEN
        RAISE EXCEPTION 'retention must be positive, not %', retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention > cap THEN
        RAISE EXCEPTION 'retention % is longer than vms.max_retention (%)', retention, cap
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The cap is set by a superuser (postgresql.conf or ALTER SYSTEM); evidence that must be kept longer is protected with vms.place_hold().';
    END IF;
    RETURN pg_catalog.justify_hours(pg_catalog.make_interval(secs => secs::double precision));
END
$$;
COMMENT ON FUNCTION vms._check_retention(interval) IS 'Raises unless a retention is positive and within vms.max_retention; returns it normalised';

CREATE FUNCTION vms._set_retention(camera_id integer, retention interval)
RETURNS interval LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    old interval;
    new interval;
BEGIN
    PERFORM vms._require_camera('manage_retention', camera_id);
    IF retention IS NOT NULL THEN
        new := vms._check_retention(retention);
    END IF;
    SELECT c.retention INTO old FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id FOR UPDATE;
    UPDATE vms.cameras c SET retention = new, updated_at = pg_catalog.now() WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    PERFORM vms._audit('set_retention', camera_id, NULL,
                       pg_catalog.jsonb_build_object('old', old::text, 'new', new::text,
                                                     'effective', vms._effective_retention(new)::text));
    RETURN vms._effective_retention(new);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('set_retention', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_retention(integer, interval) IS 'Body of vms.set_retention(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_retention(camera_id integer, retention interval)
RETURNS interval AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_retention(integer, interval) IS
    'Sets how long a camera''s recordings are kept (NULL: the default), at most vms.max_retention (manage_retention on the camera); returns the retention in force';

CREATE FUNCTION vms._set_default_retention(retention interval)
RETURNS interval LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    old interval;
    new interval;
BEGIN
    PERFORM vms._require_all('manage_retention');
    IF retention IS NULL THEN
        RAISE EXCEPTION 'retention must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    new := vms._check_retention(retention);
    old := vms._default_retention();
    INSERT INTO vms.retention_settings AS s (default_retention, changed_by) VALUES (new, vms._invoker_name())
    ON CONFLICT (singleton) DO UPDATE SET default_retention = EXCLUDED.default_retention,
                                          changed_by = EXCLUDED.changed_by, changed_at = pg_catalog.now();
    PERFORM vms._audit('set_default_retention', NULL, NULL,
                       pg_catalog.jsonb_build_object('old', old::text, 'new', new::text));
    RETURN new;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('set_default_retention', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_default_retention(interval) IS 'Body of vms.set_default_retention(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_default_retention(retention interval)
RETURNS interval AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_default_retention(interval) IS
    'Sets the retention of cameras without their own, at most vms.max_retention (manage_retention, scope all)';

-- The policy per camera, as the caller may see cameras.
CREATE VIEW vms.camera_retention WITH (security_invoker = true) AS
SELECT c.id AS camera_id, c.name AS camera_name, c.retention AS camera_setting,
       vms._default_retention() AS default_retention, vms._setting_interval('vms.max_retention') AS max_retention,
       vms._effective_retention(c.retention) AS effective_retention,
       COALESCE(c.retention, vms._default_retention()) OPERATOR(pg_catalog.>) vms._setting_interval('vms.max_retention') AS capped
  FROM vms.cameras c;
COMMENT ON VIEW vms.camera_retention IS
    'Retention per camera: its own setting, the default, the cap, what is in force and whether the cap cut it';

REVOKE ALL ON vms.retention_settings, vms.camera_retention FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._setting_interval(text), vms._default_retention(), vms._effective_retention(interval), vms._check_retention(interval),
                       vms._set_retention(integer, interval), vms.set_retention(integer, interval),
                       vms._set_default_retention(interval), vms.set_default_retention(interval) FROM PUBLIC;
GRANT SELECT ON vms.retention_settings, vms.camera_retention TO vms_user;
GRANT EXECUTE ON FUNCTION vms.set_retention(integer, interval), vms.set_default_retention(interval) TO vms_user;
-- The view calls these as the querying user.
GRANT EXECUTE ON FUNCTION vms._setting_int(text), vms._setting_interval(text), vms._default_retention(),
                          vms._effective_retention(interval) TO vms_user;
------------------------------------------------------------------------------
-- Evidence holds: a camera and time range kept whatever the retention, with
-- a reason, an owner and an optional expiry.  Placed and released with
-- manage_retention on the camera; a release may need a second person.
------------------------------------------------------------------------------
CREATE SEQUENCE vms.evidence_holds_id_seq AS bigint;
CREATE TABLE vms.evidence_holds (
    id                     bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.evidence_holds_id_seq'::pg_catalog.regclass),
    camera_id              integer NOT NULL REFERENCES vms.cameras (id),
    from_time              timestamptz NOT NULL,
    to_time                timestamptz NOT NULL,
    reason                 text NOT NULL,
    owner                  text NOT NULL,
    placed_by              text NOT NULL,
    placed_at              timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at             timestamptz,
    release_needs_approval boolean NOT NULL DEFAULT false,
    release_requested_by   text,
    release_requested_at   timestamptz,
    release_reason         text,
    released_by            text,
    released_at            timestamptz,
    expiry_recorded_at     timestamptz,
    CHECK (to_time > from_time),
    CHECK (expires_at IS NULL OR expires_at > placed_at)
);
ALTER SEQUENCE vms.evidence_holds_id_seq OWNED BY vms.evidence_holds.id;
CREATE INDEX ON vms.evidence_holds (camera_id, from_time);
COMMENT ON TABLE vms.evidence_holds IS
    'Evidence holds: recordings, events and face events of a camera in [from_time, to_time) are kept while the hold is active';
COMMENT ON COLUMN vms.evidence_holds.owner IS 'Who is responsible for the hold (the investigator)';
COMMENT ON COLUMN vms.evidence_holds.expires_at IS 'When the hold ends by itself (NULL: only when released)';
COMMENT ON COLUMN vms.evidence_holds.release_needs_approval IS
    'Release takes two people: one asks (vms.release_hold), another approves (vms.approve_hold_release)';

ALTER TABLE vms.evidence_holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.evidence_holds FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vms.evidence_holds FOR SELECT
    USING (camera_id OPERATOR(pg_catalog.=) ANY (vms.visible_cameras()));
SELECT pg_catalog.pg_extension_config_dump('vms.evidence_holds', '');
SELECT pg_catalog.pg_extension_config_dump('vms.evidence_holds_id_seq', '');

-- Holds in force now (released ones and those past their expiry are not).
CREATE VIEW vms.active_holds WITH (security_invoker = true) AS
SELECT h.* FROM vms.evidence_holds h
 WHERE h.released_at IS NULL
   AND (h.expires_at IS NULL OR h.expires_at OPERATOR(pg_catalog.>) pg_catalog.now());
COMMENT ON VIEW vms.active_holds IS 'Evidence holds in force now';

CREATE FUNCTION vms._place_hold(camera_id integer, from_time timestamptz, to_time timestamptz, reason text,
                                expires_at timestamptz, owner text, release_needs_approval boolean)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    new_id bigint;
    who text := COALESCE(owner, SESSION_USER::text);
BEGIN
    PERFORM vms._require_camera('manage_retention', camera_id);
    IF from_time IS NULL OR to_time IS NULL THEN
        RAISE EXCEPTION 'from_time and to_time must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_time <= from_time THEN
        RAISE EXCEPTION 'the hold''s range is empty or reversed: to_time (%) must be after from_time (%)', to_time, from_time
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.isfinite(from_time) IS NOT TRUE OR pg_catalog.isfinite(to_time) IS NOT TRUE THEN
        RAISE EXCEPTION 'a hold needs a finite time range' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A hold that should last is placed without expires_at; its range still names the footage.';
    END IF;
    PERFORM vms._check_text('reason', reason, 2000);
    PERFORM vms._check_text('owner', who, 63);
    IF expires_at IS NOT NULL AND expires_at <= pg_catalog.now() THEN
        RAISE EXCEPTION 'expires_at must be in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO vms.evidence_holds (camera_id, from_time, to_time, reason, owner, placed_by, expires_at,
                                    release_needs_approval)
    VALUES (camera_id, from_time, to_time, reason, who, vms._invoker_name(), expires_at,
            COALESCE(release_needs_approval, false))
    RETURNING id INTO new_id;
    PERFORM vms._audit('place_hold', camera_id, new_id::text,
                       pg_catalog.jsonb_build_object('from_time', from_time, 'to_time', to_time, 'reason', reason,
                                                     'owner', who, 'expires_at', expires_at,
                                                     'release_needs_approval', COALESCE(release_needs_approval, false)));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('place_hold', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._place_hold(integer, timestamptz, timestamptz, text, timestamptz, text, boolean) IS 'Body of vms.place_hold(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.place_hold(camera_id integer, from_time timestamptz, to_time timestamptz, reason text,
                               expires_at timestamptz DEFAULT NULL, owner text DEFAULT NULL,
                               release_needs_approval boolean DEFAULT false)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.place_hold(integer, timestamptz, timestamptz, text, timestamptz, text, boolean) IS
    'Places an evidence hold on a camera''s footage in [from_time, to_time) (manage_retention on the camera); returns its id';

-- The hold, locked, for a release step; raises unless the caller may act on it.
CREATE FUNCTION vms._hold_for_release(hold_id bigint)
RETURNS vms.evidence_holds LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    h vms.evidence_holds;
BEGIN
    IF hold_id IS NULL THEN
        RAISE EXCEPTION 'hold_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO h FROM vms.evidence_holds x WHERE x.id OPERATOR(pg_catalog.=) hold_id FOR UPDATE;
    -- No existence oracle: an unknown hold and a hidden one answer alike.
    IF NOT FOUND OR NOT vms._authorized('manage_retention', h.camera_id, pg_catalog.now()) THEN
        PERFORM vms._deny(pg_catalog.format('manage_retention on the camera of hold %s', hold_id));
    END IF;
    IF h.released_at IS NOT NULL THEN
        RAISE EXCEPTION 'hold % was already released at %', hold_id, h.released_at
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN h;
END
$$;
COMMENT ON FUNCTION vms._hold_for_release(bigint) IS 'Locks a hold for a release step and checks the caller''s right';

CREATE FUNCTION vms._release_hold(hold_id bigint, reason text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    h vms.evidence_holds;
    state text;
BEGIN
    h := vms._hold_for_release(hold_id);
    PERFORM vms._check_text('reason', reason, 2000);
    IF h.release_needs_approval OR pg_catalog.current_setting('vms.hold_release_requires_approval')::boolean THEN
        IF h.release_requested_at IS NOT NULL THEN
            RAISE EXCEPTION 'release of hold % was already requested by % and waits for approval', hold_id, h.release_requested_by
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Another person with manage_retention on the camera approves it with vms.approve_hold_release().';
        END IF;
        UPDATE vms.evidence_holds x SET release_requested_by = SESSION_USER::text, release_requested_at = pg_catalog.now(),
               release_reason = reason
         WHERE x.id OPERATOR(pg_catalog.=) hold_id;
        state := 'approval_pending';
    ELSE
        UPDATE vms.evidence_holds x SET released_by = SESSION_USER::text, released_at = pg_catalog.now(),
               release_reason = reason
         WHERE x.id OPERATOR(pg_catalog.=) hold_id;
        state := 'released';
    END IF;
    PERFORM vms._audit('release_hold', h.camera_id, hold_id::text,
                       pg_catalog.jsonb_build_object('reason', reason, 'state', state,
                                                     'from_time', h.from_time, 'to_time', h.to_time));
    RETURN state;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('release_hold', h.camera_id, hold_id::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._release_hold(bigint, text) IS 'Body of vms.release_hold(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.release_hold(hold_id bigint, reason text)
RETURNS text AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.release_hold(bigint, text) IS
    'Releases an evidence hold (manage_retention on the camera): ''released'', or ''approval_pending'' when a second person must approve';

CREATE FUNCTION vms._approve_hold_release(hold_id bigint)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    h vms.evidence_holds;
BEGIN
    h := vms._hold_for_release(hold_id);
    IF h.release_requested_at IS NULL THEN
        RAISE EXCEPTION 'no release of hold % has been requested', hold_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Ask for the release with vms.release_hold() first.';
    END IF;
    -- The second person is another login, not another role of the same one.
    IF h.release_requested_by OPERATOR(pg_catalog.=) SESSION_USER::text THEN
        PERFORM vms._deny(pg_catalog.format('the release of hold %s must be approved by someone other than %s, who asked for it',
                                            hold_id, h.release_requested_by));
    END IF;
    UPDATE vms.evidence_holds x SET released_by = SESSION_USER::text, released_at = pg_catalog.now()
     WHERE x.id OPERATOR(pg_catalog.=) hold_id;
    PERFORM vms._audit('approve_hold_release', h.camera_id, hold_id::text,
                       pg_catalog.jsonb_build_object('requested_by', h.release_requested_by,
                                                     'reason', h.release_reason));
    RETURN 'released';
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('approve_hold_release', h.camera_id, hold_id::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._approve_hold_release(bigint) IS 'Body of vms.approve_hold_release(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.approve_hold_release(hold_id bigint)
RETURNS text AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.approve_hold_release(bigint) IS
    'Approves a requested hold release (manage_retention on the camera, another person than the one who asked)';

REVOKE ALL ON vms.evidence_holds, vms.evidence_holds_id_seq, vms.active_holds FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._place_hold(integer, timestamptz, timestamptz, text, timestamptz, text, boolean),
                       vms.place_hold(integer, timestamptz, timestamptz, text, timestamptz, text, boolean),
                       vms._hold_for_release(bigint), vms._release_hold(bigint, text), vms.release_hold(bigint, text),
                       vms._approve_hold_release(bigint), vms.approve_hold_release(bigint) FROM PUBLIC;
GRANT SELECT ON vms.evidence_holds, vms.active_holds TO vms_user;
GRANT EXECUTE ON FUNCTION vms.place_hold(integer, timestamptz, timestamptz, text, timestamptz, text, boolean),
                          vms.release_hold(bigint, text), vms.approve_hold_release(bigint) TO vms_user;
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
------------------------------------------------------------------------------
-- The time-partitioned tables no longer carry foreign keys to vms.cameras.
-- Each partition had its own, so creating, detaching or dropping a partition
-- locked vms.cameras, which every API call and every row-level security check
-- reads: retention could then hardly ever retire a partition under load, and
-- waited in the lock queue in front of every API call (TAP 012).  The API
-- keeps the reference sound instead: rows are only registered for a camera
-- that exists, and vms.remove_camera() refuses a camera that still has any.
------------------------------------------------------------------------------
ALTER TABLE vms.segments DROP CONSTRAINT segments_camera_id_fkey;
ALTER TABLE vms.events DROP CONSTRAINT events_camera_id_fkey;
ALTER TABLE vms.face_events DROP CONSTRAINT face_events_camera_id_fkey;

CREATE OR REPLACE FUNCTION vms._remove_camera(camera_id integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    cam_name text;
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera_id);
    SELECT c.name INTO cam_name FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id FOR UPDATE;
    -- No registration may slip in between the check and the delete: SHARE
    -- waits for inserts in progress (readers are not held up) and keeps new
    -- ones out until this commits.  Camera removal is rare; inserts are short.
    LOCK TABLE ONLY vms.segments, vms.events, vms.face_events IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM vms.segments s WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.events e WHERE e.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.face_events f WHERE f.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.purge_queue q WHERE q.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.purge_batches b
                   WHERE vms._batch_has_camera(b.table_name, camera_id)) THEN
        RAISE EXCEPTION 'camera % still has recordings, events or files waiting for removal', camera_id
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Disable it with vms.update_camera(camera_id, enabled => false); retention removes the recordings.';
    END IF;
    DELETE FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    PERFORM vms._audit('remove_camera', camera_id, cam_name, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('remove_camera', camera_id, cam_name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION vms._batch_has_camera(table_name text, camera_id integer)
RETURNS boolean LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM vms.%I s WHERE s.camera_id OPERATOR(pg_catalog.=) $1)', table_name)
        INTO found USING camera_id;
    RETURN found;
EXCEPTION WHEN undefined_table THEN
    RETURN false;
END
$$;
COMMENT ON FUNCTION vms._batch_has_camera(text, integer) IS 'Does a purge batch still list files of the camera?';
REVOKE ALL ON FUNCTION vms._batch_has_camera(text, integer) FROM PUBLIC;

------------------------------------------------------------------------------
-- Exclusive locks for partition changes, taken without queueing.
--
-- Adding or retiring a partition needs an ACCESS EXCLUSIVE lock on its parent.
-- A session queued for such a lock stalls every query behind it, and one that
-- waits while already holding the lock of another parent can close a deadlock
-- cycle with a reader of both (found by TAP 009: the worker creating segments
-- and audit_log partitions against a report reading audit_log, then segments).
-- So pg_vms takes these locks with NOWAIT, retried for vms.partition_lock_wait.
------------------------------------------------------------------------------
-- Takes ACCESS EXCLUSIVE locks on the given tables (schema vms) without ever
-- queueing: all or none, retried with NOWAIT until vms.partition_lock_wait.
CREATE FUNCTION vms._lock_nowait(tables text[], mode text DEFAULT 'ACCESS EXCLUSIVE')
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    deadline timestamptz := pg_catalog.clock_timestamp()
                            OPERATOR(pg_catalog.+) vms._setting_interval('vms.partition_lock_wait');
    rel text;
BEGIN
    IF mode NOT IN ('ACCESS EXCLUSIVE', 'SHARE ROW EXCLUSIVE', 'SHARE') THEN
        RAISE EXCEPTION 'lock mode % is not one pg_vms uses', mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.cardinality(tables) IS NULL OR pg_catalog.cardinality(tables) = 0 THEN
        RETURN true;
    END IF;
    LOOP
        BEGIN
            FOREACH rel IN ARRAY tables LOOP
                -- ONLY: a partitioned parent alone, not every partition under it.
                EXECUTE pg_catalog.format('LOCK TABLE ONLY vms.%I IN %s MODE NOWAIT', rel, mode);
            END LOOP;
            RETURN true;
        EXCEPTION WHEN lock_not_available THEN
            -- The subtransaction let go of the locks it had taken.
            NULL;
        END;
        IF pg_catalog.clock_timestamp() >= deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_catalog.pg_sleep(0.005 + pg_catalog.random() * 0.02);
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._lock_nowait(text[], text) IS
    'Locks tables without queueing (NOWAIT, retried until vms.partition_lock_wait); all or none';

CREATE OR REPLACE FUNCTION vms._ensure_partition(parent text, from_ts timestamptz, to_ts timestamptz, suffix text)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    part text := parent || '_p' || suffix;
    t vms.partitioned_tables%ROWTYPE;
    cols text;
BEGIN
    IF pg_catalog.to_regclass(pg_catalog.format('vms.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    SELECT * INTO t FROM vms.partitioned_tables p WHERE p.parent OPERATOR(pg_catalog.=) _ensure_partition.parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'vms.% is not a partitioned table of pg_vms', parent USING ERRCODE = 'undefined_table';
    END IF;
    -- Creating a partition takes an ACCESS EXCLUSIVE lock on the parent.  Take
    -- it first and never queue: a creator that waits while holding another parent's lock
    -- can close a deadlock cycle with a reader of both (TAP 009, TAP 012).
    -- A relation lock also makes this backend read the catalog changes the
    -- previous holder committed, so the check below sees its table.
    IF NOT vms._lock_nowait(ARRAY[parent]) THEN
        RAISE EXCEPTION 'partition vms.% could not be created now: its tables stayed busy for vms.partition_lock_wait', part
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Try again.  The worker creates partitions days ahead; only late or early data meets this.';
    END IF;
    IF pg_catalog.to_regclass(pg_catalog.format('vms.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE vms.%I PARTITION OF vms.%I FOR VALUES FROM (%L) TO (%L)',
                              part, parent, from_ts, to_ts);
    -- Keys on each partition, not on the parent (see the note at vms.segments).
    EXECUTE pg_catalog.format('ALTER TABLE vms.%I ADD PRIMARY KEY (%s)', part, t.key_columns);
    FOREACH cols IN ARRAY t.extra_indexes LOOP
        EXECUTE pg_catalog.format('CREATE INDEX ON vms.%I (%s)', part, cols);
    END LOOP;
    -- Statement triggers are not cloned to partitions.
    IF t.append_only THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON vms.%I '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION vms._append_only()', part);
    END IF;
    EXECUTE pg_catalog.format('COMMENT ON TABLE vms.%I IS %L', part,
                              pg_catalog.format('Partition of vms.%s for [%s, %s)', parent, from_ts, to_ts));
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION vms._lock_nowait(text[], text) FROM PUBLIC;

-- A day's partitions of every daily table, locked together (all or none) so
-- that a creator never holds one parent while waiting for the next.  Used
-- ahead of time (vms.create_partitions); a registration needs only its own
-- table's partition (vms._ensure_day_partition) and then tries this, best
-- effort.  Returns how many it made, or NULL when the tables stayed busy.
CREATE OR REPLACE FUNCTION vms._ensure_day_partitions(day date)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    from_ts timestamptz := (day::text || ' 00:00:00+00')::timestamptz;
    to_ts timestamptz := ((day + 1)::text || ' 00:00:00+00')::timestamptz;
    suffix text := pg_catalog.to_char(day, 'YYYYMMDD');
    missing text[];
    t text;
    n integer := 0;
BEGIN
    SELECT pg_catalog.array_agg(p.parent ORDER BY p.parent) INTO missing FROM vms.partitioned_tables p
     WHERE p.period OPERATOR(pg_catalog.=) 'day'
       AND pg_catalog.to_regclass(pg_catalog.format('vms.%I', p.parent || '_p' || suffix)) IS NULL;
    IF missing IS NULL THEN
        RETURN 0;
    END IF;
    IF NOT vms._lock_nowait(missing) THEN
        RETURN NULL;  -- busy: left for the next call
    END IF;
    FOREACH t IN ARRAY missing LOOP
        IF vms._ensure_partition(t, from_ts, to_ts, suffix) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- As before, but a day whose tables stay busy is left for the next call
-- instead of failing the rest.
CREATE OR REPLACE FUNCTION vms.create_partitions(days_ahead integer DEFAULT 7, days_behind integer DEFAULT 1)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    today date := (pg_catalog.now() AT TIME ZONE 'UTC')::date;
    n integer := 0;
    busy integer := 0;
    k integer;
    d integer;
    m date;
BEGIN
    IF days_ahead IS NULL OR days_behind IS NULL OR days_ahead < 0 OR days_behind < 0
       OR days_ahead > 366 OR days_behind > 366 THEN
        RAISE EXCEPTION 'days_ahead and days_behind must be between 0 and 366'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR d IN -days_behind .. days_ahead LOOP
        k := vms._ensure_day_partitions(today + d);
        IF k IS NULL THEN
            busy := busy + 1;
        ELSE
            n := n + k;
        END IF;
    END LOOP;
    FOREACH m IN ARRAY ARRAY[today, (today + '1 month'::interval)::date] LOOP
        BEGIN
            n := n + vms._ensure_audit_partition(m);
        EXCEPTION WHEN lock_not_available THEN
            busy := busy + 1;
        END;
    END LOOP;
    IF busy > 0 THEN
        RAISE NOTICE 'pg_vms: % days of partitions were left for the next call: their tables stayed busy', busy;
    END IF;
    RETURN n;
END
$$;

-- The partition of one daily table for one day, which a registration is
-- about to insert into.  Tried without queueing first; then queued, for at
-- most ten times vms.partition_lock_wait: safe from deadlock, because the
-- caller holds no other parent's exclusive lock at this point.
CREATE FUNCTION vms._ensure_day_partition(parent text, day date)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    suffix text := pg_catalog.to_char(day, 'YYYYMMDD');
BEGIN
    IF day IS NULL OR pg_catalog.to_regclass(pg_catalog.format('vms.%I', parent || '_p' || suffix)) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF NOT vms._lock_nowait(ARRAY[parent]) THEN
        -- Bounded, so that a reader idle in a transaction cannot make every
        -- later reader queue behind this request for long.
        PERFORM pg_catalog.set_config('lock_timeout', (10 * vms._setting_int('vms.partition_lock_wait'))::text, true);
        EXECUTE pg_catalog.format('LOCK TABLE ONLY vms.%I IN ACCESS EXCLUSIVE MODE', parent);
    END IF;
    RETURN vms._ensure_partition(parent, (day::text || ' 00:00:00+00')::timestamptz,
                                 ((day + 1)::text || ' 00:00:00+00')::timestamptz, suffix);
END
$$;
COMMENT ON FUNCTION vms._ensure_day_partition(text, date) IS
    'Creates the partition of one daily table for one UTC day, for a registration about to insert into it';

-- The registrations: their own partition first (after the caller's right is
-- checked: no one else may make partitions), then the 1.0/1.1 bodies, whose
-- vms._ensure_day_partitions call is best effort now.
ALTER FUNCTION vms._register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer)
    RENAME TO _register_segment_body;
ALTER FUNCTION vms._register_event(integer, timestamptz, text, jsonb) RENAME TO _register_event_body;
ALTER FUNCTION vms._register_face_event(integer, timestamptz, bigint, real, text) RENAME TO _register_face_event_body;
COMMENT ON FUNCTION vms._register_segment_body(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer) IS
    'Checks and insert of vms.register_segment() (called by vms._register_segment)';
COMMENT ON FUNCTION vms._register_event_body(integer, timestamptz, text, jsonb) IS
    'Checks and insert of vms.register_event() (called by vms._register_event)';
COMMENT ON FUNCTION vms._register_face_event_body(integer, timestamptz, bigint, real, text) IS
    'Checks and insert of vms.register_face_event() (called by vms._register_face_event)';

-- Its own partition for a registration; a lock that stays busy is audited
-- like any failed registration.
CREATE FUNCTION vms._partition_for_registration(action text, parent text, camera_id integer, t timestamptz, target text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    day date := (t AT TIME ZONE 'UTC')::date;
    part text := parent || '_p' || pg_catalog.to_char((t AT TIME ZONE 'UTC')::date, 'YYYYMMDD');
BEGIN
    PERFORM vms._require_recorder(camera_id);
    IF t IS NULL THEN
        RETURN;  -- the body reports it
    END IF;
    -- Hold the partition (ROW EXCLUSIVE, as the insert would) so that a
    -- retention run cannot retire it between here and the insert; if one
    -- retired it meanwhile, make it again.
    FOR attempt IN 1 .. 5 LOOP
        PERFORM vms._ensure_day_partition(parent, day);
        BEGIN
            EXECUTE pg_catalog.format('LOCK TABLE ONLY vms.%I IN ROW EXCLUSIVE MODE', part);
        EXCEPTION WHEN undefined_table THEN
            CONTINUE;
        END;
        EXIT WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                           WHERE i.inhrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(part))
                             AND i.inhparent OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(parent)));
    END LOOP;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail(action, camera_id, target, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._partition_for_registration(text, text, integer, timestamptz, text) IS
    'Checks the recorder, then makes the day partition a registration inserts into';

CREATE FUNCTION vms._register_segment(camera_id integer, start_time timestamptz, end_time timestamptz,
                                     path text, bytes bigint, sha256 bytea, codec text DEFAULT NULL,
                                     width integer DEFAULT NULL, height integer DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._partition_for_registration('register_segment', 'segments', camera_id, start_time, path);
    RETURN vms._register_segment_body(camera_id, start_time, end_time, path, bytes, sha256, codec, width, height);
END
$$;
COMMENT ON FUNCTION vms._register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer) IS 'Body of vms.register_segment(): runs as the owner, for the caller the trampoline recorded';

CREATE FUNCTION vms._register_event(camera_id integer, event_time timestamptz, kind text, details jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._partition_for_registration('register_event', 'events', camera_id, event_time, kind);
    RETURN vms._register_event_body(camera_id, event_time, kind, details);
END
$$;
COMMENT ON FUNCTION vms._register_event(integer, timestamptz, text, jsonb) IS 'Body of vms.register_event(): runs as the owner, for the caller the trampoline recorded';

CREATE FUNCTION vms._register_face_event(camera_id integer, event_time timestamptz, person_id bigint,
                                         score real, snapshot_ref text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._partition_for_registration('register_face_event', 'face_events', camera_id, event_time, NULL);
    RETURN vms._register_face_event_body(camera_id, event_time, person_id, score, snapshot_ref);
END
$$;
COMMENT ON FUNCTION vms._register_face_event(integer, timestamptz, bigint, real, text) IS 'Body of vms.register_face_event(): runs as the owner, for the caller the trampoline recorded';

REVOKE ALL ON FUNCTION vms._ensure_day_partition(text, date),
                       vms._partition_for_registration(text, text, integer, timestamptz, text),
                       vms._register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer),
                       vms._register_event(integer, timestamptz, text, jsonb),
                       vms._register_face_event(integer, timestamptz, bigint, real, text) FROM PUBLIC;
------------------------------------------------------------------------------
-- Expiry: vms.apply_retention().  docs/retention.md walks through it.
--
-- Daily tables (segments, events, face_events): a row has expired when its
-- time span ended before now() minus its camera's retention, and no active
-- hold covers it.  A partition whose rows have all expired is retired whole
-- (detached; held rows, if any, moved into a fresh partition of the same day);
-- other partitions lose their expired rows one by one.  Segment files are
-- queued for their recorder in the same transaction.
-- Audit log: monthly partitions older than vms.audit_retention are dropped
-- oldest first, after their part of the chain checks out; the hash at the cut
-- becomes the new anchor, so vms.verify_audit() still proves the rest.
--
-- Locks: the row work takes only row-level locks on partitions.  Retiring a
-- partition needs a brief ACCESS EXCLUSIVE lock on its parent, which this
-- function never queues for (queries would stall behind it, and a queued lock
-- can close a deadlock cycle): it tries with NOWAIT for vms.partition_lock_wait
-- and leaves what it cannot lock to the next run.
------------------------------------------------------------------------------

-- What retention needs to know of each partitioned table.
ALTER TABLE vms.partitioned_tables
    ADD COLUMN retention    text CHECK (retention IN ('camera', 'audit')),
    ADD COLUMN start_column text,
    ADD COLUMN end_column   text,
    ADD COLUMN max_span     interval NOT NULL DEFAULT '0',
    ADD COLUMN files        boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN vms.partitioned_tables.retention IS 'Whose retention applies: the row''s camera, or vms.audit_retention';
COMMENT ON COLUMN vms.partitioned_tables.start_column IS 'Partition key: when the row''s time span starts';
COMMENT ON COLUMN vms.partitioned_tables.end_column IS 'When the row''s time span ends (expiry is measured from here)';
COMMENT ON COLUMN vms.partitioned_tables.max_span IS 'Longest span a row may have (end - start), so expiry can use the key''s index; in hours, not days (a day depends on TimeZone)';
COMMENT ON COLUMN vms.partitioned_tables.files IS 'Rows name files on a recorder, which must be queued for removal';
UPDATE vms.partitioned_tables SET retention = 'camera', start_column = 'start_time', end_column = 'end_time',
       max_span = '24:00:00', files = true WHERE parent = 'segments';
UPDATE vms.partitioned_tables SET retention = 'camera', start_column = 'event_time', end_column = 'event_time'
 WHERE parent IN ('events', 'face_events');
UPDATE vms.partitioned_tables SET retention = 'audit', start_column = 'sealed_at', end_column = 'sealed_at'
 WHERE parent = 'audit_log';

-- Partitions of a parent that pg_vms made (<parent>_pYYYYMMDD or _pYYYYMM), with their range.
CREATE FUNCTION vms._time_partitions(parent text)
RETURNS TABLE (partition_name text, from_ts timestamptz, to_ts timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    -- Bounds from dates, as the partitions were made: independent of TimeZone.
    SELECT c.relname::text, (x.first::text || ' 00:00:00+00')::timestamptz,
           ((x.first OPERATOR(pg_catalog.+) t.step)::date::text || ' 00:00:00+00')::timestamptz
      FROM vms.partitioned_tables p
      JOIN pg_catalog.pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(p.parent))
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
      CROSS JOIN LATERAL (SELECT CASE p.period WHEN 'day' THEN '1 day'::interval ELSE '1 month'::interval END AS step,
                                 CASE p.period WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END AS fmt,
                                 CASE p.period WHEN 'day' THEN 8 ELSE 6 END AS digits) t
      CROSS JOIN LATERAL (SELECT pg_catalog.to_date(pg_catalog.right(c.relname::text, t.digits), t.fmt) AS first) x
     WHERE p.parent OPERATOR(pg_catalog.=) $1
       AND c.relname::text OPERATOR(pg_catalog.~) ('^' || p.parent || '_p[0-9]{' || t.digits || '}$')
     ORDER BY 2;
$$;
COMMENT ON FUNCTION vms._time_partitions(text) IS 'The time partitions of a pg_vms table, oldest first, with their range';

-- Renames a detached partition and its indexes, freeing the names for a new
-- partition of the same range.
CREATE FUNCTION vms._rename_detached(part text, new_name text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    idx text;
BEGIN
    EXECUTE pg_catalog.format('ALTER TABLE vms.%I RENAME TO %I', part, new_name);
    FOR idx IN SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
                WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(new_name)) LOOP
        EXECUTE pg_catalog.format('ALTER INDEX vms.%I RENAME TO %I', idx,
                                  pg_catalog.left(pg_catalog.replace(idx, part, new_name), 63));
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._rename_detached(text, text) IS 'Renames a detached partition and its indexes';

-- SQL conditions on a row "s" of a daily table, given camera cutoffs ($1 ids,
-- $2 cutoffs) and holds ($3 cameras, $4 from, $5 to).  Each keeps to the
-- partition key's index: (camera_id, start) within max_span of the time.
CREATE FUNCTION vms._row_conditions(t vms.partitioned_tables, OUT unexpired text, OUT expired text, OUT held text)
RETURNS record LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT pg_catalog.format('EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::integer[]), pg_catalog.unnest($2::timestamptz[])) c(id, cutoff) '
                             'WHERE c.id OPERATOR(pg_catalog.=) s.camera_id AND s.%1$I OPERATOR(pg_catalog.>) c.cutoff)',
                             t.end_column),
           pg_catalog.format('EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::integer[]), pg_catalog.unnest($2::timestamptz[])) c(id, cutoff) '
                             'WHERE c.id OPERATOR(pg_catalog.=) s.camera_id AND s.%1$I OPERATOR(pg_catalog.<=) c.cutoff)',
                             t.end_column),
           pg_catalog.format('EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($3::integer[]), pg_catalog.unnest($4::timestamptz[]), pg_catalog.unnest($5::timestamptz[])) h(cam, f, t) '
                             'WHERE h.cam OPERATOR(pg_catalog.=) s.camera_id AND s.%1$I OPERATOR(pg_catalog.<) h.t '
                             'AND s.%2$I OPERATOR(pg_catalog.>=) h.f)',
                             t.start_column, t.end_column);
$$;
COMMENT ON FUNCTION vms._row_conditions(vms.partitioned_tables) IS 'Expiry and hold conditions on a row s of a daily table';

-- Does a daily partition hold a row that has not expired, or one a hold
-- covers?  One index probe per camera and per hold; none for expiry when the
-- partition ends (plus the longest span) before every camera's cutoff.
CREATE FUNCTION vms._partition_keeps(t vms.partitioned_tables, part text, to_ts timestamptz,
                                     cams integer[], cuts timestamptz[],
                                     hcams integer[], hfrom timestamptz[], hto timestamptz[],
                                     OUT unexpired boolean, OUT held boolean)
RETURNS record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF to_ts OPERATOR(pg_catalog.+) t.max_span OPERATOR(pg_catalog.<=) (SELECT pg_catalog.min(x) FROM pg_catalog.unnest(cuts) x) THEN
        unexpired := false;
    ELSE
        EXECUTE pg_catalog.format(
            'SELECT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::integer[]), pg_catalog.unnest($2::timestamptz[])) c(id, cutoff) '
            '  WHERE EXISTS (SELECT 1 FROM vms.%1$I s WHERE s.camera_id OPERATOR(pg_catalog.=) c.id '
            '    AND s.%2$I OPERATOR(pg_catalog.>) (c.cutoff OPERATOR(pg_catalog.-) $3) AND s.%3$I OPERATOR(pg_catalog.>) c.cutoff))',
            part, t.start_column, t.end_column)
        INTO unexpired USING cams, cuts, t.max_span;
    END IF;
    EXECUTE pg_catalog.format(
        'SELECT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::integer[]), pg_catalog.unnest($2::timestamptz[]), pg_catalog.unnest($3::timestamptz[])) h(cam, f, t) '
        '  WHERE EXISTS (SELECT 1 FROM vms.%1$I s WHERE s.camera_id OPERATOR(pg_catalog.=) h.cam '
        '    AND s.%2$I OPERATOR(pg_catalog.<) h.t AND s.%2$I OPERATOR(pg_catalog.>=) (h.f OPERATOR(pg_catalog.-) $4) '
        '    AND s.%3$I OPERATOR(pg_catalog.>=) h.f))',
        part, t.start_column, t.end_column)
        INTO held USING hcams, hfrom, hto, t.max_span;
END
$$;
COMMENT ON FUNCTION vms._partition_keeps(vms.partitioned_tables, text, timestamptz, integer[], timestamptz[], integer[], timestamptz[], timestamptz[]) IS
    'Whether a daily partition still holds unexpired or held rows';

-- The row path on one daily partition: delete the expired rows no hold
-- covers; queue the files of segments in the same statement.
CREATE FUNCTION vms._expire_rows(t vms.partitioned_tables, part text, cams integer[], cuts timestamptz[],
                                 hcams integer[], hfrom timestamptz[], hto timestamptz[],
                                 OUT rows bigint, OUT files bigint, OUT bytes bigint)
RETURNS record LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    cond record;
BEGIN
    SELECT * INTO cond FROM vms._row_conditions(t);
    files := 0;
    bytes := 0;
    IF t.files THEN
        EXECUTE pg_catalog.format(
            'WITH gone AS (DELETE FROM vms.%1$I s WHERE %2$s AND NOT %3$s '
            '              RETURNING s.id, s.camera_id, s.recorder, s.start_time, s.end_time, s.path, s.bytes, s.sha256), '
            '     q AS (INSERT INTO vms.purge_queue (segment_id, camera_id, recorder, start_time, end_time, path, bytes, sha256) '
            '           SELECT * FROM gone RETURNING bytes) '
            'SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(q.bytes), 0) FROM q',
            part, cond.expired, cond.held)
            INTO files, bytes USING cams, cuts, hcams, hfrom, hto;
        rows := files;
    ELSE
        EXECUTE pg_catalog.format('DELETE FROM vms.%1$I s WHERE %2$s AND NOT %3$s', part, cond.expired, cond.held)
            USING cams, cuts, hcams, hfrom, hto;
        GET DIAGNOSTICS rows = ROW_COUNT;
    END IF;
END
$$;
COMMENT ON FUNCTION vms._expire_rows(vms.partitioned_tables, text, integer[], timestamptz[], integer[], timestamptz[], timestamptz[]) IS
    'Deletes the expired, unheld rows of one daily partition and queues their files';

-- Retires a daily partition whose rows have all expired (the caller holds the
-- locks): detach it; move held rows into a fresh partition of the same day;
-- queue the files (the detached table becomes a purge batch) or drop it.
-- Returns the number of held rows moved.
CREATE FUNCTION vms._retire_partition(t vms.partitioned_tables, part text, from_ts timestamptz, to_ts timestamptz,
                                      hcams integer[], hfrom timestamptz[], hto timestamptz[], move_held boolean)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    old text := 'expired_' || part;
    n integer := 1;
    cols text;
    cond record;
    moved bigint := 0;
    empty boolean;
BEGIN
    SELECT * INTO cond FROM vms._row_conditions(t);
    -- A day retired before (a late segment made it again) may still be a batch.
    WHILE pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(old)) IS NOT NULL LOOP
        n := n + 1;
        old := 'expired_' || part || '_' || n;
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE vms.%I DETACH PARTITION vms.%I', t.parent, part);
    PERFORM vms._rename_detached(part, old);
    IF move_held THEN
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(t.parent))
           AND a.attnum > 0 AND NOT a.attisdropped;
        PERFORM vms._ensure_partition(t.parent, from_ts, to_ts, pg_catalog.substr(part, pg_catalog.length(t.parent) + 3));
        EXECUTE pg_catalog.format('WITH m AS (DELETE FROM vms.%1$I s WHERE %3$s RETURNING s.*) '
                                  'INSERT INTO vms.%2$I (%4$s) SELECT %4$s FROM m',
                                  old, part, cond.held, cols)
            USING NULL::integer[], NULL::timestamptz[], hcams, hfrom, hto;
        GET DIAGNOSTICS moved = ROW_COUNT;
    END IF;
    EXECUTE pg_catalog.format('SELECT NOT EXISTS (SELECT 1 FROM vms.%I)', old) INTO empty;
    IF t.files AND NOT empty THEN
        -- The detached table is the list of files to remove; only the owner reads it.
        EXECUTE pg_catalog.format('ALTER TABLE vms.%I ENABLE ROW LEVEL SECURITY', old);
        EXECUTE pg_catalog.format('ALTER TABLE vms.%I FORCE ROW LEVEL SECURITY', old);
        EXECUTE pg_catalog.format('COMMENT ON TABLE vms.%I IS %L', old,
            pg_catalog.format('Expired segments of [%s, %s): files waiting for their recorder to remove them (vms.purge_batches)',
                              from_ts, to_ts));
        INSERT INTO vms.purge_batches (table_name, day) VALUES (old, (from_ts AT TIME ZONE 'UTC')::date);
    ELSE
        EXECUTE pg_catalog.format('DROP TABLE vms.%I', old);
    END IF;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION vms._retire_partition(vms.partitioned_tables, text, timestamptz, timestamptz, integer[], timestamptz[], timestamptz[], boolean) IS
    'Detaches an expired daily partition, keeps its held rows, and queues its files or drops it';

-- Checks the chain through one audit partition from the current anchor.
-- Returns the last entry (the new anchor), or a problem.
CREATE FUNCTION vms._audit_partition_end(part text, anchor_seq bigint, anchor_hash bytea,
                                         OUT last_seq bigint, OUT last_hash bytea, OUT entries bigint, OUT problem text)
RETURNS record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    nxt vms.audit_log;
BEGIN
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.min(x.seq) FILTER (WHERE NOT x.ok) FROM ('
        '  SELECT l.seq, l.seq OPERATOR(pg_catalog.=) (COALESCE(l.prev_seq, $1) OPERATOR(pg_catalog.+) 1)'
        '         AND l.hash OPERATOR(pg_catalog.=) vms.audit_hash(COALESCE(l.prev_hash, $2), l.seq, l.sealed_at, l.logged_at,'
        '             l.actor, l.session_user_name, l.client_addr, l.action, l.camera_id, l.target, l.outcome, l.details) AS ok'
        '    FROM (SELECT e.*, pg_catalog.lag(e.seq) OVER w AS prev_seq, pg_catalog.lag(e.hash) OVER w AS prev_hash'
        '            FROM vms.%I e WINDOW w AS (ORDER BY e.seq)) l) x', part)
        INTO last_seq USING anchor_seq, anchor_hash;
    IF last_seq IS NOT NULL THEN
        problem := pg_catalog.format('the chain breaks at entry %s (or an entry before it is missing)', last_seq);
        last_seq := NULL;
        RETURN;
    END IF;
    EXECUTE pg_catalog.format('SELECT e.seq, e.hash, (SELECT pg_catalog.count(*) FROM vms.%1$I) FROM vms.%1$I e '
                              'ORDER BY e.seq DESC LIMIT 1', part)
        INTO last_seq, last_hash, entries;
    entries := COALESCE(entries, 0);
    IF last_seq IS NULL THEN
        RETURN;
    END IF;
    -- Entries cut from the end of the month would not show inside it: the
    -- next entry must chain from its last one.
    SELECT * INTO nxt FROM vms.audit_log l WHERE l.seq OPERATOR(pg_catalog.=) last_seq + 1;
    IF NOT FOUND OR nxt.hash OPERATOR(pg_catalog.<>) vms.audit_hash(last_hash, nxt.seq, nxt.sealed_at, nxt.logged_at,
            nxt.actor, nxt.session_user_name, nxt.client_addr, nxt.action, nxt.camera_id, nxt.target, nxt.outcome, nxt.details) THEN
        problem := pg_catalog.format('entry %s, after the month''s last entry %s, is missing or does not chain from it',
                                     last_seq + 1, last_seq);
        last_seq := NULL;
        last_hash := NULL;
    END IF;
END
$$;
COMMENT ON FUNCTION vms._audit_partition_end(text, bigint, bytea) IS
    'Verifies one audit partition''s entries against the chain from the anchor; returns its last entry';

CREATE FUNCTION vms._apply_retention(OUT partitions_retired integer, OUT rows_deleted bigint, OUT files_queued bigint,
                                     OUT bytes_queued bigint, OUT held_rows_kept bigint, OUT audit_partitions_dropped integer,
                                     OUT partitions_deferred integer, OUT purge_batches_finished integer)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp
SET TimeZone = 'UTC' AS $$
DECLARE
    cams integer[];
    cuts timestamptz[];
    cap interval;
    dflt interval;
    max_cut timestamptz;
    hcams integer[];
    hfrom timestamptz[];
    hto timestamptz[];
    t vms.partitioned_tables;
    p record;
    h record;
    keeps record;
    cond record;
    gone record;
    par text;
    locked boolean;
    still boolean;
    n bigint;
    nbytes bigint;
    reltuples double precision;
    held_count bigint;
    -- Partitions to retire: parent, name, range, whether held rows move.
    ret_parent text[] := '{}';
    ret_part text[] := '{}';
    ret_from timestamptz[] := '{}';
    ret_to timestamptz[] := '{}';
    ret_move boolean[] := '{}';
    audit_parts text[] := '{}';
    audit_ends bigint[] := '{}';
    audit_hashes bytea[] := '{}';
    audit_counts bigint[] := '{}';
    anchor_seq bigint;
    anchor_hash bytea;
    audit_cut timestamptz;
    audit_problem text;
    ends record;
    lock_list text[];
    i integer;
    per_table jsonb := '{}';
BEGIN
    IF NOT vms._role_has(vms._invoker(), 'vms_maintenance') THEN
        PERFORM vms._require_all('manage_retention');
    END IF;
    partitions_retired := 0; rows_deleted := 0; files_queued := 0; bytes_queued := 0; held_rows_kept := 0;
    audit_partitions_dropped := 0; partitions_deferred := 0; purge_batches_finished := 0;
    -- Each statement must see the holds as they are once locked below.
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'vms.apply_retention() runs only at READ COMMITTED isolation'
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'A snapshot taken before the run would not see holds placed since.';
    END IF;
    -- One run at a time (pg_cron and a manual call, say).  The lock is on a
    -- table only the owner may lock, so no user can hold retention off.
    IF NOT vms._lock_nowait(ARRAY['purge_batches'], 'SHARE ROW EXCLUSIVE') THEN
        RAISE EXCEPTION 'vms.apply_retention() is already running in another session'
            USING ERRCODE = 'lock_not_available';
    END IF;
    -- No hold may be placed or released while this run decides what goes:
    -- the holds read below stay true until it commits.  A hold change left
    -- open in a transaction fails the run, visibly (pg_cron's run log, audit).
    IF NOT vms._lock_nowait(ARRAY['evidence_holds'], 'SHARE') THEN
        RAISE EXCEPTION 'evidence holds are being changed in a transaction that stays open'
            USING ERRCODE = 'lock_not_available',
                  HINT = 'pg_stat_activity shows the session; retention runs again on its next schedule.';
    END IF;

    -- Holds that ended by their expiry since the last run: audited once.
    FOR h IN UPDATE vms.evidence_holds x SET expiry_recorded_at = pg_catalog.now()
              WHERE x.released_at IS NULL AND x.expiry_recorded_at IS NULL
                AND x.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()
             RETURNING x.* LOOP
        PERFORM vms._audit('hold_expired', h.camera_id, h.id::text,
                           pg_catalog.jsonb_build_object('from_time', h.from_time, 'to_time', h.to_time,
                                                         'expires_at', h.expires_at, 'reason', h.reason));
    END LOOP;

    -- The cap and the default once, not per camera.
    cap := vms._setting_interval('vms.max_retention');
    dflt := vms._default_retention();
    SELECT pg_catalog.array_agg(c.id ORDER BY c.id),
           pg_catalog.array_agg(pg_catalog.now() OPERATOR(pg_catalog.-) LEAST(COALESCE(c.retention, dflt), cap) ORDER BY c.id)
      INTO cams, cuts FROM vms.cameras c;
    SELECT pg_catalog.max(x) INTO max_cut FROM pg_catalog.unnest(cuts) x;
    SELECT COALESCE(pg_catalog.array_agg(a.camera_id), '{}'), COALESCE(pg_catalog.array_agg(a.from_time), '{}'),
           COALESCE(pg_catalog.array_agg(a.to_time), '{}')
      INTO hcams, hfrom, hto FROM vms.active_holds a;

    -- Daily tables: the row work now; partitions to retire are collected.
    FOR t IN SELECT * FROM vms.partitioned_tables x
              WHERE x.retention OPERATOR(pg_catalog.=) 'camera' ORDER BY x.parent LOOP
        EXIT WHEN max_cut IS NULL;
        SELECT * INTO cond FROM vms._row_conditions(t);
        n := 0;
        FOR p IN SELECT * FROM vms._time_partitions(t.parent) x WHERE x.from_ts OPERATOR(pg_catalog.<) max_cut LOOP
            SELECT * INTO keeps FROM vms._partition_keeps(t, p.partition_name, p.to_ts, cams, cuts, hcams, hfrom, hto);
            IF NOT keeps.unexpired THEN
                -- Held rows move out when they are few; otherwise delete the rest.
                held_count := 0;
                IF keeps.held THEN
                    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM vms.%I s WHERE %s', p.partition_name, cond.held)
                        INTO held_count USING NULL::integer[], NULL::timestamptz[], hcams, hfrom, hto;
                    SELECT c.reltuples INTO reltuples FROM pg_catalog.pg_class c
                     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(p.partition_name));
                    IF reltuples < 0 THEN
                        -- Never analysed: count (still far cheaper than deleting).
                        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM vms.%I', p.partition_name) INTO reltuples;
                    END IF;
                END IF;
                IF NOT keeps.held OR held_count::double precision <= GREATEST(reltuples, 0) / 2 THEN
                    ret_parent := ret_parent || t.parent;
                    ret_part := ret_part || p.partition_name::text;
                    ret_from := ret_from || p.from_ts;
                    ret_to := ret_to || p.to_ts;
                    ret_move := ret_move || keeps.held;
                    CONTINUE;
                END IF;
            END IF;
            SELECT * INTO gone FROM vms._expire_rows(t, p.partition_name, cams, cuts, hcams, hfrom, hto);
            n := gone.rows;
            files_queued := files_queued + gone.files;
            bytes_queued := bytes_queued + gone.bytes;
            rows_deleted := rows_deleted + n;
            per_table := per_table OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(t.parent,
                COALESCE((per_table OPERATOR(pg_catalog.->>) t.parent)::bigint, 0) + n);
        END LOOP;
    END LOOP;

    -- Audit log: whole months past vms.audit_retention (never shorter than
    -- vms.max_retention), oldest first, each checked against the chain.
    audit_cut := pg_catalog.now() OPERATOR(pg_catalog.-)
                 GREATEST(vms._setting_interval('vms.audit_retention'), vms._setting_interval('vms.max_retention'));
    SELECT a.seq, a.hash INTO anchor_seq, anchor_hash FROM vms.audit_anchor a ORDER BY a.seq DESC LIMIT 1;
    FOR p IN SELECT * FROM vms._time_partitions('audit_log') x WHERE x.to_ts OPERATOR(pg_catalog.<=) audit_cut LOOP
        SELECT * INTO ends FROM vms._audit_partition_end(p.partition_name, anchor_seq, anchor_hash);
        IF ends.problem IS NOT NULL THEN
            audit_problem := pg_catalog.format('%s: %s', p.partition_name, ends.problem);
            RAISE WARNING 'pg_vms: audit partition % is past retention but not dropped: %', p.partition_name, ends.problem
                USING HINT = 'Run vms.verify_audit(); a broken chain is evidence and is kept.';
            EXIT;
        END IF;
        audit_parts := audit_parts || p.partition_name::text;
        audit_ends := audit_ends || COALESCE(ends.last_seq, anchor_seq);
        audit_hashes := audit_hashes || COALESCE(ends.last_hash, anchor_hash);
        audit_counts := audit_counts || ends.entries;
        anchor_seq := COALESCE(ends.last_seq, anchor_seq);
        anchor_hash := COALESCE(ends.last_hash, anchor_hash);
    END LOOP;

    -- The brief exclusive part, one parent at a time in name order.  A parent
    -- that cannot be locked in time (a reader left a transaction open, say)
    -- has its partitions expired row by row instead: slower, never later.
    IF pg_catalog.cardinality(audit_parts) > 0 THEN
        IF vms._lock_nowait(ARRAY['audit_log'] || audit_parts) THEN
            FOR i IN 1 .. pg_catalog.cardinality(audit_parts) LOOP
                IF audit_ends[i] OPERATOR(pg_catalog.>) (SELECT a.seq FROM vms.audit_anchor a ORDER BY a.seq DESC LIMIT 1) THEN
                    INSERT INTO vms.audit_anchor (seq, hash, reason)
                    VALUES (audit_ends[i], audit_hashes[i],
                            pg_catalog.format('retention: dropped vms.%s (%s entries through seq %s)',
                                              audit_parts[i], audit_counts[i], audit_ends[i]));
                END IF;
                EXECUTE pg_catalog.format('ALTER TABLE vms.audit_log DETACH PARTITION vms.%I', audit_parts[i]);
                EXECUTE pg_catalog.format('DROP TABLE vms.%I', audit_parts[i]);
                audit_partitions_dropped := audit_partitions_dropped + 1;
            END LOOP;
        ELSE
            partitions_deferred := partitions_deferred + pg_catalog.cardinality(audit_parts);
            RAISE NOTICE 'pg_vms: % audit partitions past retention wait for the next run: vms.audit_log could not be locked within vms.partition_lock_wait',
                         pg_catalog.cardinality(audit_parts);
        END IF;
    END IF;
    -- An autovacuum worker on a partition to retire would hold it off, and a
    -- lock taken with NOWAIT never makes PostgreSQL cancel the worker the way
    -- a waiting one does.  Cancel it here, as a waiting lock would.
    PERFORM pg_catalog.pg_cancel_backend(a.pid) FROM pg_catalog.pg_stat_activity a
     WHERE a.backend_type OPERATOR(pg_catalog.=) 'autovacuum worker'
       AND (a.pid IN (SELECT v.pid FROM pg_catalog.pg_stat_progress_vacuum v
                       WHERE v.relid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(x))::oid
                                                                        FROM pg_catalog.unnest(ret_part) x)))
            OR a.pid IN (SELECT v.pid FROM pg_catalog.pg_stat_progress_analyze v
                          WHERE v.relid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(x))::oid
                                                                           FROM pg_catalog.unnest(ret_part) x))));
    FOR par IN SELECT DISTINCT x FROM pg_catalog.unnest(ret_parent) x ORDER BY 1 LOOP
        SELECT * INTO t FROM vms.partitioned_tables x WHERE x.parent OPERATOR(pg_catalog.=) par;
        locked := vms._lock_nowait(ARRAY[par] || ARRAY(SELECT ret_part[k] FROM pg_catalog.generate_subscripts(ret_part, 1) k
                                                       WHERE ret_parent[k] OPERATOR(pg_catalog.=) par ORDER BY k));
        FOR i IN 1 .. pg_catalog.cardinality(ret_part) LOOP
            CONTINUE WHEN ret_parent[i] OPERATOR(pg_catalog.<>) par;
            IF locked THEN
                -- Under the lock nothing changes any more; a row may have come meanwhile.
                SELECT * INTO keeps FROM vms._partition_keeps(t, ret_part[i], ret_to[i], cams, cuts, hcams, hfrom, hto);
                IF NOT (keeps.unexpired OR (keeps.held AND NOT ret_move[i])) THEN
                    held_rows_kept := held_rows_kept + vms._retire_partition(t, ret_part[i], ret_from[i], ret_to[i],
                                                                             hcams, hfrom, hto, keeps.held);
                    partitions_retired := partitions_retired + 1;
                    CONTINUE;
                END IF;
            ELSE
                partitions_deferred := partitions_deferred + 1;
            END IF;
            SELECT * INTO gone FROM vms._expire_rows(t, ret_part[i], cams, cuts, hcams, hfrom, hto);
            rows_deleted := rows_deleted + gone.rows;
            files_queued := files_queued + gone.files;
            bytes_queued := bytes_queued + gone.bytes;
            per_table := per_table OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(t.parent,
                COALESCE((per_table OPERATOR(pg_catalog.->>) t.parent)::bigint, 0) + gone.rows);
        END LOOP;
        IF NOT locked THEN
            RAISE NOTICE 'pg_vms: vms.% could not be locked within vms.partition_lock_wait: its expired partitions were emptied row by row',
                         par;
        END IF;
    END LOOP;

    -- Purge batches whose files have all been confirmed: dropped when they
    -- can be locked at once (a recorder confirming holds it for a moment).
    FOR p IN SELECT b.id, b.table_name FROM vms.purge_batches b ORDER BY b.id LOOP
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM vms.%I)', p.table_name) INTO still;
        CONTINUE WHEN still;
        BEGIN
            EXECUTE pg_catalog.format('LOCK TABLE vms.%I IN ACCESS EXCLUSIVE MODE NOWAIT', p.table_name);
            EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM vms.%I)', p.table_name) INTO still;
            IF NOT still THEN
                EXECUTE pg_catalog.format('DROP TABLE vms.%I', p.table_name);
                DELETE FROM vms.purge_batches b WHERE b.id OPERATOR(pg_catalog.=) p.id;
                purge_batches_finished := purge_batches_finished + 1;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;

    PERFORM vms._audit('apply_retention', NULL, NULL,
                       pg_catalog.jsonb_build_object('partitions_retired', partitions_retired, 'rows_deleted', rows_deleted,
                                                     'rows_deleted_by_table', per_table,
                                                     'files_queued', files_queued, 'bytes_queued', bytes_queued,
                                                     'held_rows_kept', held_rows_kept,
                                                     'audit_partitions_dropped', audit_partitions_dropped,
                                                     'audit_problem', audit_problem,
                                                     'partitions_deferred', partitions_deferred,
                                                     'purge_batches_finished', purge_batches_finished));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('apply_retention', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._apply_retention() IS 'Body of vms.apply_retention(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.apply_retention(OUT partitions_retired integer, OUT rows_deleted bigint, OUT files_queued bigint,
                                    OUT bytes_queued bigint, OUT held_rows_kept bigint, OUT audit_partitions_dropped integer,
                                    OUT partitions_deferred integer, OUT purge_batches_finished integer)
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.apply_retention() IS
    'Removes recordings, events and face events past their camera''s retention and audit entries past vms.audit_retention, except what holds keep; queues the files for their recorders (vms_maintenance, or manage_retention with scope all)';

REVOKE ALL ON FUNCTION vms._time_partitions(text), vms._rename_detached(text, text),
                       vms._row_conditions(vms.partitioned_tables),
                       vms._partition_keeps(vms.partitioned_tables, text, timestamptz, integer[], timestamptz[], integer[], timestamptz[], timestamptz[]),
                       vms._retire_partition(vms.partitioned_tables, text, timestamptz, timestamptz, integer[], timestamptz[], timestamptz[], boolean),
                       vms._audit_partition_end(text, bigint, bytea),
                       vms._expire_rows(vms.partitioned_tables, text, integer[], timestamptz[], integer[], timestamptz[], timestamptz[]),
                       vms._apply_retention(), vms.apply_retention() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vms.apply_retention() TO vms_user;
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
------------------------------------------------------------------------------
-- Audit sealing and verification, fixed (found while testing retention).
--
-- vms.seal_audit took an advisory lock whose key any login can compute and
-- hold (pg_advisory_lock is PUBLIC): sealing, and the audit worker that also
-- drains the shared-memory queue, then waited forever, and denied calls
-- overflowed the queue.  It now locks the log in a mode no user may take.
-- vms.verify_audit compared the log with the head the sealer notes in shared
-- memory before its commit, so a seal in progress looked like entries cut
-- from the end; it now waits for that seal and looks again.
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION vms.seal_audit(max_entries integer DEFAULT 10000)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
    head_sealed timestamptz;
    t timestamptz;
    r record;
    h bytea;
    n bigint := 0;
BEGIN
    -- One sealer at a time: the chain has a single writer.  A lock on the
    -- log itself, which readers (ACCESS SHARE) never meet and no user may
    -- take in this mode; an advisory key anyone can compute let any login
    -- stall sealing, and with it the worker that drains the audit queue.
    LOCK TABLE ONLY vms.audit_log IN SHARE ROW EXCLUSIVE MODE;
    SELECT l.seq, l.hash, l.sealed_at INTO head_seq, head_hash, head_sealed
      FROM vms.audit_log l ORDER BY l.seq DESC LIMIT 1;
    IF head_seq IS NULL THEN
        SELECT a.seq, a.hash INTO head_seq, head_hash FROM vms.audit_anchor a ORDER BY a.seq DESC LIMIT 1;
    END IF;
    -- sealed_at never goes backwards, so partitions hold contiguous seq ranges.
    t := GREATEST(pg_catalog.clock_timestamp(), head_sealed);
    FOR r IN SELECT * FROM vms.audit_pending p ORDER BY p.id LIMIT max_entries LOOP
        IF n = 0 THEN
            PERFORM vms._ensure_audit_partition((t AT TIME ZONE 'UTC')::date);
        END IF;
        head_seq := head_seq + 1;
        h := vms.audit_hash(head_hash, head_seq, t, r.logged_at, r.actor, r.session_user_name,
                            r.client_addr, r.action, r.camera_id, r.target, r.outcome, r.details);
        INSERT INTO vms.audit_log (seq, sealed_at, logged_at, actor, session_user_name, client_addr,
                                   action, camera_id, target, outcome, details, hash)
        VALUES (head_seq, t, r.logged_at, r.actor, r.session_user_name, r.client_addr,
                r.action, r.camera_id, r.target, r.outcome, r.details, h);
        DELETE FROM vms.audit_pending p WHERE p.id OPERATOR(pg_catalog.=) r.id;
        head_hash := h;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        PERFORM vms._audit_note_head(head_seq, head_hash);
        -- A witness outside the database: the server log keeps the head.
        RAISE LOG 'pg_vms: audit chain sealed through seq %, head hash %', head_seq, pg_catalog.encode(head_hash, 'hex');
    END IF;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION vms._verify_audit(OUT ok boolean, OUT entries_checked bigint,
                                 OUT first_broken_seq bigint, OUT problem text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    anchor_seq bigint;
    anchor_hash bytea;
    last_seq bigint;
    last_hash bytea;
    head record;
BEGIN
    BEGIN
        PERFORM vms._require_all('view_audit');
    EXCEPTION WHEN OTHERS THEN
        PERFORM vms._fail('verify_audit', NULL, NULL, SQLSTATE, SQLERRM);
        RAISE;
    END;

    SELECT a.seq, a.hash INTO anchor_seq, anchor_hash FROM vms.audit_anchor a ORDER BY a.seq DESC LIMIT 1;

    SELECT x.broken_seq, x.problem INTO first_broken_seq, problem FROM (
        SELECT l.seq,
               CASE WHEN l.seq OPERATOR(pg_catalog.>) COALESCE(l.prev_seq, anchor_seq) + 1
                    THEN COALESCE(l.prev_seq, anchor_seq) + 1 ELSE l.seq END AS broken_seq,
               CASE
                 WHEN l.seq OPERATOR(pg_catalog.=) l.prev_seq THEN
                     pg_catalog.format('entry %s appears more than once', l.seq)
                 WHEN l.seq OPERATOR(pg_catalog.<>) COALESCE(l.prev_seq, anchor_seq) + 1 THEN
                     pg_catalog.format('entry %s is missing', COALESCE(l.prev_seq, anchor_seq) + 1)
                 WHEN l.hash OPERATOR(pg_catalog.<>) vms.audit_hash(COALESCE(l.prev_hash, anchor_hash),
                         l.seq, l.sealed_at, l.logged_at, l.actor, l.session_user_name, l.client_addr,
                         l.action, l.camera_id, l.target, l.outcome, l.details) THEN
                     pg_catalog.format('entry %s does not match its hash: it was changed, or entries were reordered', l.seq)
               END AS problem
          FROM (SELECT e.*, pg_catalog.lag(e.seq) OVER w AS prev_seq, pg_catalog.lag(e.hash) OVER w AS prev_hash
                  FROM vms.audit_log e
                 WHERE e.seq OPERATOR(pg_catalog.>) anchor_seq
                WINDOW w AS (ORDER BY e.seq, e.sealed_at)) l
    ) x WHERE x.problem IS NOT NULL ORDER BY x.seq LIMIT 1;

    SELECT pg_catalog.count(*), pg_catalog.max(e.seq) INTO entries_checked, last_seq
      FROM vms.audit_log e WHERE e.seq OPERATOR(pg_catalog.>) anchor_seq;

    -- A valid but shortened chain: compare with the head this server sealed.
    IF problem IS NULL THEN
        SELECT * INTO head FROM vms._audit_sealed_head();
        -- The sealer notes its head before it commits: if the log looks
        -- shorter, wait for a seal in progress and look again.
        IF head.seq IS NOT NULL AND COALESCE(last_seq, anchor_seq) < head.seq THEN
            LOCK TABLE ONLY vms.audit_log IN SHARE MODE;
            SELECT pg_catalog.max(e.seq) INTO last_seq FROM vms.audit_log e WHERE e.seq OPERATOR(pg_catalog.>) anchor_seq;
            SELECT * INTO head FROM vms._audit_sealed_head();
        END IF;
        IF head.seq IS NOT NULL THEN
            SELECT e.hash INTO last_hash FROM vms.audit_log e WHERE e.seq OPERATOR(pg_catalog.=) head.seq;
            IF COALESCE(last_seq, anchor_seq) < head.seq THEN
                first_broken_seq := COALESCE(last_seq, anchor_seq) + 1;
                problem := pg_catalog.format('entries %s to %s are missing from the end of the log',
                                             first_broken_seq, head.seq);
            ELSIF last_hash IS DISTINCT FROM head.hash THEN
                first_broken_seq := head.seq;
                problem := pg_catalog.format('entry %s differs from the chain head sealed by this server', head.seq);
            END IF;
        END IF;
    END IF;

    ok := problem IS NULL;
    PERFORM vms._audit('verify_audit', NULL, NULL,
                       pg_catalog.jsonb_build_object('ok', ok, 'entries_checked', entries_checked,
                                                     'first_broken_seq', first_broken_seq, 'problem', problem));
END
$$;
