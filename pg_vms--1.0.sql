-- pg_vms 1.0: cameras, permissions, the recordings index and the audit log.
-- Read docs/architecture.md first.  Conventions in this script:
--  * every SECURITY DEFINER function pins search_path = pg_catalog, vms, pg_temp
--    and schema-qualifies calls into vms;
--  * API functions run their checks through vms._require*(), audit success with
--    vms._audit() (same transaction) and failure with vms._fail() (shared-memory
--    queue, survives the rollback);
--  * nothing is granted to PUBLIC: VMS users reach the schema through vms_user.

\echo Use "CREATE EXTENSION pg_vms CASCADE" to load this file. \quit

-- One database per cluster: the worker, the audit queue and the key store
-- serve the database named by vms.database_name.
DO $db$
BEGIN
    IF pg_catalog.current_database() OPERATOR(pg_catalog.<>) pg_catalog.current_setting('vms.database_name') THEN
        RAISE EXCEPTION 'pg_vms can only be installed in the database named by vms.database_name ("%")',
                        pg_catalog.current_setting('vms.database_name')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set vms.database_name in postgresql.conf and restart, or install pg_vms in that database.';
    END IF;
END
$db$;

------------------------------------------------------------------------------
-- Built-in roles (global objects: created once per cluster, kept on DROP EXTENSION)
------------------------------------------------------------------------------
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['vms_user', 'vms_system_manager', 'vms_recorder', 'vms_auditor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r);
        END IF;
    END LOOP;
    GRANT vms_user TO vms_system_manager, vms_recorder, vms_auditor;
END
$roles$;

COMMENT ON ROLE vms_user IS 'pg_vms: every VMS user and role; may read the vms tables (row-level security decides what) and call the API';
COMMENT ON ROLE vms_system_manager IS 'pg_vms: VMS administration; every permission on every camera; never a superuser';
COMMENT ON ROLE vms_recorder IS 'pg_vms: recording servers; may register segments and events for the cameras assigned to them';
COMMENT ON ROLE vms_auditor IS 'pg_vms: reads and verifies the audit log (built-in grant of view_audit, scope all)';

------------------------------------------------------------------------------
-- Catalog of permissions
------------------------------------------------------------------------------
CREATE TABLE vms.permissions (
    id          smallint PRIMARY KEY CHECK (id BETWEEN 0 AND 63),
    name        text NOT NULL UNIQUE,
    description text NOT NULL
);
COMMENT ON TABLE vms.permissions IS 'The permissions a grant can give (fixed by the extension version)';

INSERT INTO vms.permissions (id, name, description) VALUES
    (1,  'view_live',         'Watch live video'),
    (2,  'view_recorded',     'Watch recorded video (within the grant''s recorded_window)'),
    (3,  'listen_audio',      'Listen to live or recorded audio'),
    (4,  'view_metadata',     'See events and metadata of the camera'),
    (5,  'ptz_control',       'Pan, tilt and zoom the camera'),
    (6,  'snapshot',          'Take still images'),
    (7,  'export',            'Export evidence'),
    (8,  'lift_privacy_mask', 'Lift liftable privacy masks'),
    (9,  'manage_cameras',    'Add, change and remove cameras and camera groups'),
    (10, 'manage_users',      'Create and remove users and assign them to VMS roles'),
    (11, 'manage_roles',      'Create and remove VMS roles and grant or revoke their permissions'),
    (12, 'manage_retention',  'Set retention and evidence holds'),
    (13, 'view_audit',        'Read the audit log'),
    (14, 'facex_view',        'See face-recognition persons and events'),
    (15, 'facex_search',      'Search faces'),
    (16, 'facex_manage',      'Manage watch lists and persons');

------------------------------------------------------------------------------
-- Cameras and camera groups
------------------------------------------------------------------------------
CREATE SEQUENCE vms.cameras_id_seq AS integer;
CREATE TABLE vms.cameras (
    id          integer PRIMARY KEY DEFAULT pg_catalog.nextval('vms.cameras_id_seq'::pg_catalog.regclass),
    name        text NOT NULL UNIQUE,
    description text,
    location    text,
    stream_url  text,
    recorder    text,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE vms.cameras_id_seq OWNED BY vms.cameras.id;
COMMENT ON TABLE vms.cameras IS 'Cameras; change through vms.add_camera(), vms.update_camera(), vms.remove_camera()';
COMMENT ON COLUMN vms.cameras.stream_url IS 'Stream address without credentials';
COMMENT ON COLUMN vms.cameras.recorder IS 'LOGIN role of the recording server assigned to this camera';

CREATE SEQUENCE vms.camera_groups_id_seq AS integer;
CREATE TABLE vms.camera_groups (
    id          integer PRIMARY KEY DEFAULT pg_catalog.nextval('vms.camera_groups_id_seq'::pg_catalog.regclass),
    name        text NOT NULL UNIQUE,
    description text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE vms.camera_groups_id_seq OWNED BY vms.camera_groups.id;
COMMENT ON TABLE vms.camera_groups IS 'Named sets of cameras; a grant may be scoped to a group';

CREATE TABLE vms.camera_group_members (
    group_id  integer NOT NULL REFERENCES vms.camera_groups (id) ON DELETE CASCADE,
    camera_id integer NOT NULL REFERENCES vms.cameras (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, camera_id)
);
CREATE INDEX ON vms.camera_group_members (camera_id);
COMMENT ON TABLE vms.camera_group_members IS 'Which cameras belong to which group';

------------------------------------------------------------------------------
-- Principals (VMS roles and users) and grants
------------------------------------------------------------------------------
CREATE TABLE vms.principals (
    name             text PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('builtin', 'role', 'user')),
    description      text,
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    access_changed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE vms.principals IS 'VMS roles (NOLOGIN) and users (LOGIN) managed by pg_vms';
COMMENT ON COLUMN vms.principals.access_changed_at IS 'Last change of this principal''s grants or role memberships';

INSERT INTO vms.principals (name, kind, description, created_by) VALUES
    ('vms_user', 'builtin', 'Every VMS principal', 'pg_vms'),
    ('vms_system_manager', 'builtin', 'VMS administration', 'pg_vms'),
    ('vms_recorder', 'builtin', 'Recording servers', 'pg_vms'),
    ('vms_auditor', 'builtin', 'Audit log readers', 'pg_vms');

CREATE SEQUENCE vms.grants_id_seq AS bigint;
CREATE TABLE vms.grants (
    id              bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.grants_id_seq'::pg_catalog.regclass),
    role            text NOT NULL REFERENCES vms.principals (name) ON DELETE CASCADE,
    permission      text NOT NULL REFERENCES vms.permissions (name),
    scope           text NOT NULL CHECK (scope IN ('camera', 'group', 'all')),
    camera_id       integer REFERENCES vms.cameras (id) ON DELETE CASCADE,
    group_id        integer REFERENCES vms.camera_groups (id) ON DELETE CASCADE,
    recorded_window interval CHECK (recorded_window > '0'::interval),
    valid_from      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    valid_until     timestamptz,
    granted_by      text NOT NULL,
    granted_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_used_at    timestamptz,
    builtin         boolean NOT NULL DEFAULT false,
    CHECK ((scope = 'camera') = (camera_id IS NOT NULL)),
    CHECK ((scope = 'group') = (group_id IS NOT NULL)),
    CHECK (valid_until IS NULL OR valid_until > valid_from)
);
ALTER SEQUENCE vms.grants_id_seq OWNED BY vms.grants.id;
CREATE INDEX ON vms.grants (role);
COMMENT ON TABLE vms.grants IS 'Permissions as data: (role, permission, scope, limits); change through vms.grant_permission() and vms.revoke_permission()';
COMMENT ON COLUMN vms.grants.recorded_window IS 'How far back recorded data may be seen (NULL: no limit)';
COMMENT ON COLUMN vms.grants.last_used_at IS 'Last use of this grant, where a feature records usage (NULL: never recorded)';

INSERT INTO vms.grants (role, permission, scope, granted_by, builtin)
VALUES ('vms_auditor', 'view_audit', 'all', 'pg_vms', true);

------------------------------------------------------------------------------
-- Recordings index: segments and events, partitioned by UTC day
------------------------------------------------------------------------------
CREATE SEQUENCE vms.segments_id_seq AS bigint;
CREATE TABLE vms.segments (
    id            bigint NOT NULL DEFAULT pg_catalog.nextval('vms.segments_id_seq'::pg_catalog.regclass),
    camera_id     integer NOT NULL REFERENCES vms.cameras (id),
    start_time    timestamptz NOT NULL,
    end_time      timestamptz NOT NULL,
    path          text NOT NULL,
    bytes         bigint NOT NULL CHECK (bytes >= 0),
    sha256        bytea NOT NULL CHECK (pg_catalog.length(sha256) = 32),
    codec         text,
    width         integer,
    height        integer,
    recorder      text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK (end_time > start_time)
) PARTITION BY RANGE (start_time);
ALTER SEQUENCE vms.segments_id_seq OWNED BY vms.segments.id;
COMMENT ON TABLE vms.segments IS 'Recorded segments (one file each); partitioned by UTC day of start_time; written only by vms.register_segment()';
-- Keys live on each partition, not on the partitioned parents: a parent is an
-- extension member, and pg_dump recreates partitions with their own indexes,
-- which would collide with indexes cloned from a parent on restore.  Each key
-- contains the partition column, so per-partition uniqueness is global.

CREATE SEQUENCE vms.events_id_seq AS bigint;
CREATE TABLE vms.events (
    id          bigint NOT NULL DEFAULT pg_catalog.nextval('vms.events_id_seq'::pg_catalog.regclass),
    camera_id   integer NOT NULL REFERENCES vms.cameras (id),
    event_time  timestamptz NOT NULL,
    kind        text NOT NULL,
    details     jsonb,
    recorder    text NOT NULL
) PARTITION BY RANGE (event_time);
ALTER SEQUENCE vms.events_id_seq OWNED BY vms.events.id;
COMMENT ON TABLE vms.events IS 'Camera events (motion, analytics, gaps); partitioned by UTC day; written only by vms.register_event()';

------------------------------------------------------------------------------
-- Audit log: pending entries, the sealed chain, and its anchor
------------------------------------------------------------------------------
CREATE SEQUENCE vms.audit_pending_id_seq AS bigint;
CREATE TABLE vms.audit_pending (
    id                bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.audit_pending_id_seq'::pg_catalog.regclass),
    logged_at         timestamptz NOT NULL,
    actor             text,
    session_user_name text,
    client_addr       inet,
    action            text NOT NULL,
    camera_id         integer,
    target            text,
    outcome           text NOT NULL,
    details           jsonb
);
ALTER SEQUENCE vms.audit_pending_id_seq OWNED BY vms.audit_pending.id;
COMMENT ON TABLE vms.audit_pending IS 'Audit entries written but not yet sealed into the chain (the worker seals them within vms.audit_flush_interval)';

CREATE TABLE vms.audit_log (
    seq               bigint NOT NULL,
    sealed_at         timestamptz NOT NULL,
    logged_at         timestamptz NOT NULL,
    actor             text,
    session_user_name text,
    client_addr       inet,
    action            text NOT NULL,
    camera_id         integer,
    target            text,
    outcome           text NOT NULL,
    details           jsonb,
    hash              bytea NOT NULL
) PARTITION BY RANGE (sealed_at);
COMMENT ON TABLE vms.audit_log IS 'Append-only, hash-chained audit log; partitioned by month of sealed_at; check with vms.verify_audit()';
COMMENT ON COLUMN vms.audit_log.actor IS 'Role the action was taken as (current_user of the caller)';
COMMENT ON COLUMN vms.audit_log.session_user_name IS 'Login role of the session';
COMMENT ON COLUMN vms.audit_log.client_addr IS 'Client IP address; NULL for Unix-socket and internal connections';
COMMENT ON COLUMN vms.audit_log.outcome IS 'ok, denied or error';
COMMENT ON COLUMN vms.audit_log.hash IS 'SHA-256 chain hash, see docs/audit.md';

CREATE TABLE vms.audit_anchor (
    seq       bigint PRIMARY KEY,
    hash      bytea NOT NULL CHECK (pg_catalog.length(hash) = 32),
    set_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reason    text NOT NULL
);
COMMENT ON TABLE vms.audit_anchor IS 'Where the chain starts: the newest row gives the seq and hash before the first kept entry';
INSERT INTO vms.audit_anchor (seq, hash, reason)
VALUES (0, pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'), 'genesis');

------------------------------------------------------------------------------
-- C functions
------------------------------------------------------------------------------
CREATE FUNCTION vms.authorize(permission text, camera_id integer, at timestamptz DEFAULT pg_catalog.now())
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_authorize'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vms.authorize(text, integer, timestamptz) IS
    'The decision point: may the current user use this permission on this camera for data recorded at "at"?';

CREATE FUNCTION vms.permitted_cameras(permission text)
RETURNS integer[] AS 'MODULE_PATHNAME', 'vms_permitted_cameras'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vms.permitted_cameras(text) IS
    'Cameras on which the current user holds the permission now (index-friendly form for RLS)';

CREATE FUNCTION vms.visible_cameras()
RETURNS integer[] AS 'MODULE_PATHNAME', 'vms_visible_cameras'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vms.visible_cameras() IS 'Cameras on which the current user holds any permission now';

CREATE FUNCTION vms.has_permission(permission text, scope_all boolean DEFAULT false)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_holds_permission'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vms.has_permission(text, boolean) IS
    'Does the current user hold the permission on some camera (or, with scope_all, through a grant of scope all)?';

CREATE FUNCTION vms.audit_queue_length()
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_audit_queue_length'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.audit_queue_length() IS 'Audit entries in shared memory waiting for the worker';

CREATE FUNCTION vms.audit_hash(prev_hash bytea, seq bigint, sealed_at timestamptz, logged_at timestamptz,
                               actor text, session_user_name text, client_addr inet, action text,
                               camera_id integer, target text, outcome text, details jsonb)
RETURNS bytea AS 'MODULE_PATHNAME', 'vms_audit_hash'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION vms.audit_hash(bytea, bigint, timestamptz, timestamptz, text, text, inet, text, integer, text, text, jsonb) IS
    'Chain hash of one audit entry (layout in docs/audit.md)';

CREATE FUNCTION vms._noop_authorize(permission text, camera_id integer, at timestamptz DEFAULT pg_catalog.now())
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_noop_authorize'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vms._noop_authorize(text, integer, timestamptz) IS 'Benchmark baseline: the signature of vms.authorize() and no work';

-- Internal C helpers: callable only by the extension owner (no grants).
CREATE FUNCTION vms._invoker() RETURNS regrole
AS 'MODULE_PATHNAME', 'vms_invoker' LANGUAGE C STABLE;
COMMENT ON FUNCTION vms._invoker() IS 'Role the running pg_vms API function acts for';

CREATE FUNCTION vms._invoker_name() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT r.rolname::text FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) vms._invoker()::oid;
$$;
COMMENT ON FUNCTION vms._invoker_name() IS 'Name of the role the running pg_vms API function acts for, unquoted';



CREATE FUNCTION vms._authorized(permission text, camera_id integer, at timestamptz)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_authorized_invoker' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION vms._authorized(text, integer, timestamptz) IS 'vms.authorize() for the API caller';

CREATE FUNCTION vms._invoker_holds(permission text, scope_all boolean)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_invoker_holds_permission' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION vms._invoker_holds(text, boolean) IS 'vms.has_permission() for the API caller';

CREATE FUNCTION vms._is_system_manager(role regrole)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_is_system_manager' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION vms._is_system_manager(regrole) IS 'Superuser, or has the privileges of vms_system_manager';

CREATE FUNCTION vms._audit_enqueue(action text, outcome text, camera_id integer, target text, details jsonb)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_audit_enqueue' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._audit_enqueue(text, text, integer, text, jsonb) IS 'Queue an audit entry outside the current transaction';

CREATE FUNCTION vms._audit_note_head(seq bigint, hash bytea)
RETURNS void AS 'MODULE_PATHNAME', 'vms_audit_note_head' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._audit_note_head(bigint, bytea) IS 'Publish the sealed chain head to shared memory at commit';

CREATE FUNCTION vms._audit_sealed_head(OUT seq bigint, OUT hash bytea)
RETURNS record AS 'MODULE_PATHNAME', 'vms_audit_sealed_head' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._audit_sealed_head() IS 'Chain head as last sealed in this server run (NULL before the first seal)';

CREATE FUNCTION vms._password_verifier(username text, password text)
RETURNS text AS 'MODULE_PATHNAME', 'vms_password_verifier' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._password_verifier(text, text) IS
    'Checks a new password against the password policy and returns its SCRAM-SHA-256 verifier';

CREATE FUNCTION vms._authz_invalidate() RETURNS trigger
AS 'MODULE_PATHNAME', 'vms_authz_invalidate_trigger' LANGUAGE C;
COMMENT ON FUNCTION vms._authz_invalidate() IS 'Drops every backend''s authorization cache at commit';

CREATE TRIGGER authz_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vms.grants
    FOR EACH STATEMENT EXECUTE FUNCTION vms._authz_invalidate();
CREATE TRIGGER authz_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vms.cameras
    FOR EACH STATEMENT EXECUTE FUNCTION vms._authz_invalidate();
CREATE TRIGGER authz_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vms.camera_group_members
    FOR EACH STATEMENT EXECUTE FUNCTION vms._authz_invalidate();
CREATE TRIGGER authz_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vms.permissions
    FOR EACH STATEMENT EXECUTE FUNCTION vms._authz_invalidate();

------------------------------------------------------------------------------
-- Append-only enforcement
------------------------------------------------------------------------------
CREATE FUNCTION vms._append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit entries are removed only by retention, which drops whole partitions and moves the chain anchor.';
END
$$;
COMMENT ON FUNCTION vms._append_only() IS 'Refuses UPDATE, DELETE and TRUNCATE on the audit chain';

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON vms.audit_log
    FOR EACH ROW EXECUTE FUNCTION vms._append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON vms.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION vms._append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON vms.audit_anchor
    FOR EACH ROW EXECUTE FUNCTION vms._append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON vms.audit_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION vms._append_only();

------------------------------------------------------------------------------
-- Internal helpers for API functions
------------------------------------------------------------------------------

-- Non-null, non-empty, bounded, printable.
CREATE FUNCTION vms._check_text(what text, value text, max_length integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be null', what USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.btrim(value) = '' THEN
        RAISE EXCEPTION '% must not be empty', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.octet_length(value) > max_length THEN
        RAISE EXCEPTION '% is too long (at most % bytes)', what, max_length
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF value ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION '% must not contain control characters', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._check_text(text, text, integer) IS 'Validates a name-like argument';

CREATE FUNCTION vms._check_optional_text(what text, value text, max_length integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF value IS NOT NULL AND pg_catalog.octet_length(value) > max_length THEN
        RAISE EXCEPTION '% is too long (at most % bytes)', what, max_length
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._check_optional_text(text, text, integer) IS 'Validates an optional free-text argument';

-- Role names: as _check_text, and not reserved.
CREATE FUNCTION vms._check_role_name(what text, value text)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._check_text(what, value, 63);
    IF value ~ '^(pg_|vms_)' THEN
        RAISE EXCEPTION '% "%" is reserved (names starting with pg_ or vms_)', what, value
            USING ERRCODE = 'reserved_name';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._check_role_name(text, text) IS 'Validates a new role or user name';

CREATE FUNCTION vms._check_stream_url(url text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF url IS NULL THEN
        RETURN;
    END IF;
    PERFORM vms._check_text('stream_url', url, 2048);
    IF url !~ '^(rtsp|rtsps|http|https|file)://' THEN
        RAISE EXCEPTION 'stream_url must start with rtsp://, rtsps://, http://, https:// or file://'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF url ~ '^file://' AND NOT vms._is_system_manager(vms._invoker()) THEN
        PERFORM vms._deny('only a system manager may point a camera at a local file',
                          'file:// sources are for tests and demonstrations.');
    END IF;
    IF url ~ '^[a-z]+://[^/]*@' THEN
        RAISE EXCEPTION 'stream_url must not contain credentials'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Camera credentials are stored encrypted, apart from the address.';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._check_stream_url(text) IS 'Validates a camera stream address (no embedded credentials)';

-- Audit a successful action in the caller's transaction.
-- Not SECURITY DEFINER: it runs inside API functions (already the owner), and
-- a nested SECURITY DEFINER call would make vms._invoker() the owner.
CREATE FUNCTION vms._audit(action text, camera_id integer, target text, details jsonb)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, vms, pg_temp AS $$
    INSERT INTO vms.audit_pending (logged_at, actor, session_user_name, client_addr,
                                   action, camera_id, target, outcome, details)
    VALUES (pg_catalog.clock_timestamp(), vms._invoker_name(), SESSION_USER::text,
            pg_catalog.inet_client_addr(), action, camera_id, target, 'ok', details);
$$;
COMMENT ON FUNCTION vms._audit(text, integer, text, jsonb) IS 'Audits a successful action (commits or rolls back with it)';

-- Audit a failed action outside the transaction; the caller re-raises.
CREATE FUNCTION vms._fail(action text, camera_id integer, target text, state text, message text)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT vms._audit_enqueue(action,
                              CASE WHEN state = '42501' THEN 'denied' ELSE 'error' END,
                              camera_id, target,
                              pg_catalog.jsonb_build_object('sqlstate', state, 'message', message));
$$;
COMMENT ON FUNCTION vms._fail(text, integer, text, text, text) IS 'Audits a denied or failed action; survives the rollback';

CREATE FUNCTION vms._deny(message text, hint text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF hint IS NULL THEN
        RAISE EXCEPTION 'permission denied: %', message USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'permission denied: %', message USING ERRCODE = 'insufficient_privilege', HINT = hint;
END
$$;
COMMENT ON FUNCTION vms._deny(text, text) IS 'Raises a permission error';

-- Does member hold the privileges of the named role?  False for unknown roles.
CREATE FUNCTION vms._role_has(member oid, role text)
RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT COALESCE(
        (SELECT pg_catalog.pg_has_role(member, r.oid, 'USAGE')
           FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) _role_has.role), false);
$$;
COMMENT ON FUNCTION vms._role_has(oid, text) IS 'pg_has_role(member, role, USAGE), false for a role that does not exist';

CREATE FUNCTION vms._camera_exists(camera_id integer)
RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) _camera_exists.camera_id);
$$;
COMMENT ON FUNCTION vms._camera_exists(integer) IS 'Does the camera exist?';

-- Require a permission on one camera.  A caller who may not see the camera
-- gets the same error whether or not it exists (no existence oracle).
CREATE FUNCTION vms._require_camera(permission text, camera_id integer)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF camera_id IS NULL THEN
        RAISE EXCEPTION 'camera_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT vms._authorized(permission, camera_id, pg_catalog.now()) THEN
        PERFORM vms._deny(pg_catalog.format('%s on camera %s', permission, camera_id));
    END IF;
    IF NOT vms._camera_exists(camera_id) THEN
        RAISE EXCEPTION 'camera % does not exist', camera_id USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_camera(text, integer) IS 'Raises unless the caller holds the permission on the camera';

CREATE FUNCTION vms._require_all(permission text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    -- System managers first: no need to fill the authorization cache.
    IF NOT vms._is_system_manager(vms._invoker()) AND NOT vms._invoker_holds(permission, true) THEN
        PERFORM vms._deny(pg_catalog.format('%s with scope all is required', permission));
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_all(text) IS 'Raises unless the caller holds the permission with scope all';

CREATE FUNCTION vms._require_any(permission text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF NOT vms._is_system_manager(vms._invoker()) AND NOT vms._invoker_holds(permission, false) THEN
        PERFORM vms._deny(pg_catalog.format('%s is required', permission));
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_any(text) IS 'Raises unless the caller holds the permission on some scope';

CREATE FUNCTION vms._group_id(camera_group text)
RETURNS integer LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    gid integer;
BEGIN
    PERFORM vms._check_text('camera_group', camera_group, 200);
    SELECT g.id INTO gid FROM vms.camera_groups g WHERE g.name OPERATOR(pg_catalog.=) camera_group;
    IF gid IS NULL THEN
        RAISE EXCEPTION 'camera group "%" does not exist', camera_group USING ERRCODE = 'undefined_object';
    END IF;
    RETURN gid;
END
$$;
COMMENT ON FUNCTION vms._group_id(text) IS 'Resolves a camera group name';

-- Could the caller hand out this grant?  It must hold the permission itself
-- over the whole scope, and (check_limits) with limits at least as wide.
CREATE FUNCTION vms._covers(permission text, scope text, camera_id integer, group_id integer,
                            recorded_window interval, valid_until timestamptz, check_limits boolean)
RETURNS boolean LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    inv oid := vms._invoker();
BEGIN
    IF vms._is_system_manager(inv::regrole) THEN
        RETURN true;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM vms.grants g
         WHERE g.permission OPERATOR(pg_catalog.=) permission
           AND vms._role_has(inv, g.role)
           AND g.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
           AND (g.valid_until IS NULL OR g.valid_until OPERATOR(pg_catalog.>) pg_catalog.now())
           AND (NOT check_limits OR
                ((g.recorded_window IS NULL OR recorded_window OPERATOR(pg_catalog.<=) g.recorded_window)
                 AND (g.valid_until IS NULL OR valid_until OPERATOR(pg_catalog.<=) g.valid_until)))
           AND (g.scope OPERATOR(pg_catalog.=) 'all'
                OR (scope OPERATOR(pg_catalog.=) 'group' AND g.scope OPERATOR(pg_catalog.=) 'group'
                    AND g.group_id OPERATOR(pg_catalog.=) group_id)
                OR (scope OPERATOR(pg_catalog.=) 'camera'
                    AND ((g.scope OPERATOR(pg_catalog.=) 'camera' AND g.camera_id OPERATOR(pg_catalog.=) camera_id)
                         OR (g.scope OPERATOR(pg_catalog.=) 'group' AND EXISTS (
                                SELECT 1 FROM vms.camera_group_members m
                                 WHERE m.group_id OPERATOR(pg_catalog.=) g.group_id
                                   AND m.camera_id OPERATOR(pg_catalog.=) camera_id))))));
END
$$;
COMMENT ON FUNCTION vms._covers(text, text, integer, integer, interval, timestamptz, boolean) IS
    'Does the caller hold the permission over this scope (and limits)?';

CREATE FUNCTION vms._principal_kind(name text)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT p.kind FROM vms.principals p WHERE p.name OPERATOR(pg_catalog.=) _principal_kind.name;
$$;
COMMENT ON FUNCTION vms._principal_kind(text) IS 'builtin, role, user, or NULL when not managed by pg_vms';

-- The caller may change who holds this role only if it could grant every
-- permission the role holds; built-in roles only a system manager may hand out.
CREATE FUNCTION vms._require_role_assignable(role text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    g record;
BEGIN
    IF vms._principal_kind(role) OPERATOR(pg_catalog.=) 'builtin' THEN
        IF NOT vms._is_system_manager(vms._invoker()) THEN
            PERFORM vms._deny(pg_catalog.format('only a system manager may assign the built-in role %s', role));
        END IF;
        RETURN;
    END IF;
    FOR g IN SELECT * FROM vms.grants x WHERE x.role OPERATOR(pg_catalog.=) role LOOP
        IF NOT vms._covers(g.permission, g.scope, g.camera_id, g.group_id, g.recorded_window, g.valid_until, true) THEN
            PERFORM vms._deny(pg_catalog.format('role %s holds %s (grant %s), which you may not grant', role, g.permission, g.id));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._require_role_assignable(text) IS 'Raises unless the caller could grant everything the role holds';

CREATE FUNCTION vms._touch_principal(name text)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, vms, pg_temp AS $$
    UPDATE vms.principals p SET access_changed_at = pg_catalog.now() WHERE p.name OPERATOR(pg_catalog.=) _touch_principal.name;
$$;
COMMENT ON FUNCTION vms._touch_principal(text) IS 'Records a change of grants or memberships';

------------------------------------------------------------------------------
-- Partitions
------------------------------------------------------------------------------
-- The time-partitioned tables and how their partitions are made.  A later
-- version adds a table with one row here.  Written only by install and
-- upgrade scripts: the key and index texts go into DDL as they are.
CREATE TABLE vms.partitioned_tables (
    parent        text PRIMARY KEY,
    period        text NOT NULL CHECK (period IN ('day', 'month')),
    key_columns   text NOT NULL,
    extra_indexes text[] NOT NULL DEFAULT '{}',
    append_only   boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE vms.partitioned_tables IS
    'Tables partitioned by time: period, per-partition primary key, extra indexes, append-only (set by the extension scripts)';
ALTER TABLE vms.partitioned_tables ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.partitioned_tables FORCE ROW LEVEL SECURITY;
INSERT INTO vms.partitioned_tables (parent, period, key_columns, append_only) VALUES
    ('segments', 'day', 'camera_id, start_time', false),
    ('events', 'day', 'camera_id, event_time, id', false),
    ('audit_log', 'month', 'seq', true);

CREATE FUNCTION vms._ensure_partition(parent text, from_ts timestamptz, to_ts timestamptz, suffix text)
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
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_vms partitions'));
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
COMMENT ON FUNCTION vms._ensure_partition(text, timestamptz, timestamptz, text) IS 'Creates one time partition if missing';

CREATE FUNCTION vms._ensure_day_partitions(day date)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    from_ts timestamptz := (day::text || ' 00:00:00+00')::timestamptz;
    to_ts timestamptz := ((day + 1)::text || ' 00:00:00+00')::timestamptz;
    suffix text := pg_catalog.to_char(day, 'YYYYMMDD');
    t text;
    n integer := 0;
BEGIN
    FOR t IN SELECT p.parent FROM vms.partitioned_tables p
              WHERE p.period OPERATOR(pg_catalog.=) 'day' ORDER BY p.parent LOOP
        IF vms._ensure_partition(t, from_ts, to_ts, suffix) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION vms._ensure_day_partitions(date) IS 'Creates the partitions of one UTC day for every daily partitioned table';

CREATE FUNCTION vms._ensure_audit_partition(month date)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    first date := pg_catalog.date_trunc('month', month)::date;
BEGIN
    RETURN vms._ensure_partition('audit_log',
        (first::text || ' 00:00:00+00')::timestamptz,
        (((first + '1 month'::interval)::date)::text || ' 00:00:00+00')::timestamptz,
        pg_catalog.to_char(first, 'YYYYMM'))::integer;
END
$$;
COMMENT ON FUNCTION vms._ensure_audit_partition(date) IS 'Creates the audit_log partition of one UTC month';

CREATE FUNCTION vms.create_partitions(days_ahead integer DEFAULT 7, days_behind integer DEFAULT 1)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    today date := (pg_catalog.now() AT TIME ZONE 'UTC')::date;
    n integer := 0;
    d integer;
BEGIN
    IF days_ahead IS NULL OR days_behind IS NULL OR days_ahead < 0 OR days_behind < 0
       OR days_ahead > 366 OR days_behind > 366 THEN
        RAISE EXCEPTION 'days_ahead and days_behind must be between 0 and 366'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR d IN -days_behind .. days_ahead LOOP
        n := n + vms._ensure_day_partitions(today + d);
    END LOOP;
    n := n + vms._ensure_audit_partition(today);
    n := n + vms._ensure_audit_partition((today + '1 month'::interval)::date);
    RETURN n;
END
$$;
COMMENT ON FUNCTION vms.create_partitions(integer, integer) IS
    'Creates daily segments/events partitions around today and monthly audit partitions; run by the worker every vms.partition_maintenance_interval';

------------------------------------------------------------------------------
-- Audit: store queued entries, seal, verify
------------------------------------------------------------------------------
CREATE FUNCTION vms._audit_store_queued(logged_at timestamptz, actor text, session_user_name text,
                                        client_addr text, action text, camera_id integer, target text,
                                        outcome text, details text, database_name text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    d jsonb;
BEGIN
    BEGIN
        d := NULLIF(details, '')::jsonb;
    EXCEPTION WHEN others THEN
        d := pg_catalog.jsonb_build_object('unparsed_details', details);
    END;
    IF database_name <> '' AND database_name OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN
        d := COALESCE(d, '{}'::jsonb) OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('database', database_name);
    END IF;
    BEGIN
        INSERT INTO vms.audit_pending (logged_at, actor, session_user_name, client_addr, action,
                                       camera_id, target, outcome, details)
        VALUES (logged_at, NULLIF(actor, ''), NULLIF(session_user_name, ''),
                NULLIF(client_addr, '')::inet, action, camera_id,
                NULLIF(target, ''), outcome, d);
    EXCEPTION WHEN others THEN
        -- Keep what can be kept; the entry is never silently dropped.
        INSERT INTO vms.audit_pending (logged_at, actor, session_user_name, action, camera_id,
                                       target, outcome, details)
        VALUES (logged_at, NULLIF(actor, ''), NULLIF(session_user_name, ''), 'audit_entry_damaged',
                camera_id, pg_catalog.left(action, 64), outcome,
                pg_catalog.jsonb_build_object('error', SQLERRM, 'client_addr', client_addr));
    END;
END
$$;
COMMENT ON FUNCTION vms._audit_store_queued(timestamptz, text, text, text, text, integer, text, text, text, text) IS
    'Used by the worker to store an entry from the shared-memory queue';

CREATE FUNCTION vms.seal_audit(max_entries integer DEFAULT 10000)
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
    -- One sealer at a time: the chain has a single writer.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_vms audit sealer'));
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
COMMENT ON FUNCTION vms.seal_audit(integer) IS
    'Seals pending audit entries into the hash chain (the worker calls it; one sealer at a time)';

CREATE FUNCTION vms._verify_audit(OUT ok boolean, OUT entries_checked bigint,
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
COMMENT ON FUNCTION vms._verify_audit() IS 'Body of vms.verify_audit(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.verify_audit(OUT ok boolean, OUT entries_checked bigint,
                                 OUT first_broken_seq bigint, OUT problem text)
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.verify_audit() IS
    'Recomputes the audit hash chain; ok, or the first broken entry and what is wrong with it';

------------------------------------------------------------------------------
-- API: cameras and camera groups
------------------------------------------------------------------------------
CREATE FUNCTION vms._add_camera(name text, stream_url text DEFAULT NULL, description text DEFAULT NULL,
                               location text DEFAULT NULL, camera_group text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    new_id integer;
    gid integer;
BEGIN
    PERFORM vms._check_text('camera name', name, 200);
    PERFORM vms._check_stream_url(stream_url);
    PERFORM vms._check_optional_text('description', description, 2000);
    PERFORM vms._check_optional_text('location', location, 500);
    IF camera_group IS NULL THEN
        PERFORM vms._require_all('manage_cameras');
    ELSE
        gid := vms._group_id(camera_group);
        IF NOT vms._covers('manage_cameras', 'group', NULL, gid, NULL, NULL, false) THEN
            PERFORM vms._deny(pg_catalog.format('manage_cameras on camera group %s', camera_group));
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM vms.cameras c WHERE c.name OPERATOR(pg_catalog.=) name) THEN
        RAISE EXCEPTION 'camera "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO vms.cameras (name, stream_url, description, location)
    VALUES (name, stream_url, description, location) RETURNING id INTO new_id;
    IF gid IS NOT NULL THEN
        INSERT INTO vms.camera_group_members (group_id, camera_id) VALUES (gid, new_id);
    END IF;
    PERFORM vms._audit('add_camera', new_id, name,
                       pg_catalog.jsonb_build_object('camera_group', camera_group, 'location', location));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('add_camera', new_id, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._add_camera(text, text, text, text, text) IS 'Body of vms.add_camera(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.add_camera(name text, stream_url text DEFAULT NULL, description text DEFAULT NULL,
                               location text DEFAULT NULL, camera_group text DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.add_camera(text, text, text, text, text) IS
    'Adds a camera (manage_cameras with scope all, or on the camera group it is added to); returns its id';

CREATE FUNCTION vms._update_camera(camera_id integer, name text DEFAULT NULL, stream_url text DEFAULT NULL,
                                  description text DEFAULT NULL, location text DEFAULT NULL,
                                  enabled boolean DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera_id);
    IF name IS NOT NULL THEN
        PERFORM vms._check_text('camera name', name, 200);
        IF EXISTS (SELECT 1 FROM vms.cameras c WHERE c.name OPERATOR(pg_catalog.=) name
                                              AND c.id OPERATOR(pg_catalog.<>) camera_id) THEN
            RAISE EXCEPTION 'camera "%" already exists', name USING ERRCODE = 'duplicate_object';
        END IF;
    END IF;
    PERFORM vms._check_stream_url(stream_url);
    PERFORM vms._check_optional_text('description', description, 2000);
    PERFORM vms._check_optional_text('location', location, 500);
    UPDATE vms.cameras c
       SET name = COALESCE(name, c.name),
           stream_url = COALESCE(stream_url, c.stream_url),
           description = COALESCE(description, c.description),
           location = COALESCE(location, c.location),
           enabled = COALESCE(enabled, c.enabled),
           updated_at = pg_catalog.now()
     WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    PERFORM vms._audit('update_camera', camera_id,
                       (SELECT c.name FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id),
                       pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                           'name', name, 'stream_url_changed', stream_url IS NOT NULL,
                           'description', description, 'location', location, 'enabled', enabled)));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('update_camera', camera_id, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._update_camera(integer, text, text, text, text, boolean) IS 'Body of vms.update_camera(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.update_camera(camera_id integer, name text DEFAULT NULL, stream_url text DEFAULT NULL,
                                  description text DEFAULT NULL, location text DEFAULT NULL,
                                  enabled boolean DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.update_camera(integer, text, text, text, text, boolean) IS
    'Changes a camera (manage_cameras on it); NULL arguments leave a field unchanged';

CREATE FUNCTION vms._assign_recorder(camera_id integer, recorder text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera_id);
    IF recorder IS NOT NULL THEN
        PERFORM vms._check_text('recorder', recorder, 63);
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                        WHERE r.rolname OPERATOR(pg_catalog.=) recorder AND r.rolcanlogin)
           OR NOT vms._role_has((SELECT r.oid FROM pg_catalog.pg_roles r
                                  WHERE r.rolname OPERATOR(pg_catalog.=) recorder), 'vms_recorder') THEN
            RAISE EXCEPTION 'recorder "%" is not a login role holding vms_recorder', recorder
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    UPDATE vms.cameras c SET recorder = recorder, updated_at = pg_catalog.now()
     WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    PERFORM vms._audit('assign_recorder', camera_id, recorder, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('assign_recorder', camera_id, recorder, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._assign_recorder(integer, text) IS 'Body of vms.assign_recorder(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.assign_recorder(camera_id integer, recorder text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.assign_recorder(integer, text) IS
    'Assigns the recording server (a vms_recorder login role) that may register this camera''s recordings; NULL unassigns';

CREATE FUNCTION vms._remove_camera(camera_id integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    cam_name text;
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera_id);
    SELECT c.name INTO cam_name FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    IF EXISTS (SELECT 1 FROM vms.segments s WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.events e WHERE e.camera_id OPERATOR(pg_catalog.=) camera_id) THEN
        RAISE EXCEPTION 'camera % still has recordings', camera_id
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
COMMENT ON FUNCTION vms._remove_camera(integer) IS 'Body of vms.remove_camera(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.remove_camera(camera_id integer)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.remove_camera(integer) IS
    'Removes a camera without recordings (manage_cameras on it); its grants go with it';

CREATE FUNCTION vms._add_camera_group(name text, description text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    new_id integer;
BEGIN
    PERFORM vms._check_text('camera group name', name, 200);
    PERFORM vms._check_optional_text('description', description, 2000);
    PERFORM vms._require_all('manage_cameras');
    IF EXISTS (SELECT 1 FROM vms.camera_groups g WHERE g.name OPERATOR(pg_catalog.=) name) THEN
        RAISE EXCEPTION 'camera group "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO vms.camera_groups (name, description) VALUES (name, description) RETURNING id INTO new_id;
    PERFORM vms._audit('add_camera_group', NULL, name, NULL);
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('add_camera_group', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._add_camera_group(text, text) IS 'Body of vms.add_camera_group(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.add_camera_group(name text, description text DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.add_camera_group(text, text) IS
    'Adds a camera group (manage_cameras with scope all)';

CREATE FUNCTION vms._remove_camera_group(name text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    gid integer;
BEGIN
    PERFORM vms._check_text('camera group name', name, 200);
    PERFORM vms._require_all('manage_cameras');
    gid := vms._group_id(name);
    DELETE FROM vms.camera_groups g WHERE g.id OPERATOR(pg_catalog.=) gid;
    PERFORM vms._audit('remove_camera_group', NULL, name, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('remove_camera_group', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._remove_camera_group(text) IS 'Body of vms.remove_camera_group(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.remove_camera_group(name text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.remove_camera_group(text) IS
    'Removes a camera group and the grants scoped to it (manage_cameras with scope all)';

CREATE FUNCTION vms._add_camera_to_group(camera_group text, camera_id integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    gid integer;
BEGIN
    gid := vms._group_id(camera_group);
    -- Both sides: the group's admins gain power over the camera.
    PERFORM vms._require_camera('manage_cameras', camera_id);
    IF NOT vms._covers('manage_cameras', 'group', NULL, gid, NULL, NULL, false) THEN
        PERFORM vms._deny(pg_catalog.format('manage_cameras on camera group %s', camera_group));
    END IF;
    INSERT INTO vms.camera_group_members (group_id, camera_id) VALUES (gid, camera_id)
    ON CONFLICT DO NOTHING;
    PERFORM vms._audit('add_camera_to_group', camera_id, camera_group, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('add_camera_to_group', camera_id, camera_group, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._add_camera_to_group(text, integer) IS 'Body of vms.add_camera_to_group(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.add_camera_to_group(camera_group text, camera_id integer)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.add_camera_to_group(text, integer) IS
    'Puts a camera in a group (manage_cameras on both)';

CREATE FUNCTION vms._remove_camera_from_group(camera_group text, camera_id integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    gid integer;
BEGIN
    gid := vms._group_id(camera_group);
    PERFORM vms._require_camera('manage_cameras', camera_id);
    IF NOT vms._covers('manage_cameras', 'group', NULL, gid, NULL, NULL, false) THEN
        PERFORM vms._deny(pg_catalog.format('manage_cameras on camera group %s', camera_group));
    END IF;
    DELETE FROM vms.camera_group_members m
     WHERE m.group_id OPERATOR(pg_catalog.=) gid AND m.camera_id OPERATOR(pg_catalog.=) camera_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'camera % is not in camera group "%"', camera_id, camera_group
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._audit('remove_camera_from_group', camera_id, camera_group, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('remove_camera_from_group', camera_id, camera_group, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._remove_camera_from_group(text, integer) IS 'Body of vms.remove_camera_from_group(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.remove_camera_from_group(camera_group text, camera_id integer)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.remove_camera_from_group(text, integer) IS
    'Takes a camera out of a group (manage_cameras on both)';

------------------------------------------------------------------------------
-- API: roles, users, memberships
------------------------------------------------------------------------------
CREATE FUNCTION vms._create_role(name text, description text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._check_role_name('role name', name);
    PERFORM vms._check_optional_text('description', description, 2000);
    PERFORM vms._require_any('manage_roles');
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) name) THEN
        RAISE EXCEPTION 'role "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', name);
    EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', name, 'pg_vms role: ' || COALESCE(description, ''));
    INSERT INTO vms.principals (name, kind, description, created_by)
    VALUES (name, 'role', description, vms._invoker_name());
    PERFORM vms._audit('create_role', NULL, name, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('create_role', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._create_role(text, text) IS 'Body of vms.create_role(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.create_role(name text, description text DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.create_role(text, text) IS
    'Creates a VMS role (a NOLOGIN role with no permissions); needs manage_roles';

CREATE FUNCTION vms._drop_role(name text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._check_text('role name', name, 63);
    PERFORM vms._require_any('manage_roles');
    IF vms._principal_kind(name) IS DISTINCT FROM 'role' THEN
        RAISE EXCEPTION 'VMS role "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._require_role_assignable(name);
    DELETE FROM vms.principals p WHERE p.name OPERATOR(pg_catalog.=) name;
    EXECUTE pg_catalog.format('DROP ROLE %I', name);
    PERFORM vms._audit('drop_role', NULL, name, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('drop_role', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._drop_role(text) IS 'Body of vms.drop_role(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.drop_role(name text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.drop_role(text) IS
    'Drops a VMS role and its grants; needs manage_roles over everything it holds';

CREATE FUNCTION vms._create_user(name text, password text DEFAULT NULL, description text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._check_role_name('user name', name);
    PERFORM vms._check_optional_text('description', description, 2000);
    IF password IS NOT NULL AND password = '' THEN
        RAISE EXCEPTION 'password must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM vms._require_any('manage_users');
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) name) THEN
        RAISE EXCEPTION 'role "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    -- Only a SCRAM verifier ever enters a statement; the password policy
    -- (check_password_hook) saw the plaintext in vms._password_verifier().
    EXECUTE pg_catalog.format('CREATE ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS%s',
                              name, CASE WHEN password IS NULL THEN ''
                                         ELSE pg_catalog.format(' PASSWORD %L', vms._password_verifier(name, password)) END);
    EXECUTE pg_catalog.format('GRANT vms_user TO %I', name);
    EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', name, 'pg_vms user: ' || COALESCE(description, ''));
    INSERT INTO vms.principals (name, kind, description, created_by)
    VALUES (name, 'user', description, vms._invoker_name());
    PERFORM vms._audit('create_user', NULL, name, pg_catalog.jsonb_build_object('password_set', password IS NOT NULL));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('create_user', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._create_user(text, text, text) IS 'Body of vms.create_user(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.create_user(name text, password text DEFAULT NULL, description text DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.create_user(text, text, text) IS
    'Creates a VMS user (LOGIN role, no permissions until added to a VMS role); needs manage_users. See docs/permissions.md on passing the password.';

CREATE FUNCTION vms._drop_user(name text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    uid oid;
    held text;
BEGIN
    PERFORM vms._check_text('user name', name, 63);
    PERFORM vms._require_any('manage_users');
    IF vms._principal_kind(name) IS DISTINCT FROM 'user' THEN
        RAISE EXCEPTION 'VMS user "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    SELECT r.oid INTO uid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) name;
    -- Dropping a user takes away every role it holds: allowed only to whom
    -- could hand out (and so take away) each of them.
    FOR held IN SELECT p.name FROM vms.principals p
                 WHERE p.kind OPERATOR(pg_catalog.<>) 'user' AND p.name OPERATOR(pg_catalog.<>) 'vms_user'
                   AND uid IS NOT NULL AND vms._role_has(uid, p.name) LOOP
        PERFORM vms._require_role_assignable(held);
    END LOOP;
    DELETE FROM vms.principals p WHERE p.name OPERATOR(pg_catalog.=) name;
    -- A later role of the same name must not inherit the recorder's cameras.
    UPDATE vms.cameras c SET recorder = NULL, updated_at = pg_catalog.now()
     WHERE c.recorder OPERATOR(pg_catalog.=) name;
    IF uid IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP ROLE %I', name);
    END IF;
    PERFORM vms._audit('drop_user', NULL, name, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('drop_user', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._drop_user(text) IS 'Body of vms.drop_user(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.drop_user(name text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.drop_user(text) IS
    'Drops a VMS user; needs manage_users';

CREATE FUNCTION vms._add_member(role text, username text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._check_text('role', role, 63);
    PERFORM vms._check_text('username', username, 63);
    PERFORM vms._require_any('manage_users');
    IF vms._principal_kind(role) IS NULL OR vms._principal_kind(role) OPERATOR(pg_catalog.=) 'user'
       OR role OPERATOR(pg_catalog.=) 'vms_user' THEN
        RAISE EXCEPTION 'VMS role "%" does not exist', role USING ERRCODE = 'undefined_object';
    END IF;
    IF vms._principal_kind(username) IS DISTINCT FROM 'user' THEN
        RAISE EXCEPTION 'VMS user "%" does not exist', username USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._require_role_assignable(role);
    EXECUTE pg_catalog.format('GRANT %I TO %I', role, username);
    PERFORM vms._touch_principal(username);
    PERFORM vms._audit('add_member', NULL, username, pg_catalog.jsonb_build_object('role', role));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('add_member', NULL, username, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._add_member(text, text) IS 'Body of vms.add_member(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.add_member(role text, username text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.add_member(text, text) IS
    'Gives a user a VMS role; needs manage_users and the right to grant everything the role holds (built-in roles: system managers only)';

CREATE FUNCTION vms._remove_member(role text, username text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._check_text('role', role, 63);
    PERFORM vms._check_text('username', username, 63);
    PERFORM vms._require_any('manage_users');
    IF vms._principal_kind(role) IS NULL OR vms._principal_kind(role) OPERATOR(pg_catalog.=) 'user'
       OR role OPERATOR(pg_catalog.=) 'vms_user' THEN
        RAISE EXCEPTION 'VMS role "%" does not exist', role USING ERRCODE = 'undefined_object';
    END IF;
    IF vms._principal_kind(username) IS DISTINCT FROM 'user' THEN
        RAISE EXCEPTION 'VMS user "%" does not exist', username USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._require_role_assignable(role);
    EXECUTE pg_catalog.format('REVOKE %I FROM %I', role, username);
    PERFORM vms._touch_principal(username);
    PERFORM vms._audit('remove_member', NULL, username, pg_catalog.jsonb_build_object('role', role));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('remove_member', NULL, username, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._remove_member(text, text) IS 'Body of vms.remove_member(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.remove_member(role text, username text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.remove_member(text, text) IS
    'Takes a VMS role away from a user (same rights as vms.add_member)';

------------------------------------------------------------------------------
-- API: grants
------------------------------------------------------------------------------
CREATE FUNCTION vms._grant_permission(role text, permission text, camera_id integer DEFAULT NULL,
                                     camera_group text DEFAULT NULL, recorded_window interval DEFAULT NULL,
                                     valid_until timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    scope text;
    gid integer;
    new_id bigint;
BEGIN
    PERFORM vms._check_text('role', role, 63);
    PERFORM vms._check_text('permission', permission, 63);
    PERFORM vms._require_any('manage_roles');
    IF NOT EXISTS (SELECT 1 FROM vms.permissions p WHERE p.name OPERATOR(pg_catalog.=) permission) THEN
        RAISE EXCEPTION 'unknown permission "%"', permission
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The permissions are listed in vms.permissions.';
    END IF;
    IF vms._principal_kind(role) IS NULL OR vms._principal_kind(role) OPERATOR(pg_catalog.=) 'user'
       OR role OPERATOR(pg_catalog.=) 'vms_user' THEN
        RAISE EXCEPTION 'VMS role "%" does not exist', role USING ERRCODE = 'undefined_object',
            HINT = 'Permissions are granted to VMS roles (vms.create_role), and users hold roles.';
    END IF;
    IF camera_id IS NOT NULL AND camera_group IS NOT NULL THEN
        RAISE EXCEPTION 'give camera_id or camera_group, not both' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF recorded_window IS NOT NULL AND recorded_window <= '0'::interval THEN
        RAISE EXCEPTION 'recorded_window must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF valid_until IS NOT NULL AND valid_until <= pg_catalog.now() THEN
        RAISE EXCEPTION 'valid_until must be in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF camera_id IS NOT NULL THEN
        scope := 'camera';
        IF NOT vms._covers('manage_roles', 'camera', camera_id, NULL, NULL, NULL, false) THEN
            PERFORM vms._deny(pg_catalog.format('manage_roles on camera %s', camera_id));
        END IF;
        IF NOT vms._camera_exists(camera_id) THEN
            RAISE EXCEPTION 'camera % does not exist', camera_id USING ERRCODE = 'undefined_object';
        END IF;
    ELSIF camera_group IS NOT NULL THEN
        scope := 'group';
        gid := vms._group_id(camera_group);
        IF NOT vms._covers('manage_roles', 'group', NULL, gid, NULL, NULL, false) THEN
            PERFORM vms._deny(pg_catalog.format('manage_roles on camera group %s', camera_group));
        END IF;
    ELSE
        scope := 'all';
        IF NOT vms._covers('manage_roles', 'all', NULL, NULL, NULL, NULL, false) THEN
            PERFORM vms._deny('manage_roles with scope all');
        END IF;
    END IF;
    IF vms._principal_kind(role) OPERATOR(pg_catalog.=) 'builtin'
       AND NOT vms._is_system_manager(vms._invoker()) THEN
        PERFORM vms._deny(pg_catalog.format('only a system manager may grant to the built-in role %s', role));
    END IF;
    -- Nobody hands out more than they hold.
    IF NOT vms._covers(permission, scope, camera_id, gid, recorded_window, valid_until, true) THEN
        PERFORM vms._deny(pg_catalog.format('you do not hold %s over this scope with these limits', permission),
                          'A grant may not exceed the grantor''s own permission, scope, recorded window or validity.');
    END IF;
    INSERT INTO vms.grants (role, permission, scope, camera_id, group_id, recorded_window, valid_until, granted_by)
    VALUES (role, permission, scope, camera_id, gid, recorded_window, valid_until, vms._invoker_name())
    RETURNING id INTO new_id;
    PERFORM vms._touch_principal(role);
    PERFORM vms._audit('grant_permission', camera_id, role,
                       pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                           'grant_id', new_id, 'permission', permission, 'scope', scope,
                           'camera_group', camera_group, 'recorded_window', recorded_window::text,
                           'valid_until', valid_until)));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('grant_permission', camera_id, role, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._grant_permission(text, text, integer, text, interval, timestamptz) IS 'Body of vms.grant_permission(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.grant_permission(role text, permission text, camera_id integer DEFAULT NULL,
                                     camera_group text DEFAULT NULL, recorded_window interval DEFAULT NULL,
                                     valid_until timestamptz DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.grant_permission(text, text, integer, text, interval, timestamptz) IS
    'Grants a permission to a VMS role on one camera, a camera group, or all cameras (neither given); returns the grant id';

CREATE FUNCTION vms._revoke_permission(grant_id bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    g vms.grants%ROWTYPE;
BEGIN
    IF grant_id IS NULL THEN
        RAISE EXCEPTION 'grant_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO g FROM vms.grants x WHERE x.id OPERATOR(pg_catalog.=) grant_id;
    IF g.id IS NULL THEN
        PERFORM vms._require_any('manage_roles');
        RAISE EXCEPTION 'grant % does not exist', grant_id USING ERRCODE = 'undefined_object';
    END IF;
    IF g.builtin THEN
        RAISE EXCEPTION 'grant % is built in', grant_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT vms._covers('manage_roles', g.scope, g.camera_id, g.group_id, NULL, NULL, false)
       OR NOT vms._covers(g.permission, g.scope, g.camera_id, g.group_id, NULL, NULL, false) THEN
        PERFORM vms._deny(pg_catalog.format('you may not revoke grant %s', grant_id));
    END IF;
    DELETE FROM vms.grants x WHERE x.id OPERATOR(pg_catalog.=) grant_id;
    PERFORM vms._touch_principal(g.role);
    PERFORM vms._audit('revoke_permission', g.camera_id, g.role,
                       pg_catalog.jsonb_build_object('grant_id', grant_id, 'permission', g.permission, 'scope', g.scope));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('revoke_permission', g.camera_id, COALESCE(g.role, grant_id::text), SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._revoke_permission(bigint) IS 'Body of vms.revoke_permission(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.revoke_permission(grant_id bigint)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.revoke_permission(bigint) IS
    'Revokes a grant (manage_roles and the permission itself over its scope)';

------------------------------------------------------------------------------
-- API: recordings index (vms_recorder members only)
------------------------------------------------------------------------------
CREATE FUNCTION vms._require_recorder(camera_id integer)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    inv oid := vms._invoker();
    assigned text;
BEGIN
    IF camera_id IS NULL THEN
        RAISE EXCEPTION 'camera_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT vms._role_has(inv, 'vms_recorder') THEN
        PERFORM vms._deny('only recording servers (members of vms_recorder) may do this');
    END IF;
    SELECT c.recorder INTO assigned FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'camera % does not exist', camera_id USING ERRCODE = 'undefined_object';
    END IF;
    IF assigned IS DISTINCT FROM vms._invoker_name() THEN
        PERFORM vms._deny(pg_catalog.format('camera %s is not assigned to recorder %s', camera_id, inv::regrole),
                          'A manager assigns cameras with vms.assign_recorder().');
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_recorder(integer) IS 'Raises unless the caller is the vms_recorder assigned to the camera';

CREATE FUNCTION vms._register_segment(camera_id integer, start_time timestamptz, end_time timestamptz,
                                     path text, bytes bigint, sha256 bytea, codec text DEFAULT NULL,
                                     width integer DEFAULT NULL, height integer DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
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
    PERFORM vms._ensure_day_partitions((start_time AT TIME ZONE 'UTC')::date);
    INSERT INTO vms.segments (camera_id, start_time, end_time, path, bytes, sha256, codec, width, height, recorder)
    VALUES (camera_id, start_time, end_time, path, bytes, sha256, codec, width, height, vms._invoker_name())
    RETURNING id INTO new_id;
    PERFORM vms._audit('register_segment', camera_id, path,
                       pg_catalog.jsonb_build_object('segment_id', new_id, 'start_time', start_time,
                                                     'end_time', end_time, 'bytes', bytes,
                                                     'sha256', pg_catalog.encode(sha256, 'hex')));
    RETURN new_id;
EXCEPTION
    WHEN unique_violation THEN
        PERFORM vms._fail('register_segment', camera_id, path, SQLSTATE, SQLERRM);
        RAISE EXCEPTION 'camera % already has a segment starting at %', camera_id, start_time
            USING ERRCODE = 'unique_violation';
    WHEN OTHERS THEN
        PERFORM vms._fail('register_segment', camera_id, path, SQLSTATE, SQLERRM);
        RAISE;
END
$$;
COMMENT ON FUNCTION vms._register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer) IS 'Body of vms.register_segment(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.register_segment(camera_id integer, start_time timestamptz, end_time timestamptz,
                                     path text, bytes bigint, sha256 bytea, codec text DEFAULT NULL,
                                     width integer DEFAULT NULL, height integer DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer) IS
    'Registers a closed, durable segment file (the camera''s assigned vms_recorder only); returns its id';

CREATE FUNCTION vms._register_event(camera_id integer, event_time timestamptz, kind text, details jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    new_id bigint;
BEGIN
    PERFORM vms._require_recorder(camera_id);
    IF event_time IS NULL THEN
        RAISE EXCEPTION 'event_time must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM vms._check_text('kind', kind, 64);
    IF event_time > pg_catalog.now() + '5 minutes'::interval THEN
        RAISE EXCEPTION 'event_time is in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF details IS NOT NULL AND pg_catalog.octet_length(details::text) > 65536 THEN
        RAISE EXCEPTION 'details are too large (at most 64 kB)' USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM vms._ensure_day_partitions((event_time AT TIME ZONE 'UTC')::date);
    INSERT INTO vms.events (camera_id, event_time, kind, details, recorder)
    VALUES (camera_id, event_time, kind, details, vms._invoker_name())
    RETURNING id INTO new_id;
    PERFORM vms._audit('register_event', camera_id, kind,
                       pg_catalog.jsonb_build_object('event_id', new_id, 'event_time', event_time));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('register_event', camera_id, kind, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._register_event(integer, timestamptz, text, jsonb) IS 'Body of vms.register_event(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.register_event(camera_id integer, event_time timestamptz, kind text, details jsonb DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.register_event(integer, timestamptz, text, jsonb) IS
    'Registers a camera event (the camera''s assigned vms_recorder only); returns its id';

------------------------------------------------------------------------------
-- Admin views
------------------------------------------------------------------------------
CREATE VIEW vms.effective_permissions WITH (security_invoker = true) AS
SELECT u.name AS username, g.role AS via_role, g.permission, c.id AS camera_id, c.name AS camera_name,
       g.scope, grp.name AS camera_group, g.recorded_window, g.valid_from, g.valid_until, g.id AS grant_id
  FROM vms.principals u
  JOIN pg_catalog.pg_roles ur ON ur.rolname OPERATOR(pg_catalog.=) u.name
  JOIN vms.grants g ON vms._role_has(ur.oid, g.role)
  LEFT JOIN vms.camera_groups grp ON grp.id OPERATOR(pg_catalog.=) g.group_id
  JOIN vms.cameras c ON (g.scope OPERATOR(pg_catalog.=) 'all'
                         OR (g.scope OPERATOR(pg_catalog.=) 'camera' AND c.id OPERATOR(pg_catalog.=) g.camera_id)
                         OR (g.scope OPERATOR(pg_catalog.=) 'group' AND EXISTS (
                                SELECT 1 FROM vms.camera_group_members m
                                 WHERE m.group_id OPERATOR(pg_catalog.=) g.group_id
                                   AND m.camera_id OPERATOR(pg_catalog.=) c.id)))
 WHERE u.kind OPERATOR(pg_catalog.=) 'user'
   AND g.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
   AND (g.valid_until IS NULL OR g.valid_until OPERATOR(pg_catalog.>) pg_catalog.now())
UNION ALL
SELECT u.name, 'vms_system_manager', p.name, c.id, c.name, 'all', NULL, NULL, NULL, NULL, NULL
  FROM vms.principals u
  JOIN pg_catalog.pg_roles ur ON ur.rolname OPERATOR(pg_catalog.=) u.name
  CROSS JOIN vms.permissions p
  CROSS JOIN vms.cameras c
 WHERE u.kind OPERATOR(pg_catalog.=) 'user' AND vms._role_has(ur.oid, 'vms_system_manager');
COMMENT ON VIEW vms.effective_permissions IS
    'Who holds what: each user''s permissions per camera now, and the role and grant they come from';

CREATE VIEW vms.access_review WITH (security_invoker = true) AS
SELECT p.name, p.kind, p.description, p.created_by, p.created_at,
       r.rolcanlogin AS can_login,
       r.rolvaliduntil AS password_valid_until,
       ARRAY(SELECT m.name FROM vms.principals m
              WHERE m.kind OPERATOR(pg_catalog.<>) 'user' AND m.name OPERATOR(pg_catalog.<>) p.name
                AND m.name OPERATOR(pg_catalog.<>) 'vms_user'
                AND vms._role_has(r.oid, m.name)
              ORDER BY m.name) AS member_of,
       ARRAY(SELECT u.name FROM vms.principals u
               JOIN pg_catalog.pg_roles ur ON ur.rolname OPERATOR(pg_catalog.=) u.name
              WHERE u.kind OPERATOR(pg_catalog.=) 'user' AND p.kind OPERATOR(pg_catalog.<>) 'user'
                AND p.name OPERATOR(pg_catalog.<>) 'vms_user'
                AND vms._role_has(ur.oid, p.name)
              ORDER BY u.name) AS members,
       (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                   'grant_id', g.id, 'permission', g.permission, 'scope', g.scope, 'camera_id', g.camera_id,
                   'group_id', g.group_id, 'recorded_window', g.recorded_window::text,
                   'valid_until', g.valid_until, 'granted_by', g.granted_by, 'granted_at', g.granted_at,
                   'last_used_at', g.last_used_at)) ORDER BY g.id)
          FROM vms.grants g WHERE g.role OPERATOR(pg_catalog.=) p.name) AS grants,
       p.access_changed_at AS last_access_change,
       (SELECT pg_catalog.count(*) FROM vms.grants g
         WHERE g.role OPERATOR(pg_catalog.=) p.name AND g.last_used_at IS NULL) AS unused_grants
  FROM vms.principals p
  LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) p.name;
COMMENT ON VIEW vms.access_review IS
    'Access review: every VMS role and user, memberships, grants, last change and grants never used';

------------------------------------------------------------------------------
-- Row-level security: enabled and forced on every data table
------------------------------------------------------------------------------
ALTER TABLE vms.permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY readable ON vms.permissions FOR SELECT USING (true);

ALTER TABLE vms.cameras ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.cameras FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vms.cameras FOR SELECT
    USING (id OPERATOR(pg_catalog.=) ANY (vms.visible_cameras())
           OR recorder OPERATOR(pg_catalog.=) CURRENT_USER::text);

ALTER TABLE vms.camera_group_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.camera_group_members FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vms.camera_group_members FOR SELECT
    USING (camera_id OPERATOR(pg_catalog.=) ANY (vms.visible_cameras()));

ALTER TABLE vms.camera_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.camera_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vms.camera_groups FOR SELECT
    USING (vms.has_permission('manage_cameras', true)
           OR EXISTS (SELECT 1 FROM vms.camera_group_members m WHERE m.group_id OPERATOR(pg_catalog.=) id));

ALTER TABLE vms.principals ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.principals FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vms.principals FOR SELECT
    USING (name OPERATOR(pg_catalog.=) CURRENT_USER::text
           OR vms._role_has((SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER), name)
           OR vms.has_permission('manage_users') OR vms.has_permission('manage_roles'));

ALTER TABLE vms.grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.grants FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vms.grants FOR SELECT
    USING (vms._role_has((SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER), role)
           OR vms.has_permission('manage_users') OR vms.has_permission('manage_roles'));

ALTER TABLE vms.segments ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.segments FORCE ROW LEVEL SECURITY;
CREATE POLICY viewable ON vms.segments FOR SELECT
    USING (camera_id OPERATOR(pg_catalog.=) ANY (vms.permitted_cameras('view_recorded'))
           AND vms.authorize('view_recorded', camera_id, start_time));

ALTER TABLE vms.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.events FORCE ROW LEVEL SECURITY;
CREATE POLICY viewable ON vms.events FOR SELECT
    USING (camera_id OPERATOR(pg_catalog.=) ANY (vms.permitted_cameras('view_metadata'))
           AND vms.authorize('view_metadata', camera_id, event_time));

ALTER TABLE vms.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY auditors ON vms.audit_log FOR SELECT
    USING (CASE WHEN camera_id IS NULL THEN vms.has_permission('view_audit', true)
                ELSE vms.authorize('view_audit', camera_id, logged_at) END);

ALTER TABLE vms.audit_pending ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.audit_pending FORCE ROW LEVEL SECURITY;
CREATE POLICY auditors ON vms.audit_pending FOR SELECT
    USING (CASE WHEN camera_id IS NULL THEN vms.has_permission('view_audit', true)
                ELSE vms.authorize('view_audit', camera_id, logged_at) END);

ALTER TABLE vms.audit_anchor ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.audit_anchor FORCE ROW LEVEL SECURITY;
CREATE POLICY auditors ON vms.audit_anchor FOR SELECT USING (vms.has_permission('view_audit'));

------------------------------------------------------------------------------
-- Dump support: user data in extension tables goes into pg_dump
------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('vms.cameras', '');
SELECT pg_catalog.pg_extension_config_dump('vms.cameras_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vms.camera_groups', '');
SELECT pg_catalog.pg_extension_config_dump('vms.camera_groups_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vms.camera_group_members', '');
SELECT pg_catalog.pg_extension_config_dump('vms.principals', $$WHERE kind <> 'builtin'$$);
SELECT pg_catalog.pg_extension_config_dump('vms.grants', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('vms.grants_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vms.segments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vms.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vms.audit_pending', '');
SELECT pg_catalog.pg_extension_config_dump('vms.audit_pending_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vms.audit_anchor', 'WHERE seq <> 0');
-- Partitions of vms.segments, vms.events and vms.audit_log are created at
-- run time, are not extension members, and so are dumped with their rows.

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC; VMS principals through vms_user
------------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA vms FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA vms FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA vms FROM PUBLIC;
REVOKE ALL ON SCHEMA vms FROM PUBLIC;

GRANT USAGE ON SCHEMA vms TO vms_user;
GRANT SELECT ON vms.permissions, vms.cameras, vms.camera_groups, vms.camera_group_members,
                vms.principals, vms.grants, vms.segments, vms.events,
                vms.audit_log, vms.audit_pending, vms.audit_anchor,
                vms.effective_permissions, vms.access_review
   TO vms_user;

GRANT EXECUTE ON FUNCTION
    vms.authorize(text, integer, timestamptz),
    vms.permitted_cameras(text),
    vms.visible_cameras(),
    vms.has_permission(text, boolean),
    vms.audit_queue_length(),
    vms.audit_hash(bytea, bigint, timestamptz, timestamptz, text, text, inet, text, integer, text, text, jsonb),
    vms.verify_audit(),
    vms.add_camera(text, text, text, text, text),
    vms.update_camera(integer, text, text, text, text, boolean),
    vms.assign_recorder(integer, text),
    vms.remove_camera(integer),
    vms.add_camera_group(text, text),
    vms.remove_camera_group(text),
    vms.add_camera_to_group(text, integer),
    vms.remove_camera_from_group(text, integer),
    vms.create_role(text, text),
    vms.drop_role(text),
    vms.create_user(text, text, text),
    vms.drop_user(text),
    vms.add_member(text, text),
    vms.remove_member(text, text),
    vms.grant_permission(text, text, integer, text, interval, timestamptz),
    vms.revoke_permission(bigint),
    vms.register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer),
    vms.register_event(integer, timestamptz, text, jsonb)
   TO vms_user;
-- Helpers the RLS policies and views call as the querying user.
GRANT EXECUTE ON FUNCTION vms._role_has(oid, text) TO vms_user;
