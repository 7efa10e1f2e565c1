-- pg_vms 1.1: the master key, envelope encryption, camera credentials.
-- See docs/keys.md.  Same conventions as pg_vms--1.0.sql.

\echo Use "ALTER EXTENSION pg_vms UPDATE TO '1.1'" to load this file. \quit

------------------------------------------------------------------------------
-- Data keys, wrapped by the master key
------------------------------------------------------------------------------
CREATE SEQUENCE vms.data_keys_id_seq AS bigint;
CREATE TABLE vms.data_keys (
    id             bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.data_keys_id_seq'::pg_catalog.regclass),
    purpose        text NOT NULL CHECK (purpose IN ('camera_credentials', 'totp_secrets', 'facex_subject', 'facex_events')),
    subject_id     bigint,
    master_version integer NOT NULL CHECK (master_version > 0),
    wrapped        bytea CHECK (wrapped IS NULL OR pg_catalog.length(wrapped) = 60),
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rewrapped_at   timestamptz,
    destroyed_at   timestamptz,
    CHECK ((destroyed_at IS NULL) = (wrapped IS NOT NULL))
);
ALTER SEQUENCE vms.data_keys_id_seq OWNED BY vms.data_keys.id;
CREATE UNIQUE INDEX data_keys_one_live_per_purpose ON vms.data_keys (purpose)
    WHERE subject_id IS NULL AND destroyed_at IS NULL;
COMMENT ON TABLE vms.data_keys IS
    'Data keys (per purpose, per FaceX subject), AES-256-GCM-wrapped by the master key; readable by nobody but the owner';
COMMENT ON COLUMN vms.data_keys.master_version IS 'Version of the master key that wraps this key';
ALTER TABLE vms.data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.data_keys FORCE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('vms.data_keys', '');
SELECT pg_catalog.pg_extension_config_dump('vms.data_keys_id_seq', '');

CREATE FUNCTION vms._new_data_key(id bigint, purpose text, subject_id bigint, version integer)
RETURNS bytea AS 'MODULE_PATHNAME', 'vms_new_data_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._new_data_key(bigint, text, bigint, integer) IS
    'A fresh data key wrapped by a master key version for one row (id, purpose, subject)';
CREATE FUNCTION vms._rewrap_data_key(id bigint, purpose text, subject_id bigint, master_version integer,
                                     wrapped bytea, new_version integer)
RETURNS bytea AS 'MODULE_PATHNAME', 'vms_rewrap_data_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._rewrap_data_key(bigint, text, bigint, integer, bytea, integer) IS
    'Rewraps a data key under another master key version';
CREATE FUNCTION vms._encrypt(key_id bigint, plaintext bytea, binding text)
RETURNS bytea AS 'MODULE_PATHNAME', 'vms_encrypt' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._encrypt(bigint, bytea, text) IS 'AES-256-GCM with a fresh nonce; binding names table.column:row';
CREATE FUNCTION vms._decrypt(ciphertext bytea, binding text)
RETURNS bytea AS 'MODULE_PATHNAME', 'vms_decrypt' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION vms._decrypt(bytea, text) IS 'Decrypts a value of vms._encrypt; fails unless binding matches';
CREATE FUNCTION vms._master_key_version() RETURNS integer
AS 'MODULE_PATHNAME', 'vms_master_key_version' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._master_key_version() IS 'Current master key version; error without a key';
CREATE FUNCTION vms._load_master_key_version(version integer) RETURNS void
AS 'MODULE_PATHNAME', 'vms_load_master_key_version' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._load_master_key_version(integer) IS 'Loads a master key version from the key source';
CREATE FUNCTION vms._set_master_key_version(version integer) RETURNS void
AS 'MODULE_PATHNAME', 'vms_set_master_key_version' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._set_master_key_version(integer) IS 'Makes a loaded master key version current when the transaction commits';

-- The version new data keys are wrapped with: the newest in use, as the
-- table (transactional, replicated, dumped) records it, or the version the
-- server started with, whichever is newer.
CREATE FUNCTION vms._wrap_version()
RETURNS integer LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT GREATEST(vms._master_key_version(),
                    (SELECT pg_catalog.max(d.master_version) FROM vms.data_keys d WHERE d.destroyed_at IS NULL));
$$;
COMMENT ON FUNCTION vms._wrap_version() IS 'Master key version for new data keys and the base of the next rotation';

-- The live data key of a purpose, made on first use.
CREATE FUNCTION vms._data_key_for(purpose text)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    kid bigint;
    v integer;
