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
