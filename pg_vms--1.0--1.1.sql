-- pg_vms 1.1: the master key, envelope encryption, camera credentials.
-- See docs/keys.md.  Same conventions as pg_vms--1.0.sql.

\echo Use "ALTER EXTENSION pg_vms UPDATE TO '1.1'" to load this file. \quit

------------------------------------------------------------------------------
-- Data keys, wrapped by the master key
------------------------------------------------------------------------------
CREATE SEQUENCE vms.data_keys_id_seq AS bigint;
CREATE TABLE vms.data_keys (
    id             bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.data_keys_id_seq'::pg_catalog.regclass),
    purpose        text NOT NULL CHECK (purpose IN ('camera_credentials', 'totp_secrets', 'facex_subject')),
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
-- Privileges
------------------------------------------------------------------------------
REVOKE ALL ON vms.data_keys, vms.camera_credentials FROM PUBLIC;
REVOKE ALL ON SEQUENCE vms.data_keys_id_seq FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA vms FROM PUBLIC;
GRANT SELECT ON vms.camera_credentials TO vms_user;
GRANT EXECUTE ON FUNCTION
    vms.set_camera_credential(integer, text, text),
    vms.camera_credential(integer),
    vms.rotate_master_key(),
    vms.key_status()
   TO vms_user;