BEGIN
    SELECT d.id INTO kid FROM vms.data_keys d
     WHERE d.purpose OPERATOR(pg_catalog.=) purpose AND d.subject_id IS NULL AND d.destroyed_at IS NULL;
    IF kid IS NOT NULL THEN
        RETURN kid;
    END IF;
    -- Waits for a running rotation, then wraps with the version it left.
    LOCK TABLE vms.data_keys IN ROW EXCLUSIVE MODE;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_vms data key ' || purpose));
    SELECT d.id INTO kid FROM vms.data_keys d
     WHERE d.purpose OPERATOR(pg_catalog.=) purpose AND d.subject_id IS NULL AND d.destroyed_at IS NULL;
    IF kid IS NULL THEN
        kid := pg_catalog.nextval('vms.data_keys_id_seq'::pg_catalog.regclass);
        v := vms._wrap_version();
        INSERT INTO vms.data_keys (id, purpose, master_version, wrapped)
        VALUES (kid, purpose, v, vms._new_data_key(kid, purpose, NULL, v));
    END IF;
    RETURN kid;
END
$$;
COMMENT ON FUNCTION vms._data_key_for(text) IS 'The live data key of a purpose, created on first use';

------------------------------------------------------------------------------
-- Camera credentials
------------------------------------------------------------------------------
CREATE TABLE vms.camera_credentials (
    camera_id  integer PRIMARY KEY REFERENCES vms.cameras (id) ON DELETE CASCADE,
    username   bytea NOT NULL,
    password   bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by text NOT NULL
);
COMMENT ON TABLE vms.camera_credentials IS
    'Camera logins, AES-256-GCM encrypted, each value bound to its column and camera; set with vms.set_camera_credential()';
ALTER TABLE vms.camera_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.camera_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY managers ON vms.camera_credentials FOR SELECT
    USING (vms.authorize('manage_cameras', camera_id));
SELECT pg_catalog.pg_extension_config_dump('vms.camera_credentials', '');

