------------------------------------------------------------------------------
-- Second factor (src/totp.c, src/authorize.c).  Members of the roles in
-- vms.second_factor_roles (vms_system_manager by default) have their
-- administrative permissions suspended until they verify a TOTP code in the
-- session; the code elevates the session for vms.totp_elevation_time.
------------------------------------------------------------------------------
ALTER TABLE vms.permissions ADD COLUMN administrative boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN vms.permissions.administrative IS
    'Changes the VMS configuration; suspended for roles that still owe a second factor';
UPDATE vms.permissions SET administrative = true
 WHERE name OPERATOR(pg_catalog.=) ANY (ARRAY['manage_cameras', 'manage_users', 'manage_roles',
                                              'manage_retention', 'facex_manage']);

CREATE TABLE vms.second_factor_roles (
    role       text PRIMARY KEY,
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE vms.second_factor_roles IS
    'Roles whose members must verify a TOTP code (vms.totp_verify) before their administrative permissions work';
ALTER TABLE vms.second_factor_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.second_factor_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY readable ON vms.second_factor_roles FOR SELECT USING (true);
INSERT INTO vms.second_factor_roles (role, added_by) VALUES ('vms_system_manager', 'pg_vms');
SELECT pg_catalog.pg_extension_config_dump('vms.second_factor_roles', '');
CREATE TRIGGER authz_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vms.second_factor_roles
    FOR EACH STATEMENT EXECUTE FUNCTION vms._authz_invalidate();

CREATE TABLE vms.totp_secrets (
    role_name    text PRIMARY KEY,
    key_id       bigint NOT NULL REFERENCES vms.data_keys (id),
    secret       bytea NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE vms.totp_secrets IS
    'TOTP secrets, AES-256-GCM encrypted and bound to the role name; last_step is the last code used (no replay)';
ALTER TABLE vms.totp_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.totp_secrets FORCE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('vms.totp_secrets', '');

-- C helpers (granted to nobody)
CREATE FUNCTION vms._totp_code(secret bytea, at timestamptz, digits integer DEFAULT 6,
                               algorithm text DEFAULT 'SHA1', period integer DEFAULT 30)
RETURNS text AS 'MODULE_PATHNAME', 'vms_totp_code' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION vms._totp_code(bytea, timestamptz, integer, text, integer) IS 'RFC 6238 code of a secret at a time';
CREATE FUNCTION vms._totp_new_secret()
RETURNS bytea AS 'MODULE_PATHNAME', 'vms_totp_new_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._totp_new_secret() IS '160 random bits (OpenSSL RAND_bytes)';
CREATE FUNCTION vms._totp_uri(secret bytea, account text)
RETURNS text AS 'MODULE_PATHNAME', 'vms_totp_uri' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION vms._totp_uri(bytea, text) IS 'otpauth:// URI for authenticator apps';
CREATE FUNCTION vms._totp_match(secret bytea, code text, last_step bigint)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_totp_match' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._totp_match(bytea, text, bigint) IS 'Time step of a matching, unused code near now, or NULL';
CREATE FUNCTION vms._totp_elevate(role regrole)
RETURNS timestamptz AS 'MODULE_PATHNAME', 'vms_totp_elevate' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._totp_elevate(regrole) IS 'Elevates the role in this session when the transaction commits';
CREATE FUNCTION vms._totp_lockout(role text, outcome text)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_totp_lockout' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._totp_lockout(text, text) IS 'Second-factor outcome for the login lockout (check, failure, success); true if locked';
CREATE FUNCTION vms._session_elevated(role regrole)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_totp_session_elevated' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION vms._session_elevated(regrole) IS 'Has the role verified a second factor in this session, still valid?';
CREATE FUNCTION vms._second_factor_pending(role regrole)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_second_factor_pending' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION vms._second_factor_pending(regrole) IS 'Are the role''s administrative permissions waiting for a second factor?';
CREATE FUNCTION vms._second_factor_identity()
RETURNS regrole AS 'MODULE_PATHNAME', 'vms_second_factor_identity' LANGUAGE C STABLE;
COMMENT ON FUNCTION vms._second_factor_identity() IS
    'Whose second factor counts in this session: the session user (in a superuser''s session, the role it acts as)';
CREATE FUNCTION vms.elevated_until()
RETURNS timestamptz AS 'MODULE_PATHNAME', 'vms_elevated_until' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.elevated_until() IS 'When the current user''s second-factor elevation in this session ends; NULL if not elevated';

-- A denial tells a user who owes a second factor what to do.
CREATE OR REPLACE FUNCTION vms._deny(message text, hint text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF hint IS NULL AND vms._second_factor_pending(vms._invoker()) THEN
        hint := 'Administrative permissions wait for your second factor: SELECT vms.totp_verify(''<6-digit code>'');';
    END IF;
    IF hint IS NULL THEN
        RAISE EXCEPTION 'permission denied: %', message USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'permission denied: %', message USING ERRCODE = 'insufficient_privilege', HINT = hint;
END
$$;

-- A second factor belongs to a person: enrolment and verification only as
-- the login itself, never through SET ROLE (to vms_system_manager, say).
CREATE FUNCTION vms._require_own_second_factor()
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF vms._invoker()::oid OPERATOR(pg_catalog.<>) vms._second_factor_identity()::oid
       OR NOT COALESCE((SELECT r.rolcanlogin FROM pg_catalog.pg_roles r
                         WHERE r.oid OPERATOR(pg_catalog.=) vms._invoker()::oid), false) THEN
        PERFORM vms._deny('a second factor belongs to the user who logged in',
                          'Enrol and verify as yourself, not after SET ROLE.');
    END IF;
END
$$;
COMMENT ON FUNCTION vms._require_own_second_factor() IS 'Raises unless the caller is the login whose second factor counts';

CREATE FUNCTION vms._totp_enroll()
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    me text := vms._invoker_name();
    confirmed timestamptz;
    secret bytea;
    kid bigint;
BEGIN
    PERFORM vms._require_own_second_factor();
    SELECT t.confirmed_at INTO confirmed FROM vms.totp_secrets t
     WHERE t.role_name OPERATOR(pg_catalog.=) me FOR UPDATE;
    -- Replacing a confirmed factor needs that factor: a stolen password alone cannot.
    IF confirmed IS NOT NULL AND NOT vms._session_elevated(vms._invoker()) THEN
        PERFORM vms._deny('a second factor is already enrolled',
                          'Verify a code with vms.totp_verify() first, or ask a user manager to reset it with vms.totp_reset().');
    END IF;
    secret := vms._totp_new_secret();
    kid := vms._data_key_for('totp_secrets');
    INSERT INTO vms.totp_secrets AS t (role_name, key_id, secret)
    VALUES (me, kid, vms._encrypt(kid, secret, 'vms.totp_secrets.secret:' || me))
    ON CONFLICT ON CONSTRAINT totp_secrets_pkey DO UPDATE
       SET key_id = EXCLUDED.key_id, secret = EXCLUDED.secret, confirmed_at = NULL,
           last_step = 0, created_at = pg_catalog.now();
    PERFORM vms._audit('totp_enroll', NULL, me, pg_catalog.jsonb_build_object('replaced', confirmed IS NOT NULL));
    RETURN vms._totp_uri(secret, me);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('totp_enroll', NULL, me, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._totp_enroll() IS 'Body of vms.totp_enroll(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.totp_enroll()
RETURNS text AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.totp_enroll() IS
    'Creates a new TOTP secret for the current user and returns its otpauth:// URI (show it as a QR code once); confirmed by the first vms.totp_verify()';

CREATE FUNCTION vms._totp_verify(code text)
RETURNS timestamptz LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me text := vms._invoker_name();
    t record;
    step bigint;
    until timestamptz;
BEGIN
    PERFORM vms._require_own_second_factor();
    IF code IS NULL OR pg_catalog.length(code) OPERATOR(pg_catalog.<>) 6
       OR code OPERATOR(pg_catalog.!~) '^[0-9]{6}$' THEN
        RAISE EXCEPTION 'a second-factor code is 6 digits' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO t FROM vms.totp_secrets s WHERE s.role_name OPERATOR(pg_catalog.=) me FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no second factor is enrolled for "%"', me
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Enroll with SELECT vms.totp_enroll();';
    END IF;
    -- A locked role gets the answer a wrong code gets, and no code is tried.
    IF NOT vms._totp_lockout(me, 'check') THEN
        step := vms._totp_match(vms._decrypt(t.secret, 'vms.totp_secrets.secret:' || me), code, t.last_step);
        IF step IS NULL THEN
            PERFORM vms._totp_lockout(me, 'failure');
        END IF;
    END IF;
    IF step IS NULL THEN
        RAISE EXCEPTION 'invalid second-factor code' USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    UPDATE vms.totp_secrets s SET last_step = step, confirmed_at = COALESCE(s.confirmed_at, pg_catalog.now())
     WHERE s.role_name OPERATOR(pg_catalog.=) me;
    PERFORM vms._totp_lockout(me, 'success');
    until := vms._totp_elevate(vms._invoker());
    PERFORM vms._audit('totp_verify', NULL, me,
                       pg_catalog.jsonb_build_object('elevated_until', until, 'first_use', t.confirmed_at IS NULL));
    RETURN until;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('totp_verify', NULL, me, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._totp_verify(text) IS 'Body of vms.totp_verify(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.totp_verify(code text)
RETURNS timestamptz AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.totp_verify(text) IS
    'Checks a TOTP code of the current user; elevates the session (administrative permissions) until the time returned. Wrong codes count toward the login lockout';

CREATE FUNCTION vms._totp_reset(username text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._check_text('user name', username, 63);
    IF vms._principal_kind(username) IS DISTINCT FROM 'user' THEN
        RAISE EXCEPTION 'VMS user "%" does not exist', username USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._require_principal_manageable(username);
    DELETE FROM vms.totp_secrets s WHERE s.role_name OPERATOR(pg_catalog.=) username;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no second factor is enrolled for "%"', username USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._audit('totp_reset', NULL, username, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('totp_reset', NULL, username, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._totp_reset(text) IS 'Body of vms.totp_reset(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.totp_reset(username text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.totp_reset(text) IS
    'Removes a user''s second factor (lost phone) so that the user can enroll again; needs manage_users over the user';

CREATE FUNCTION vms._set_second_factor_required(role text, required boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._check_text('role', role, 63);
    IF required IS NULL THEN
        RAISE EXCEPTION 'required must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT vms._is_system_manager(vms._invoker()) THEN
        PERFORM vms._deny('only a system manager may change which roles need a second factor');
    END IF;
    IF vms._principal_kind(role) IS NULL OR role OPERATOR(pg_catalog.=) 'vms_user' THEN
        RAISE EXCEPTION 'VMS user or role "%" does not exist', role USING ERRCODE = 'undefined_object';
    END IF;
    IF required THEN
        INSERT INTO vms.second_factor_roles (role, added_by) VALUES (role, vms._invoker_name())
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM vms.second_factor_roles s WHERE s.role OPERATOR(pg_catalog.=) role;
    END IF;
    PERFORM vms._audit('set_second_factor_required', NULL, role, pg_catalog.jsonb_build_object('required', required));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('set_second_factor_required', NULL, role, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_second_factor_required(text, boolean) IS 'Body of vms.set_second_factor_required(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_second_factor_required(role text, required boolean)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_second_factor_required(text, boolean) IS
    'Marks a VMS role (or user) as needing a second factor for administration, or not; system managers';

REVOKE ALL ON vms.second_factor_roles, vms.totp_secrets FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._totp_code(bytea, timestamptz, integer, text, integer), vms._totp_new_secret(),
                       vms._totp_uri(bytea, text), vms._totp_match(bytea, text, bigint), vms._totp_elevate(regrole),
                       vms._totp_lockout(text, text), vms._session_elevated(regrole), vms._second_factor_pending(regrole),
                       vms._second_factor_identity(), vms._require_own_second_factor(),
                       vms.elevated_until(), vms._totp_enroll(), vms.totp_enroll(), vms._totp_verify(text),
                       vms.totp_verify(text), vms._totp_reset(text), vms.totp_reset(text),
                       vms._set_second_factor_required(text, boolean), vms.set_second_factor_required(text, boolean)
  FROM PUBLIC;
GRANT SELECT ON vms.second_factor_roles TO vms_user;
GRANT EXECUTE ON FUNCTION vms.elevated_until(), vms.totp_enroll(), vms.totp_verify(text), vms.totp_reset(text),
                          vms.set_second_factor_required(text, boolean) TO vms_user;

