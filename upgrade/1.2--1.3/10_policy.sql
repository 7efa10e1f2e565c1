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