CREATE FUNCTION vms._set_camera_credential(camera_id integer, username text, password text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    kid bigint;
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera_id);
    PERFORM vms._check_text('username', username, 256);
    IF password IS NULL OR password = '' THEN
        RAISE EXCEPTION 'password must not be null or empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.octet_length(password) > 1024 THEN
        RAISE EXCEPTION 'password is too long (at most 1024 bytes)' USING ERRCODE = 'string_data_right_truncation';
    END IF;
    kid := vms._data_key_for('camera_credentials');
    INSERT INTO vms.camera_credentials AS cc (camera_id, username, password, updated_by)
    VALUES (camera_id,
            vms._encrypt(kid, pg_catalog.convert_to(username, 'UTF8'), 'vms.camera_credentials.username:' || camera_id),
            vms._encrypt(kid, pg_catalog.convert_to(password, 'UTF8'), 'vms.camera_credentials.password:' || camera_id),
            vms._invoker_name())
    ON CONFLICT ON CONSTRAINT camera_credentials_pkey DO UPDATE
       SET username = EXCLUDED.username, password = EXCLUDED.password,
           updated_at = pg_catalog.now(), updated_by = EXCLUDED.updated_by;
    PERFORM vms._audit('set_camera_credential', camera_id, NULL, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('set_camera_credential', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_camera_credential(integer, text, text) IS 'Body of vms.set_camera_credential(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_camera_credential(camera_id integer, username text, password text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_camera_credential(integer, text, text) IS
    'Stores a camera''s login encrypted (manage_cameras on the camera); see docs/keys.md on keeping the password out of logs';

CREATE FUNCTION vms._camera_credential(camera_id integer, OUT username text, OUT password text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    c record;
BEGIN
    PERFORM vms._require_recorder(camera_id);
    SELECT * INTO c FROM vms.camera_credentials x WHERE x.camera_id OPERATOR(pg_catalog.=) camera_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'camera % has no credential', camera_id USING ERRCODE = 'no_data_found';
    END IF;
    username := pg_catalog.convert_from(vms._decrypt(c.username, 'vms.camera_credentials.username:' || camera_id), 'UTF8');
    password := pg_catalog.convert_from(vms._decrypt(c.password, 'vms.camera_credentials.password:' || camera_id), 'UTF8');
    PERFORM vms._audit('reveal_camera_credential', camera_id, NULL, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('reveal_camera_credential', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._camera_credential(integer) IS 'Body of vms.camera_credential(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.camera_credential(camera_id integer, OUT username text, OUT password text)
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.camera_credential(integer) IS
    'A camera''s login, decrypted, for the vms_recorder assigned to the camera only; every reveal is audited';

------------------------------------------------------------------------------
-- Master key rotation and status
------------------------------------------------------------------------------
CREATE FUNCTION vms._rotate_master_key(OUT old_version integer, OUT new_version integer, OUT data_keys_rewrapped bigint)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    k record;
BEGIN
    IF NOT vms._is_system_manager(vms._invoker()) THEN
        PERFORM vms._deny('only a system manager may rotate the master key');
    END IF;
    -- One rotation at a time; data keys created meanwhile wait for it.
    LOCK TABLE vms.data_keys IN SHARE ROW EXCLUSIVE MODE;
    old_version := vms._wrap_version();
    new_version := old_version + 1;
    -- Loaded before any row is rewrapped: readers never meet a version they lack.
    PERFORM vms._load_master_key_version(new_version);
    data_keys_rewrapped := 0;
    FOR k IN SELECT * FROM vms.data_keys d WHERE d.destroyed_at IS NULL ORDER BY d.id LOOP
        UPDATE vms.data_keys d
           SET wrapped = vms._rewrap_data_key(k.id, k.purpose, k.subject_id, k.master_version, k.wrapped, new_version),
               master_version = new_version, rewrapped_at = pg_catalog.now()
         WHERE d.id OPERATOR(pg_catalog.=) k.id;
        data_keys_rewrapped := data_keys_rewrapped + 1;
    END LOOP;
    PERFORM vms._set_master_key_version(new_version);
    PERFORM vms._audit('rotate_master_key', NULL, NULL,
                       pg_catalog.jsonb_build_object('old_version', old_version, 'new_version', new_version,
                                                     'data_keys_rewrapped', data_keys_rewrapped));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('rotate_master_key', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._rotate_master_key() IS 'Body of vms.rotate_master_key(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.rotate_master_key(OUT old_version integer, OUT new_version integer, OUT data_keys_rewrapped bigint)
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.rotate_master_key() IS
    'Takes the next master key version from the key source and rewraps every data key under it, in one transaction (system managers)';

CREATE FUNCTION vms._key_status(OUT master_key_loaded boolean, OUT master_key_version integer,
                                OUT versions_in_use integer[], OUT data_keys bigint, OUT data_keys_destroyed bigint)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF NOT vms._is_system_manager(vms._invoker()) THEN
        PERFORM vms._deny('only a system manager may read the key status');
    END IF;
    BEGIN
        master_key_version := vms._wrap_version();
        master_key_loaded := true;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        master_key_loaded := false;
    END;
    SELECT pg_catalog.count(*) FILTER (WHERE d.destroyed_at IS NULL),
           pg_catalog.count(*) FILTER (WHERE d.destroyed_at IS NOT NULL),
           pg_catalog.array_agg(DISTINCT d.master_version) FILTER (WHERE d.destroyed_at IS NULL)
      INTO data_keys, data_keys_destroyed, versions_in_use FROM vms.data_keys d;
END
$$;
COMMENT ON FUNCTION vms._key_status() IS 'Body of vms.key_status(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.key_status(OUT master_key_loaded boolean, OUT master_key_version integer,
                               OUT versions_in_use integer[], OUT data_keys bigint, OUT data_keys_destroyed bigint)
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.key_status() IS
    'Whether a master key is loaded, the current version, the versions live data keys still need, and how many data keys exist (system managers)';


------------------------------------------------------------------------------
-- FaceX person data: watch lists, persons, face events
------------------------------------------------------------------------------
CREATE FUNCTION vms.has_permission_on_group(permission text, group_id integer)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_holds_on_group' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION vms.has_permission_on_group(text, integer) IS
    'Does the current user hold the permission over a camera group (a grant on it, or of scope all; NULL group: scope all)?';
CREATE FUNCTION vms._invoker_holds_on_group(permission text, group_id integer)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_invoker_holds_on_group' LANGUAGE C STABLE;
COMMENT ON FUNCTION vms._invoker_holds_on_group(text, integer) IS 'vms.has_permission_on_group() for the API caller';
CREATE FUNCTION vms._embedding_pack(embedding real[], dim integer)
RETURNS bytea AS 'MODULE_PATHNAME', 'vms_embedding_pack' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION vms._embedding_pack(real[], integer) IS 'Checks an embedding (dimension, no NULL, NaN or infinity) and packs it';
CREATE FUNCTION vms._embedding_unpack(packed bytea)
RETURNS real[] AS 'MODULE_PATHNAME', 'vms_embedding_unpack' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION vms._embedding_unpack(bytea) IS 'Unpacks an embedding';
CREATE FUNCTION vms._face_scan(probe real[], k integer, min_score real, lists integer[], encrypted boolean)
RETURNS TABLE (person_id bigint, score real) AS 'MODULE_PATHNAME', 'vms_face_scan' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._face_scan(real[], integer, real, integer[], boolean) IS
    'Top-k cosine search over the encrypted embeddings of the given lists (all of the probe''s dimension), decrypted inside the server';

CREATE FUNCTION vms._data_keys_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'vms_data_keys_changed' LANGUAGE C;
COMMENT ON FUNCTION vms._data_keys_changed() IS 'Makes every backend drop its cached subject keys at commit';
CREATE TRIGGER data_keys_changed AFTER UPDATE OR DELETE OR TRUNCATE ON vms.data_keys
    FOR EACH STATEMENT EXECUTE FUNCTION vms._data_keys_changed();

CREATE SEQUENCE vms.watch_lists_id_seq AS integer;
CREATE TABLE vms.watch_lists (
    id              integer PRIMARY KEY DEFAULT pg_catalog.nextval('vms.watch_lists_id_seq'::pg_catalog.regclass),
    name            text NOT NULL UNIQUE,
    embedding_dim   integer NOT NULL CHECK (embedding_dim BETWEEN 2 AND 4096),
    camera_group_id integer REFERENCES vms.camera_groups (id),
    description     text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE vms.watch_lists_id_seq OWNED BY vms.watch_lists.id;
COMMENT ON TABLE vms.watch_lists IS
    'Face-recognition watch lists; facex_* permissions over the list''s camera group (scope all when it has none) apply to it';

CREATE SEQUENCE vms.persons_id_seq AS bigint;
CREATE TABLE vms.persons (
    id            bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.persons_id_seq'::pg_catalog.regclass),
    watch_list_id integer NOT NULL REFERENCES vms.watch_lists (id),
    key_id        bigint NOT NULL REFERENCES vms.data_keys (id),
    name          bytea NOT NULL,
    notes         bytea,
    photo         bytea,
    embedding     bytea NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE vms.persons_id_seq OWNED BY vms.persons.id;
CREATE INDEX ON vms.persons (watch_list_id);
COMMENT ON TABLE vms.persons IS
    'Persons of watch lists: every personal field AES-256-GCM encrypted under the person''s own data key';

CREATE SEQUENCE vms.face_events_id_seq AS bigint;
CREATE TABLE vms.face_events (
    id         bigint NOT NULL DEFAULT pg_catalog.nextval('vms.face_events_id_seq'::pg_catalog.regclass),
    camera_id  integer NOT NULL REFERENCES vms.cameras (id),
    event_time timestamptz NOT NULL,
    person_id  bigint,
    score      real NOT NULL CHECK (score BETWEEN 0 AND 1),
    key_id     bigint NOT NULL,
    snapshot   bytea,
    recorder   text NOT NULL
) PARTITION BY RANGE (event_time);
ALTER SEQUENCE vms.face_events_id_seq OWNED BY vms.face_events.id;
COMMENT ON TABLE vms.face_events IS
    'Face detections (a known person or unknown), partitioned by UTC day like the recordings; snapshot reference encrypted';

ALTER TABLE vms.watch_lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.watch_lists FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vms.watch_lists FOR SELECT
    USING (vms.has_permission_on_group('facex_view', camera_group_id)
           OR vms.has_permission_on_group('facex_manage', camera_group_id)
           OR vms.has_permission_on_group('facex_search', camera_group_id));
ALTER TABLE vms.persons ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.persons FORCE ROW LEVEL SECURITY;
CREATE POLICY viewers ON vms.persons FOR SELECT
    USING (vms.has_permission_on_group('facex_view',
               (SELECT w.camera_group_id FROM vms.watch_lists w WHERE w.id OPERATOR(pg_catalog.=) watch_list_id)));
ALTER TABLE vms.face_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.face_events FORCE ROW LEVEL SECURITY;
CREATE POLICY viewers ON vms.face_events FOR SELECT
    USING (vms.authorize('facex_view', camera_id, event_time));

SELECT pg_catalog.pg_extension_config_dump('vms.watch_lists', '');
SELECT pg_catalog.pg_extension_config_dump('vms.watch_lists_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vms.persons', '');
SELECT pg_catalog.pg_extension_config_dump('vms.persons_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vms.face_events_id_seq', '');

-- Face events live in the recordings' daily partitions.
INSERT INTO vms.partitioned_tables (parent, period, key_columns, extra_indexes)
VALUES ('face_events', 'day', 'camera_id, event_time, id', '{person_id}');

-- The list a person belongs to, checked: the caller must hold the permission over it.
CREATE FUNCTION vms._require_list(permission text, list_id integer)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    gid integer;
BEGIN
    SELECT w.camera_group_id INTO gid FROM vms.watch_lists w WHERE w.id OPERATOR(pg_catalog.=) list_id;
    IF NOT vms._is_system_manager(vms._invoker()) AND NOT vms._invoker_holds_on_group(permission, gid) THEN
        PERFORM vms._deny(pg_catalog.format('%s on watch list %s', permission, list_id));
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_list(text, integer) IS 'Raises unless the caller holds the permission over the watch list';

-- A person's list, after the permission check (no existence oracle).
CREATE FUNCTION vms._person_list(person_id bigint, permission text)
RETURNS integer LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    lid integer;
    gid integer;
BEGIN
    IF person_id IS NULL THEN
        RAISE EXCEPTION 'person_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT p.watch_list_id, w.camera_group_id INTO lid, gid
      FROM vms.persons p JOIN vms.watch_lists w ON w.id OPERATOR(pg_catalog.=) p.watch_list_id
     WHERE p.id OPERATOR(pg_catalog.=) person_id;
    -- Missing and forbidden look the same to whom may not see the list.
    IF lid IS NULL OR NOT (vms._is_system_manager(vms._invoker()) OR vms._invoker_holds_on_group(permission, gid)) THEN
        IF lid IS NULL AND (vms._is_system_manager(vms._invoker()) OR vms._invoker_holds(permission, true)) THEN
            RAISE EXCEPTION 'person % does not exist', person_id USING ERRCODE = 'undefined_object';
        END IF;
        PERFORM vms._deny(pg_catalog.format('%s on person %s', permission, person_id));
    END IF;
    RETURN lid;
END
$$;
COMMENT ON FUNCTION vms._person_list(bigint, text) IS 'Watch list of a person the caller may act on with the permission';

CREATE FUNCTION vms._create_watch_list(name text, embedding_dim integer, camera_group text, description text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    gid integer;
    new_id integer;
BEGIN
    PERFORM vms._check_text('watch list name', name, 200);
    PERFORM vms._check_optional_text('description', description, 2000);
    IF embedding_dim IS NULL OR embedding_dim < 2 OR embedding_dim > 4096 THEN
        RAISE EXCEPTION 'embedding_dim must be between 2 and 4096' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF camera_group IS NOT NULL THEN
        gid := vms._group_id(camera_group);
    END IF;
    IF NOT vms._is_system_manager(vms._invoker()) AND NOT vms._invoker_holds_on_group('facex_manage', gid) THEN
        PERFORM vms._deny(CASE WHEN gid IS NULL THEN 'facex_manage with scope all'
                               ELSE pg_catalog.format('facex_manage on camera group %s', camera_group) END);
    END IF;
    IF EXISTS (SELECT 1 FROM vms.watch_lists w WHERE w.name OPERATOR(pg_catalog.=) name) THEN
        RAISE EXCEPTION 'watch list "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO vms.watch_lists (name, embedding_dim, camera_group_id, description, created_by)
    VALUES (name, embedding_dim, gid, description, vms._invoker_name()) RETURNING id INTO new_id;
    PERFORM vms._audit('create_watch_list', NULL, name,
                       pg_catalog.jsonb_build_object('watch_list_id', new_id, 'camera_group', camera_group));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('create_watch_list', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._create_watch_list(text, integer, text, text) IS 'Body of vms.create_watch_list(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.create_watch_list(name text, embedding_dim integer, camera_group text DEFAULT NULL,
                                      description text DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.create_watch_list(text, integer, text, text) IS
    'Creates a watch list for embeddings of a fixed dimension, scoped to a camera group (facex_manage over it)';

CREATE FUNCTION vms._add_person(watch_list text, name text, embedding real[], notes text, photo bytea)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    w record;
    pid bigint;
    kid bigint;
    v integer;
BEGIN
    PERFORM vms._check_text('watch_list', watch_list, 200);
    SELECT * INTO w FROM vms.watch_lists x WHERE x.name OPERATOR(pg_catalog.=) watch_list;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'watch list "%" does not exist', watch_list USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._require_list('facex_manage', w.id);
    PERFORM vms._check_text('name', name, 500);
    PERFORM vms._check_optional_text('notes', notes, 10000);
    IF photo IS NOT NULL AND pg_catalog.octet_length(photo) > 10485760 THEN
        RAISE EXCEPTION 'photo is too large (at most 10 MB)' USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF embedding IS NULL THEN
        RAISE EXCEPTION 'embedding must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    pid := pg_catalog.nextval('vms.persons_id_seq'::pg_catalog.regclass);
    -- The subject's own data key: destroying it erases the person.
    LOCK TABLE vms.data_keys IN ROW EXCLUSIVE MODE;
    kid := pg_catalog.nextval('vms.data_keys_id_seq'::pg_catalog.regclass);
    v := vms._wrap_version();
    INSERT INTO vms.data_keys (id, purpose, subject_id, master_version, wrapped)
    VALUES (kid, 'facex_subject', pid, v, vms._new_data_key(kid, 'facex_subject', pid, v));
    INSERT INTO vms.persons (id, watch_list_id, key_id, name, notes, photo, embedding, created_by)
    VALUES (pid, w.id, kid,
            vms._encrypt(kid, pg_catalog.convert_to(name, 'UTF8'), 'vms.persons.name:' || pid),
            CASE WHEN notes IS NOT NULL THEN vms._encrypt(kid, pg_catalog.convert_to(notes, 'UTF8'), 'vms.persons.notes:' || pid) END,
            CASE WHEN photo IS NOT NULL THEN vms._encrypt(kid, photo, 'vms.persons.photo:' || pid) END,
            vms._encrypt(kid, vms._embedding_pack(embedding, w.embedding_dim), 'vms.persons.embedding:' || pid),
            vms._invoker_name());
    PERFORM vms._audit('add_person', NULL, pid::text, pg_catalog.jsonb_build_object('watch_list', watch_list));
    RETURN pid;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('add_person', NULL, watch_list, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._add_person(text, text, real[], text, bytea) IS 'Body of vms.add_person(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.add_person(watch_list text, name text, embedding real[], notes text DEFAULT NULL,
                               photo bytea DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.add_person(text, text, real[], text, bytea) IS
    'Adds a person to a watch list (facex_manage over it); every field is encrypted under the person''s own key';

CREATE FUNCTION vms._person(person_id bigint, OUT watch_list text, OUT name text, OUT notes text,
                            OUT photo bytea, OUT embedding real[])
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    p record;
BEGIN
    PERFORM vms._person_list(person_id, 'facex_view');
    SELECT x.*, w.name AS list_name INTO p FROM vms.persons x JOIN vms.watch_lists w ON w.id = x.watch_list_id
     WHERE x.id OPERATOR(pg_catalog.=) person_id;
    watch_list := p.list_name;
    name := pg_catalog.convert_from(vms._decrypt(p.name, 'vms.persons.name:' || person_id), 'UTF8');
    notes := pg_catalog.convert_from(vms._decrypt(p.notes, 'vms.persons.notes:' || person_id), 'UTF8');
    photo := vms._decrypt(p.photo, 'vms.persons.photo:' || person_id);
    embedding := vms._embedding_unpack(vms._decrypt(p.embedding, 'vms.persons.embedding:' || person_id));
    PERFORM vms._audit('reveal_person', NULL, person_id::text, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('reveal_person', NULL, person_id::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._person(bigint) IS 'Body of vms.person(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.person(person_id bigint, OUT watch_list text, OUT name text, OUT notes text,
                           OUT photo bytea, OUT embedding real[])
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.person(bigint) IS 'A person''s fields, decrypted (facex_view over the watch list); every reveal is audited';

CREATE FUNCTION vms._register_face_event(camera_id integer, event_time timestamptz, person_id bigint,
                                         score real, snapshot_ref text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    kid bigint;
    new_id bigint;
BEGIN
    PERFORM vms._require_recorder(camera_id);
    IF event_time IS NULL OR score IS NULL THEN
        RAISE EXCEPTION 'event_time and score must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF score < 0 OR score > 1 OR score = 'NaN'::real THEN
        RAISE EXCEPTION 'score must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF event_time > pg_catalog.now() + '5 minutes'::interval THEN
        RAISE EXCEPTION 'event_time is in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM vms._check_optional_text('snapshot_ref', snapshot_ref, 1024);
    IF person_id IS NOT NULL THEN
        -- Held until commit: an erasure of this person waits for this event.
        SELECT p.key_id INTO kid FROM vms.persons p WHERE p.id OPERATOR(pg_catalog.=) person_id FOR KEY SHARE;
        IF kid IS NULL THEN
            RAISE EXCEPTION 'person % does not exist', person_id USING ERRCODE = 'undefined_object';
        END IF;
    ELSE
        kid := vms._data_key_for('facex_events');
    END IF;
    PERFORM vms._ensure_day_partitions((event_time AT TIME ZONE 'UTC')::date);
    new_id := pg_catalog.nextval('vms.face_events_id_seq'::pg_catalog.regclass);
    INSERT INTO vms.face_events (id, camera_id, event_time, person_id, score, key_id, snapshot, recorder)
    VALUES (new_id, camera_id, event_time, person_id, score, kid,
            CASE WHEN snapshot_ref IS NOT NULL
                 THEN vms._encrypt(kid, pg_catalog.convert_to(snapshot_ref, 'UTF8'), 'vms.face_events.snapshot:' || new_id) END,
            vms._invoker_name());
    PERFORM vms._audit('register_face_event', camera_id, new_id::text,
                       pg_catalog.jsonb_build_object('known_person', person_id IS NOT NULL));
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('register_face_event', camera_id, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._register_face_event(integer, timestamptz, bigint, real, text) IS 'Body of vms.register_face_event(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.register_face_event(camera_id integer, event_time timestamptz, person_id bigint,
                                        score real, snapshot_ref text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.register_face_event(integer, timestamptz, bigint, real, text) IS
    'Registers a face detection (the camera''s assigned recorder only); the snapshot reference is encrypted';

CREATE FUNCTION vms._erase_subject(person_id bigint, reason text,
                                   OUT face_events_deleted bigint, OUT key_destroyed bigint)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    lid integer;
BEGIN
    lid := vms._person_list(person_id, 'facex_manage');
    PERFORM vms._check_text('reason', reason, 2000);
    -- Locked: a face event being registered for this person waits, or fails.
    SELECT p.key_id INTO key_destroyed FROM vms.persons p WHERE p.id OPERATOR(pg_catalog.=) person_id FOR UPDATE;
    DELETE FROM vms.face_events e WHERE e.person_id OPERATOR(pg_catalog.=) _erase_subject.person_id;
    GET DIAGNOSTICS face_events_deleted = ROW_COUNT;
    DELETE FROM vms.persons p WHERE p.id OPERATOR(pg_catalog.=) person_id;
    -- Crypto-shredding: without the key, no copy of the ciphertext decrypts.
    UPDATE vms.data_keys d SET wrapped = NULL, destroyed_at = pg_catalog.now()
     WHERE d.id OPERATOR(pg_catalog.=) key_destroyed;
    PERFORM vms._audit('erase_subject', NULL, person_id::text,
                       pg_catalog.jsonb_build_object('reason', reason, 'watch_list_id', lid,
                                                     'face_events_deleted', face_events_deleted,
                                                     'data_key_destroyed', key_destroyed));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('erase_subject', NULL, person_id::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._erase_subject(bigint, text) IS 'Body of vms.erase_subject(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.erase_subject(person_id bigint, reason text,
                                  OUT face_events_deleted bigint, OUT key_destroyed bigint)
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.erase_subject(bigint, text) IS
    'GDPR erasure: destroys the person''s data key and deletes the person and their face events (facex_manage); audited with the reason';

CREATE FUNCTION vms._subject_access_report(person_id bigint)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    p record;
    report jsonb;
BEGIN
    PERFORM vms._person_list(person_id, 'facex_view');
    SELECT x.*, w.name AS list_name INTO p FROM vms.persons x JOIN vms.watch_lists w ON w.id = x.watch_list_id
     WHERE x.id OPERATOR(pg_catalog.=) person_id;
    report := pg_catalog.jsonb_build_object(
        'person_id', person_id,
        'watch_list', p.list_name,
        'created_at', p.created_at,
        'created_by', p.created_by,
        'name', pg_catalog.convert_from(vms._decrypt(p.name, 'vms.persons.name:' || person_id), 'UTF8'),
        'notes', pg_catalog.convert_from(vms._decrypt(p.notes, 'vms.persons.notes:' || person_id), 'UTF8'),
        'photo_base64', pg_catalog.encode(vms._decrypt(p.photo, 'vms.persons.photo:' || person_id), 'base64'),
        'embedding', pg_catalog.to_jsonb(vms._embedding_unpack(vms._decrypt(p.embedding, 'vms.persons.embedding:' || person_id))),
        'face_events', COALESCE((
            SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'camera_id', e.camera_id, 'event_time', e.event_time, 'score', e.score,
                       'snapshot_ref', pg_catalog.convert_from(vms._decrypt(e.snapshot, 'vms.face_events.snapshot:' || e.id), 'UTF8'))
                       ORDER BY e.event_time)
              FROM vms.face_events e
             WHERE e.person_id OPERATOR(pg_catalog.=) _subject_access_report.person_id
               AND (vms._is_system_manager(vms._invoker())
                    OR vms._authorized('facex_view', e.camera_id, e.event_time))), '[]'::jsonb),
        'face_events_withheld', (
            SELECT pg_catalog.count(*) FROM vms.face_events e
             WHERE e.person_id OPERATOR(pg_catalog.=) _subject_access_report.person_id
               AND NOT (vms._is_system_manager(vms._invoker())
                        OR vms._authorized('facex_view', e.camera_id, e.event_time))));
    PERFORM vms._audit('subject_access_report', NULL, person_id::text, NULL);
    RETURN report;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('subject_access_report', NULL, person_id::text, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._subject_access_report(bigint) IS 'Body of vms.subject_access_report(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.subject_access_report(person_id bigint)
RETURNS jsonb AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.subject_access_report(bigint) IS
    'GDPR access request: everything held about one person, decrypted (facex_view over the list); audited';

CREATE FUNCTION vms._face_search(probe real[], k integer, min_score real)
RETURNS TABLE (person_id bigint, watch_list text, score real)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    lists integer[];
    n bigint;
BEGIN
    IF probe IS NULL OR k IS NULL OR min_score IS NULL THEN
        RAISE EXCEPTION 'probe, k and min_score must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT pg_catalog.array_agg(w.id) INTO lists FROM vms.watch_lists w
     WHERE w.embedding_dim OPERATOR(pg_catalog.=) pg_catalog.cardinality(probe)
       AND (vms._is_system_manager(vms._invoker()) OR vms._invoker_holds_on_group('facex_search', w.camera_group_id));
    IF lists IS NULL AND NOT vms._is_system_manager(vms._invoker()) AND NOT vms._invoker_holds('facex_search', false) THEN
        PERFORM vms._deny('facex_search is required');
    END IF;
    -- A floor the caller cannot lower: low scores against chosen probes would
    -- let a searcher rebuild stored templates without facex_view.
    RETURN QUERY
        SELECT s.person_id, w.name, (pg_catalog.round(s.score::numeric, 2))::real
          FROM vms._face_scan(probe, k,
                              GREATEST(min_score, pg_catalog.current_setting('vms.face_search_min_score')::real),
                              COALESCE(lists, '{}'), true) s
          JOIN vms.persons p ON p.id OPERATOR(pg_catalog.=) s.person_id
          JOIN vms.watch_lists w ON w.id OPERATOR(pg_catalog.=) p.watch_list_id
         ORDER BY s.score DESC;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM vms._audit('face_search', NULL, NULL,
                       pg_catalog.jsonb_build_object('probe_sha256', pg_catalog.encode(pg_catalog.sha256(
                                                         pg_catalog.convert_to(probe::text, 'UTF8')), 'hex'),
                                                     'k', k, 'min_score', min_score, 'returned', n,
                                                     'watch_lists', lists));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('face_search', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._face_search(real[], integer, real) IS 'Body of vms.face_search(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.face_search(probe real[], k integer DEFAULT 10, min_score real DEFAULT 0)
RETURNS TABLE (person_id bigint, watch_list text, score real) AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.face_search(real[], integer, real) IS
    'Top-k (at most 100) persons by cosine similarity to a probe embedding, at or above vms.face_search_min_score, over the watch lists the caller may search (facex_search); decrypted inside the server; audited with a hash of the probe';

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------
REVOKE ALL ON vms.data_keys, vms.camera_credentials, vms.watch_lists, vms.persons, vms.face_events FROM PUBLIC;
REVOKE ALL ON SEQUENCE vms.watch_lists_id_seq, vms.persons_id_seq, vms.face_events_id_seq FROM PUBLIC;
REVOKE ALL ON SEQUENCE vms.data_keys_id_seq FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA vms FROM PUBLIC;
GRANT SELECT ON vms.camera_credentials, vms.watch_lists, vms.persons, vms.face_events TO vms_user;
GRANT EXECUTE ON FUNCTION
    vms.has_permission_on_group(text, integer),
    vms.create_watch_list(text, integer, text, text),
    vms.add_person(text, text, real[], text, bytea),
    vms.person(bigint),
    vms.register_face_event(integer, timestamptz, bigint, real, text),
    vms.erase_subject(bigint, text),
    vms.subject_access_report(bigint),
    vms.face_search(real[], integer, real),
    vms.set_camera_credential(integer, text, text),
    vms.camera_credential(integer),
    vms.rotate_master_key(),
    vms.key_status()
   TO vms_user;
