------------------------------------------------------------------------------
-- Lifting privacy masks.  A holder of lift_privacy_mask on a camera lifts its
-- liftable zones (one, or all) for a reason and a time; on cameras whose
-- policy says so, another person with approve_privacy_lift approves first.
-- A lift is personal: it removes masks only for the person who asked, and
-- only while they still hold lift_privacy_mask on the camera.  Masks come
-- back by time (ends_at); nothing is scheduled.  vms.masks_for() is what a
-- viewer or exporter applies.  docs/privacy.md explains the model.
------------------------------------------------------------------------------
-- Timestamps in messages and handed to the tools: UTC, ISO 8601, milliseconds, Z.
CREATE FUNCTION vms._utc_iso(t timestamptz)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT pg_catalog.to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
$$;
COMMENT ON FUNCTION vms._utc_iso(timestamptz) IS 'A timestamp as UTC ISO 8601 with milliseconds and Z';

CREATE TABLE vms.privacy_lift_policy (
    camera_id      integer PRIMARY KEY REFERENCES vms.cameras (id) ON DELETE CASCADE,
    needs_approval boolean NOT NULL DEFAULT false,
    max_duration   interval NOT NULL DEFAULT '8 hours' CHECK (max_duration > '0'::interval),
    updated_by     text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE vms.privacy_lift_policy IS
    'How privacy masks of a camera may be lifted (a camera without a row: no approval, at most 8 hours); set with vms.set_privacy_lift_policy()';
COMMENT ON COLUMN vms.privacy_lift_policy.needs_approval IS
    'A lift waits for another person with approve_privacy_lift (vms.approve_privacy_lift)';
COMMENT ON COLUMN vms.privacy_lift_policy.max_duration IS 'Longest lift that may be asked for';
ALTER TABLE vms.privacy_lift_policy ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.privacy_lift_policy FORCE ROW LEVEL SECURITY;
CREATE POLICY viewers ON vms.privacy_lift_policy FOR SELECT
    USING (vms.authorize('manage_cameras', camera_id) OR vms.authorize('lift_privacy_mask', camera_id)
           OR vms.authorize('approve_privacy_lift', camera_id));
SELECT pg_catalog.pg_extension_config_dump('vms.privacy_lift_policy', '');

CREATE SEQUENCE vms.privacy_lifts_id_seq AS bigint;
CREATE TABLE vms.privacy_lifts (
    id             bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.privacy_lifts_id_seq'::pg_catalog.regclass),
    camera_id      integer NOT NULL REFERENCES vms.cameras (id) ON DELETE CASCADE,
    zone_id        bigint REFERENCES vms.privacy_zones (id) ON DELETE CASCADE,
    reason         text NOT NULL,
    duration       interval NOT NULL CHECK (duration > '0'::interval),
    requested_by   text NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    needs_approval boolean NOT NULL,
    approved_by    text,
    approved_at    timestamptz,
    starts_at      timestamptz,
    ends_at        timestamptz,
    ended_by       text,
    ended_at       timestamptz,
    CHECK ((starts_at IS NULL) = (ends_at IS NULL)),
    CHECK (ends_at > starts_at),
    CHECK (needs_approval OR starts_at IS NOT NULL),
    CHECK ((approved_by IS NULL) = (approved_at IS NULL))
);
ALTER SEQUENCE vms.privacy_lifts_id_seq OWNED BY vms.privacy_lifts.id;
CREATE INDEX ON vms.privacy_lifts (camera_id, requested_by, ends_at);
COMMENT ON TABLE vms.privacy_lifts IS
    'Lifts of privacy masks: in force for requested_by in [starts_at, ends_at) unless ended early; starts_at is NULL while approval is pending';
COMMENT ON COLUMN vms.privacy_lifts.zone_id IS 'The zone lifted; NULL: every liftable zone of the camera';
COMMENT ON COLUMN vms.privacy_lifts.requested_by IS 'Who asked, and the only person the lift removes masks for';
ALTER TABLE vms.privacy_lifts ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.privacy_lifts FORCE ROW LEVEL SECURITY;
-- The requester, the approvers and the camera's managers see a lift.
CREATE POLICY visible ON vms.privacy_lifts FOR SELECT
    USING (requested_by OPERATOR(pg_catalog.=) CURRENT_USER::text
           OR vms.authorize('approve_privacy_lift', camera_id) OR vms.authorize('manage_cameras', camera_id));
SELECT pg_catalog.pg_extension_config_dump('vms.privacy_lifts', '');
SELECT pg_catalog.pg_extension_config_dump('vms.privacy_lifts_id_seq', '');

CREATE FUNCTION vms._set_privacy_lift_policy(camera integer, needs_approval boolean,
                                            max_duration interval DEFAULT '8 hours')
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    old vms.privacy_lift_policy;
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera);
    IF needs_approval IS NULL OR max_duration IS NULL THEN
        RAISE EXCEPTION 'needs_approval and max_duration must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_duration <= '0'::interval OR max_duration > '7 days'::interval THEN
        RAISE EXCEPTION 'max_duration must be positive and at most 7 days, not %', max_duration
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A longer need is a change of the zone: make it smaller or remove it with vms.update_privacy_zone().';
    END IF;
    SELECT * INTO old FROM vms.privacy_lift_policy p WHERE p.camera_id OPERATOR(pg_catalog.=) camera;
    INSERT INTO vms.privacy_lift_policy AS p (camera_id, needs_approval, max_duration, updated_by)
    VALUES (camera, needs_approval, max_duration, vms._invoker_name())
    ON CONFLICT ON CONSTRAINT privacy_lift_policy_pkey DO UPDATE
       SET needs_approval = EXCLUDED.needs_approval, max_duration = EXCLUDED.max_duration,
           updated_by = EXCLUDED.updated_by, updated_at = pg_catalog.now();
    PERFORM vms._audit('privacy_lift_policy', camera, NULL,
                       pg_catalog.jsonb_build_object('needs_approval', needs_approval, 'max_duration', max_duration::text,
                                                     'old_needs_approval', old.needs_approval,
                                                     'old_max_duration', old.max_duration::text));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('privacy_lift_policy', camera, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_privacy_lift_policy(integer, boolean, interval) IS 'Body of vms.set_privacy_lift_policy(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_privacy_lift_policy(camera integer, needs_approval boolean,
                                           max_duration interval DEFAULT '8 hours')
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_privacy_lift_policy(integer, boolean, interval) IS
    'Whether lifts of a camera''s privacy masks need a second person''s approval, and their longest duration (manage_cameras on it)';

