------------------------------------------------------------------------------
-- Password policy (src/password_policy.c, src/password.c): the password
-- history, changing one's own password, setting a user's password, and a dry
-- run of the rules.  Settings: vms.password_* (docs/password-policy.md).
------------------------------------------------------------------------------
CREATE SEQUENCE vms.password_history_id_seq AS bigint;
CREATE TABLE vms.password_history (
    id         bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.password_history_id_seq'::pg_catalog.regclass),
    role_name  text NOT NULL CHECK (pg_catalog.octet_length(role_name) BETWEEN 1 AND 63),
    verifier   text NOT NULL CHECK (verifier LIKE 'SCRAM-SHA-256$%'),
    changed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE vms.password_history_id_seq OWNED BY vms.password_history.id;
CREATE INDEX password_history_role ON vms.password_history (role_name, id);
COMMENT ON TABLE vms.password_history IS
    'Last vms.password_history passwords of each role, as salted SCRAM-SHA-256 verifiers (as pg_authid holds them); written by the password hook, readable by nobody but the owner';
COMMENT ON COLUMN vms.password_history.role_name IS 'Role name (names survive pg_dumpall; OIDs do not)';
COMMENT ON COLUMN vms.password_history.verifier IS 'SCRAM-SHA-256 verifier of a password the role had';
ALTER TABLE vms.password_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.password_history FORCE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('vms.password_history', '');
SELECT pg_catalog.pg_extension_config_dump('vms.password_history_id_seq', '');

CREATE FUNCTION vms._password_matches(username text, password text)
RETURNS boolean AS 'MODULE_PATHNAME', 'vms_password_matches' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._password_matches(text, text) IS
    'Is this the role''s current password?  A wrong guess counts against the login lockout';

CREATE FUNCTION vms._password_reset_verifier(username text, password text)
RETURNS text AS 'MODULE_PATHNAME', 'vms_password_reset_verifier' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._password_reset_verifier(text, text) IS
    'vms._password_verifier() for an administrator''s reset: the policy without the history rule';

CREATE FUNCTION vms._password_policy_report(username text, password text)
RETURNS TABLE (rule text, ok boolean, detail text)
AS 'MODULE_PATHNAME', 'vms_password_policy_report' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION vms._password_policy_report(text, text) IS
    'Each password rule''s verdict on a plaintext (history not consulted); changes nothing';

-- A password argument: present, not empty.  Length is the policy's (1024 bytes).
CREATE FUNCTION vms._check_password_arg(what text, value text)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be null', what USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF value = '' THEN
        RAISE EXCEPTION '% must not be empty', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION vms._check_password_arg(text, text) IS 'Validates a password argument without ever showing it';

-- The caller changes its own password.  A wrong current password gives the
-- error a failed login gives, whatever the reason.
CREATE FUNCTION vms._change_password(current_password text, new_password text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me text;
BEGIN
    me := vms._invoker_name();
    PERFORM vms._check_password_arg('current_password', current_password);
    PERFORM vms._check_password_arg('new_password', new_password);
    IF NOT vms._password_matches(me, current_password) THEN
        RAISE EXCEPTION 'password authentication failed for user "%"', me
            USING ERRCODE = 'invalid_password', HINT = 'Give your current password.';
    END IF;
    -- Only the SCRAM verifier enters the statement; the policy saw the plaintext.
    EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', me, vms._password_verifier(me, new_password));
    PERFORM vms._audit('change_password', NULL, me, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('change_password', NULL, me, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._change_password(text, text) IS 'Body of vms.change_password(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.change_password(current_password text, new_password text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.change_password(text, text) IS
    'Changes your own password (checked by the password policy, stored as a SCRAM-SHA-256 verifier); needs the current one';

-- An administrator sets a VMS user's password: manage_users, and the right to
-- hand out every role the user holds (as vms.drop_user).
CREATE FUNCTION vms._set_password(username text, new_password text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    uid oid;
BEGIN
    PERFORM vms._check_text('username', username, 63);
    PERFORM vms._check_password_arg('new_password', new_password);
    PERFORM vms._require_any('manage_users');
    SELECT r.oid INTO uid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) username;
    IF vms._principal_kind(username) IS DISTINCT FROM 'user' OR uid IS NULL THEN
        RAISE EXCEPTION 'VMS user "%" does not exist', username USING ERRCODE = 'undefined_object';
    END IF;
    IF uid OPERATOR(pg_catalog.=) vms._invoker()::oid THEN
        PERFORM vms._deny('your own password is changed with vms.change_password()',
                          'It asks for your current password.');
    END IF;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) uid)
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) vms._invoker()::oid) THEN
        PERFORM vms._deny(pg_catalog.format('only a superuser may set the password of superuser %s', username));
    END IF;
    PERFORM vms._require_principal_manageable(username);
    -- Without the history rule: it would answer "was this one of the user's
    -- recent passwords?" to an administrator (docs/password-policy.md).
    EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', username, vms._password_reset_verifier(username, new_password));
    PERFORM vms._audit('set_password', NULL, username, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('set_password', NULL, username, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_password(text, text) IS 'Body of vms.set_password(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_password(username text, new_password text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_password(text, text) IS
    'Sets a VMS user''s password (password policy, SCRAM-SHA-256); needs manage_users and the right to grant every role the user holds';

-- Dry run for administrators.  The history is not consulted: that would let
-- an administrator test guesses of a user's password without changing it.
CREATE FUNCTION vms._check_password(username text, password text)
RETURNS TABLE (rule text, ok boolean, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    PERFORM vms._check_text('username', username, 63);
    PERFORM vms._check_password_arg('password', password);
    PERFORM vms._require_any('manage_users');
    RETURN QUERY SELECT r.rule, r.ok, r.detail FROM vms._password_policy_report(username, password) r;
END
$$;
COMMENT ON FUNCTION vms._check_password(text, text) IS 'Body of vms.check_password(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.check_password(username text, password text)
RETURNS TABLE (rule text, ok boolean, detail text)
AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.check_password(text, text) IS
    'Which password-policy rules a password would pass for a user (not the history); needs manage_users; changes nothing';

REVOKE ALL ON TABLE vms.password_history FROM PUBLIC;
REVOKE ALL ON SEQUENCE vms.password_history_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._password_matches(text, text), vms._password_policy_report(text, text),
                       vms._password_reset_verifier(text, text),
                       vms._check_password_arg(text, text),
                       vms._change_password(text, text), vms.change_password(text, text),
                       vms._set_password(text, text), vms.set_password(text, text),
                       vms._check_password(text, text), vms.check_password(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vms.change_password(text, text), vms.set_password(text, text),
                          vms.check_password(text, text) TO vms_user;