CREATE FUNCTION vms._lift_privacy_mask(camera integer, reason text, duration interval DEFAULT '30 minutes',
                                      zone bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    pol vms.privacy_lift_policy;
    z vms.privacy_zones;
    approval boolean;
    longest interval;
    new_id bigint;
    starts timestamptz;
    ends timestamptz;
BEGIN
    PERFORM vms._require_camera('lift_privacy_mask', camera);
    PERFORM vms._check_text('reason', reason, 2000);
    SELECT * INTO pol FROM vms.privacy_lift_policy p WHERE p.camera_id OPERATOR(pg_catalog.=) camera;
    approval := COALESCE(pol.needs_approval, false);
    longest := COALESCE(pol.max_duration, '8 hours'::interval);
    IF duration IS NULL THEN
        RAISE EXCEPTION 'duration must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF duration <= '0'::interval OR duration > longest THEN
        RAISE EXCEPTION 'duration must be positive and at most % on camera %, not %', longest, camera, duration
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The longest lift is the camera''s lift policy (vms.privacy_lift_policy); ask again when it ends.';
    END IF;
    IF zone IS NOT NULL THEN
        SELECT * INTO z FROM vms.privacy_zones x
         WHERE x.id OPERATOR(pg_catalog.=) zone AND x.camera_id OPERATOR(pg_catalog.=) camera;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'camera % has no privacy zone %', camera, zone USING ERRCODE = 'undefined_object';
        END IF;
        IF NOT z.liftable THEN
            RAISE EXCEPTION 'privacy zone % ("%") is permanent and cannot be lifted', zone, z.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM vms.privacy_zones x
                       WHERE x.camera_id OPERATOR(pg_catalog.=) camera AND x.liftable) THEN
        RAISE EXCEPTION 'camera % has no liftable privacy zones', camera
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Its privacy zones, if any, are permanent.';
    END IF;
    IF NOT approval THEN
        starts := pg_catalog.now();
        ends := starts + duration;
    END IF;
    INSERT INTO vms.privacy_lifts (camera_id, zone_id, reason, duration, requested_by, needs_approval, starts_at, ends_at)
    VALUES (camera, zone, reason, duration, vms._invoker_name(), approval, starts, ends)
    RETURNING id INTO new_id;
    PERFORM vms._audit('privacy_lift', camera, new_id::text,
                       pg_catalog.jsonb_build_object('lift_id', new_id, 'zone_id', zone, 'reason', reason,
                                                     'duration', duration::text, 'needs_approval', approval,
                                                     'starts_at', starts, 'ends_at', ends));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('privacy_lift', camera, zone::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._lift_privacy_mask(integer, text, interval, bigint) IS 'Body of vms.lift_privacy_mask(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.lift_privacy_mask(camera integer, reason text, duration interval DEFAULT '30 minutes',
                                     zone bigint DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.lift_privacy_mask(integer, text, interval, bigint) IS
    'Lifts a camera''s liftable privacy masks (one zone, or all) for the caller only, for a reason and a time (lift_privacy_mask on it); returns the lift id. In force at once, or after approval when the camera''s policy needs it';

-- The lift, locked, for a step; 42704 when there is none.
CREATE FUNCTION vms._lift_for_change(lift bigint)
RETURNS vms.privacy_lifts LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    l vms.privacy_lifts;
BEGIN
    IF lift IS NULL THEN
        RAISE EXCEPTION 'lift must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO l FROM vms.privacy_lifts x WHERE x.id OPERATOR(pg_catalog.=) lift FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'privacy lift % does not exist', lift USING ERRCODE = 'undefined_object';
    END IF;
    RETURN l;
END
$$;
COMMENT ON FUNCTION vms._lift_for_change(bigint) IS 'Locks a privacy lift for an approval or an early end';

CREATE FUNCTION vms._approve_privacy_lift(lift bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    l vms.privacy_lifts;
    starts timestamptz := pg_catalog.now();
BEGIN
    l := vms._lift_for_change(lift);
    -- The second person is another login and another role, not the asker
    -- after SET ROLE nor someone acting as the asker.
    IF l.requested_by OPERATOR(pg_catalog.=) vms._invoker_name() OR l.requested_by OPERATOR(pg_catalog.=) SESSION_USER::text THEN
        PERFORM vms._deny('a lift cannot be approved by the person who asked for it',
                          'Another person with approve_privacy_lift on the camera approves it.');
    END IF;
    IF NOT vms._authorized('approve_privacy_lift', l.camera_id, pg_catalog.now()) THEN
        PERFORM vms._deny(pg_catalog.format('approve_privacy_lift on camera %s', l.camera_id));
    END IF;
    IF NOT l.needs_approval OR l.approved_at IS NOT NULL THEN
        RAISE EXCEPTION 'privacy lift % does not wait for approval', lift
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF l.ended_at IS NOT NULL THEN
        RAISE EXCEPTION 'privacy lift % was ended at % by %', lift, vms._utc_iso(l.ended_at), l.ended_by
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE vms.privacy_lifts x
       SET approved_by = vms._invoker_name(), approved_at = starts, starts_at = starts, ends_at = starts + l.duration
     WHERE x.id OPERATOR(pg_catalog.=) lift;
    PERFORM vms._audit('privacy_lift_approve', l.camera_id, lift::text,
                       pg_catalog.jsonb_build_object('lift_id', lift, 'requested_by', l.requested_by, 'zone_id', l.zone_id,
                                                     'reason', l.reason, 'starts_at', starts,
                                                     'ends_at', starts + l.duration));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('privacy_lift_approve', l.camera_id, lift::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._approve_privacy_lift(bigint) IS 'Body of vms.approve_privacy_lift(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.approve_privacy_lift(lift bigint)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.approve_privacy_lift(bigint) IS
    'Approves a pending lift of privacy masks (approve_privacy_lift on the camera; not the person who asked); it is in force from now for its duration';

CREATE FUNCTION vms._end_privacy_lift(lift bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    l vms.privacy_lifts;
    me text := vms._invoker_name();
BEGIN
    l := vms._lift_for_change(lift);
    IF me IS DISTINCT FROM l.requested_by AND me IS DISTINCT FROM l.approved_by THEN
        PERFORM vms._deny(pg_catalog.format('only %s, who asked for privacy lift %s, or its approver may end it',
                                            l.requested_by, lift));
    END IF;
    IF l.ended_at IS NOT NULL THEN
        RAISE EXCEPTION 'privacy lift % was already ended at %', lift, vms._utc_iso(l.ended_at)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF l.ends_at <= pg_catalog.now() THEN
        RAISE EXCEPTION 'privacy lift % already ran out at %', lift, vms._utc_iso(l.ends_at)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE vms.privacy_lifts x SET ended_by = me, ended_at = pg_catalog.now() WHERE x.id OPERATOR(pg_catalog.=) lift;
    PERFORM vms._audit('privacy_lift_end', l.camera_id, lift::text,
                       pg_catalog.jsonb_build_object('lift_id', lift, 'requested_by', l.requested_by,
                                                     'was_in_force', l.starts_at IS NOT NULL, 'ends_at', l.ends_at));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('privacy_lift_end', l.camera_id, lift::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._end_privacy_lift(bigint) IS 'Body of vms.end_privacy_lift(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.end_privacy_lift(lift bigint)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.end_privacy_lift(bigint) IS
    'Ends a lift of privacy masks early, or withdraws a pending one (the person who asked, or its approver); the masks apply again at once';

-- The lifts in force now for the API caller on a camera: theirs, approved if
-- needed, not ended, not run out, and only while they still hold
-- lift_privacy_mask on the camera.
CREATE FUNCTION vms._lifts_in_force(camera integer)
RETURNS SETOF vms.privacy_lifts LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT l.* FROM vms.privacy_lifts l
     WHERE l.camera_id OPERATOR(pg_catalog.=) _lifts_in_force.camera
       AND l.requested_by OPERATOR(pg_catalog.=) vms._invoker_name()
       AND l.ended_at IS NULL
       AND l.starts_at OPERATOR(pg_catalog.<=) pg_catalog.now() AND l.ends_at OPERATOR(pg_catalog.>) pg_catalog.now()
       AND vms._authorized('lift_privacy_mask', _lifts_in_force.camera, pg_catalog.now())
     ORDER BY l.id;
$$;
COMMENT ON FUNCTION vms._lifts_in_force(integer) IS 'The privacy lifts in force now for the API caller on a camera';

-- The masks the API caller must have applied now: every permanent zone, and
-- every liftable zone no lift of theirs covers.
CREATE FUNCTION vms._masks(camera integer)
RETURNS SETOF vms.privacy_zones LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT z.* FROM vms.privacy_zones z
     WHERE z.camera_id OPERATOR(pg_catalog.=) _masks.camera
       AND (NOT z.liftable
            OR NOT EXISTS (SELECT 1 FROM vms._lifts_in_force(_masks.camera) l
                            WHERE l.zone_id IS NULL OR l.zone_id OPERATOR(pg_catalog.=) z.id))
     ORDER BY z.id;
$$;
COMMENT ON FUNCTION vms._masks(integer) IS 'The privacy zones the API caller must have masked now on a camera';

-- Raises unless the caller holds one of the permissions on the camera now
-- (the denial names them all; no existence oracle, as _require_camera).
CREATE FUNCTION vms._require_camera_any(permissions text[], camera integer)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF camera IS NULL THEN
        RAISE EXCEPTION 'camera must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(permissions) p
                    WHERE vms._authorized(p, camera, pg_catalog.now())) THEN
        PERFORM vms._deny(pg_catalog.format('%s on camera %s', pg_catalog.array_to_string(permissions, ' or '), camera));
    END IF;
    IF NOT vms._camera_exists(camera) THEN
        RAISE EXCEPTION 'camera % does not exist', camera USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_camera_any(text[], integer) IS 'Raises unless the caller holds one of the permissions on the camera';

CREATE FUNCTION vms._masks_for(camera integer)
RETURNS TABLE (zone_id bigint, name text, liftable boolean, fill text, points jsonb, lifted_by_lift bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._require_camera_any(ARRAY['view_live', 'view_recorded', 'export'], camera);
    RETURN QUERY SELECT m.id, m.name, m.liftable, m.fill, m.points, NULL::bigint FROM vms._masks(camera) m;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('masks_for', camera, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._masks_for(integer) IS 'Body of vms.masks_for(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.masks_for(camera integer)
RETURNS TABLE (zone_id bigint, name text, liftable boolean, fill text, points jsonb, lifted_by_lift bigint)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.masks_for(integer) IS
    'The privacy masks the caller must apply now to a camera''s picture (view_live, view_recorded or export on it): every permanent zone and every liftable zone no lift of theirs covers (lifted_by_lift is always NULL)';

CREATE FUNCTION vms._active_lifts(camera integer)
RETURNS TABLE (id bigint, zone_id bigint, reason text, starts_at timestamptz, ends_at timestamptz, approved_by text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._require_camera_any(ARRAY['view_live', 'view_recorded', 'export', 'lift_privacy_mask'], camera);
    RETURN QUERY SELECT l.id, l.zone_id, l.reason, l.starts_at, l.ends_at, l.approved_by FROM vms._lifts_in_force(camera) l;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('active_lifts', camera, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._active_lifts(integer) IS 'Body of vms.active_lifts(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.active_lifts(camera integer)
RETURNS TABLE (id bigint, zone_id bigint, reason text, starts_at timestamptz, ends_at timestamptz, approved_by text)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.active_lifts(integer) IS
    'The caller''s lifts of privacy masks in force now on a camera (zone_id NULL: every liftable zone)';

REVOKE ALL ON vms.privacy_lift_policy, vms.privacy_lifts, vms.privacy_lifts_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._utc_iso(timestamptz), vms._set_privacy_lift_policy(integer, boolean, interval),
                       vms.set_privacy_lift_policy(integer, boolean, interval),
                       vms._lift_privacy_mask(integer, text, interval, bigint),
                       vms.lift_privacy_mask(integer, text, interval, bigint),
                       vms._lift_for_change(bigint),
                       vms._approve_privacy_lift(bigint), vms.approve_privacy_lift(bigint),
                       vms._end_privacy_lift(bigint), vms.end_privacy_lift(bigint),
                       vms._lifts_in_force(integer), vms._masks(integer), vms._require_camera_any(text[], integer),
                       vms._masks_for(integer), vms.masks_for(integer),
                       vms._active_lifts(integer), vms.active_lifts(integer) FROM PUBLIC;
GRANT SELECT ON vms.privacy_lift_policy, vms.privacy_lifts TO vms_user;
GRANT EXECUTE ON FUNCTION vms.set_privacy_lift_policy(integer, boolean, interval),
                          vms.lift_privacy_mask(integer, text, interval, bigint),
                          vms.approve_privacy_lift(bigint), vms.end_privacy_lift(bigint),
                          vms.masks_for(integer), vms.active_lifts(integer) TO vms_user;
