-- pg_vms 1.1 -> 1.2: authentication hardening.  Released, so frozen: it was
-- assembled from upgrade/1.1--1.2/*.sql (see the git history) and is never edited.
-- Same conventions as pg_vms--1.0.sql: SECURITY DEFINER functions pin
-- search_path = pg_catalog, vms, pg_temp; nothing is granted to PUBLIC; each
-- file revokes and grants what it creates.

\echo Use "ALTER EXTENSION pg_vms UPDATE TO '1.2'" to load this file. \quit

------------------------------------------------------------------------------
-- Checks shared by the 1.2 API functions.
------------------------------------------------------------------------------
-- May the caller change who this principal is and where it logs in from?
-- Users: everything they hold must be assignable by the caller (as for
-- vms.drop_user); roles: the role itself.
CREATE FUNCTION vms._require_principal_manageable(name text)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    kind text := vms._principal_kind(name);
    uid oid;
    held text;
BEGIN
    IF kind IS NULL OR name OPERATOR(pg_catalog.=) 'vms_user' THEN
        RAISE EXCEPTION 'VMS user or role "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    IF kind OPERATOR(pg_catalog.=) 'user' THEN
        PERFORM vms._require_any('manage_users');
        SELECT r.oid INTO uid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) name;
        FOR held IN SELECT p.name FROM vms.principals p
                     WHERE p.kind OPERATOR(pg_catalog.<>) 'user' AND p.name OPERATOR(pg_catalog.<>) 'vms_user'
                       AND uid IS NOT NULL AND vms._role_has(uid, p.name) LOOP
            PERFORM vms._require_role_assignable(held);
        END LOOP;
    ELSE
        PERFORM vms._require_any('manage_roles');
        PERFORM vms._require_role_assignable(name);
    END IF;
    RETURN kind;
END
$$;
COMMENT ON FUNCTION vms._require_principal_manageable(text) IS
    'Raises unless the caller may manage this VMS user (manage_users over all it holds) or VMS role (manage_roles, assignable); returns its kind';

REVOKE ALL ON FUNCTION vms._require_principal_manageable(text) FROM PUBLIC;

------------------------------------------------------------------------------
-- Login lockout (src/auth_guard.c): what the shared-memory table holds, and
-- lifting a lock early.  Settings: vms.lockout_* (docs/authentication.md).
------------------------------------------------------------------------------
CREATE FUNCTION vms._lockouts(OUT kind text, OUT role text, OUT client_addr text, OUT failures integer,
                              OUT last_failure timestamptz, OUT locked_since timestamptz, OUT locked_until timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'vms_lockouts' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._lockouts() IS 'Failed-login counters and locks in shared memory';

CREATE FUNCTION vms._unlock(role text, client_addr text)
RETURNS integer AS 'MODULE_PATHNAME', 'vms_unlock' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._unlock(text, text) IS 'Forgets the failures and locks of a role and/or client address';

CREATE FUNCTION vms._login_lockouts(OUT kind text, OUT role text, OUT client_addr text, OUT failures integer,
                                    OUT last_failure timestamptz, OUT locked_since timestamptz, OUT locked_until timestamptz)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF NOT (vms._is_system_manager(vms._invoker()) OR vms._invoker_holds('manage_users', false)
            OR vms._invoker_holds('view_audit', false)) THEN
        PERFORM vms._deny('manage_users or view_audit is required');
    END IF;
    RETURN QUERY SELECT * FROM vms._lockouts() l ORDER BY l.locked_until DESC NULLS LAST, l.last_failure DESC;
END
$$;
COMMENT ON FUNCTION vms._login_lockouts() IS 'Body of vms.login_lockouts(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.login_lockouts(OUT kind text, OUT role text, OUT client_addr text, OUT failures integer,
                                   OUT last_failure timestamptz, OUT locked_since timestamptz, OUT locked_until timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.login_lockouts() IS
    'Roles and client addresses with failed logins or a lock now (manage_users or view_audit)';

CREATE FUNCTION vms._unlock_login(role text, client_addr inet DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    n integer;
BEGIN
    IF role IS NULL AND client_addr IS NULL THEN
        RAISE EXCEPTION 'give a role, a client address, or both' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF role IS NOT NULL THEN
        PERFORM vms._check_text('role', role, 63);
    END IF;
    -- Lifting a lock takes away the guessing limit of that role: only who may
    -- manage the role (all it holds) may do it.  Addresses and names that are
    -- no VMS principal: manage_users.
    IF role IS NOT NULL AND vms._principal_kind(role) IS NOT NULL THEN
        PERFORM vms._require_principal_manageable(role);
    ELSE
        PERFORM vms._require_any('manage_users');
    END IF;
    n := vms._unlock(role, pg_catalog.host(client_addr));
    PERFORM vms._audit('unlock_login', NULL, role,
                       pg_catalog.jsonb_build_object('client_addr', pg_catalog.host(client_addr), 'entries', n));
    RETURN n;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('unlock_login', NULL, role, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._unlock_login(text, inet) IS 'Body of vms.unlock_login(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.unlock_login(role text, client_addr inet DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.unlock_login(text, inet) IS
    'Lifts the login lock and clears the failed attempts of a role (and/or client address) now; needs manage_users';

REVOKE ALL ON FUNCTION vms._lockouts(), vms._unlock(text, text), vms._login_lockouts(),
                       vms.login_lockouts(), vms._unlock_login(text, inet), vms.unlock_login(text, inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vms.login_lockouts(), vms.unlock_login(text, inet) TO vms_user;

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
------------------------------------------------------------------------------
-- Client address allow-lists (src/client_address.c).  Every role a login
-- holds (itself included) that has rules must allow the client address.
------------------------------------------------------------------------------
CREATE SEQUENCE vms.client_address_rules_id_seq;
CREATE TABLE vms.client_address_rules (
    id          bigint PRIMARY KEY DEFAULT pg_catalog.nextval('vms.client_address_rules_id_seq'::pg_catalog.regclass),
    role        text NOT NULL,
    network     cidr NOT NULL,
    description text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (role, network)
);
ALTER SEQUENCE vms.client_address_rules_id_seq OWNED BY vms.client_address_rules.id;
COMMENT ON TABLE vms.client_address_rules IS
    'Networks a role (VMS user or VMS role) may connect from; enforced at login. Change with vms.allow_client_address() and vms.remove_client_address()';
ALTER TABLE vms.client_address_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.client_address_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY managers ON vms.client_address_rules FOR SELECT
    USING (vms.has_permission('manage_users', false) OR vms.has_permission('manage_roles', false));
SELECT pg_catalog.pg_extension_config_dump('vms.client_address_rules', '');
SELECT pg_catalog.pg_extension_config_dump('vms.client_address_rules_id_seq', '');

CREATE FUNCTION vms._client_address_publish()
RETURNS integer AS 'MODULE_PATHNAME', 'vms_client_address_publish' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms._client_address_publish() IS
    'Reads vms.client_address_rules and publishes them to the login check when the transaction commits';

CREATE FUNCTION vms._client_addresses_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'vms_client_addresses_changed' LANGUAGE C;
COMMENT ON FUNCTION vms._client_addresses_changed() IS 'Publishes changed client address rules at commit';
CREATE TRIGGER publish AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vms.client_address_rules
    FOR EACH STATEMENT EXECUTE FUNCTION vms._client_addresses_changed();

CREATE FUNCTION vms._parse_cidr(network text)
RETURNS cidr LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._check_text('network', network, 64);
    IF pg_catalog.strpos(network, '/') OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'malformed CIDR "%": no prefix length', network
            USING ERRCODE = 'invalid_text_representation',
                  HINT = 'Write the network with a prefix length, e.g. 192.0.2.0/24, 192.0.2.7/32 or 2001:db8::/32.';
    END IF;
    RETURN network::cidr;
EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value OR invalid_binary_representation THEN
    RAISE EXCEPTION 'malformed CIDR "%"', network
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'Write an address and prefix length with the host bits zero, e.g. 192.0.2.0/24 or 2001:db8::/32.';
END
$$;
COMMENT ON FUNCTION vms._parse_cidr(text) IS 'A network in CIDR notation, or a clear error';

CREATE FUNCTION vms._allow_client_address(role text, network text, description text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    net cidr;
    rid bigint;
BEGIN
    PERFORM vms._check_text('role', role, 63);
    net := vms._parse_cidr(network);
    PERFORM vms._check_optional_text('description', description, 2000);
    PERFORM vms._require_principal_manageable(role);
    -- Changes commit one at a time, so the published list is the table's.
    LOCK TABLE vms.client_address_rules IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM vms.client_address_rules c
                WHERE c.role OPERATOR(pg_catalog.=) role AND c.network OPERATOR(pg_catalog.=) net) THEN
        RAISE EXCEPTION 'role "%" already may connect from %', role, net USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO vms.client_address_rules (role, network, description, created_by)
    VALUES (role, net, description, vms._invoker_name())
    RETURNING id INTO rid;
    PERFORM vms._audit('allow_client_address', NULL, role,
                       pg_catalog.jsonb_build_object('network', net::text, 'rule', rid));
    RETURN rid;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('allow_client_address', NULL, role, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._allow_client_address(text, text, text) IS 'Body of vms.allow_client_address(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.allow_client_address(role text, network text, description text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.allow_client_address(text, text, text) IS
    'Adds a network (CIDR) a VMS user or role may connect from; once a role has rules, its members connect only from them. Applies to new logins at commit';

CREATE FUNCTION vms._remove_client_address(role text, network text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    net cidr;
    rid bigint;
BEGIN
    PERFORM vms._check_text('role', role, 63);
    net := vms._parse_cidr(network);
    PERFORM vms._require_principal_manageable(role);
    LOCK TABLE vms.client_address_rules IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM vms.client_address_rules c
     WHERE c.role OPERATOR(pg_catalog.=) role AND c.network OPERATOR(pg_catalog.=) net
    RETURNING c.id INTO rid;
    IF rid IS NULL THEN
        RAISE EXCEPTION 'role "%" has no rule for %', role, net USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._audit('remove_client_address', NULL, role,
                       pg_catalog.jsonb_build_object('network', net::text, 'rule', rid));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('remove_client_address', NULL, role, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._remove_client_address(text, text) IS 'Body of vms.remove_client_address(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.remove_client_address(role text, network text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.remove_client_address(text, text) IS
    'Removes a network from a role''s allow-list (when the last one goes, the role is unrestricted again)';

CREATE FUNCTION vms._reload_client_addresses()
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF NOT vms._is_system_manager(vms._invoker()) THEN
        PERFORM vms._deny('only a system manager may reload the client address rules');
    END IF;
    RETURN vms._client_address_publish();
END
$$;
COMMENT ON FUNCTION vms._reload_client_addresses() IS 'Body of vms.reload_client_addresses(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.reload_client_addresses()
RETURNS integer AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.reload_client_addresses() IS
    'Publishes vms.client_address_rules to the login check again (after renaming a role, say); system managers';

REVOKE ALL ON vms.client_address_rules, vms.client_address_rules_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._client_address_publish(), vms._client_addresses_changed(),
                       vms._parse_cidr(text),
                       vms._allow_client_address(text, text, text), vms.allow_client_address(text, text, text),
                       vms._remove_client_address(text, text), vms.remove_client_address(text, text),
                       vms._reload_client_addresses(), vms.reload_client_addresses() FROM PUBLIC;
GRANT SELECT ON vms.client_address_rules TO vms_user;
GRANT EXECUTE ON FUNCTION vms.allow_client_address(text, text, text), vms.remove_client_address(text, text),
                          vms.reload_client_addresses() TO vms_user;
-- Publish what a restored or updated table holds.
SELECT vms._client_address_publish();

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

------------------------------------------------------------------------------
-- LDAP / Active Directory group sync (tools/vms-ldap-sync, docs/ldap.md).
-- PostgreSQL itself checks LDAP passwords (pg_hba.conf `ldap`); pg_vms keeps
-- which directory group gives which VMS role, and vms.ldap_sync() applies
-- what the tool read from the directory.  The sync only ever changes roles it
-- created itself (vms.ldap_users), and only the VMS roles that are mapped.
------------------------------------------------------------------------------
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'vms_directory_sync') THEN
        CREATE ROLE vms_directory_sync NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    GRANT vms_user TO vms_directory_sync;
END
$roles$;
COMMENT ON ROLE vms_directory_sync IS
    'pg_vms: the account vms-ldap-sync logs in as; may call vms.ldap_sync() (creates LDAP users, applies group mappings)';
INSERT INTO vms.principals (name, kind, description, created_by)
VALUES ('vms_directory_sync', 'builtin', 'Directory (LDAP/AD) group sync', 'pg_vms');

-- Which directory group gives which VMS role.  The mapper needed the right
-- to hand out the role: the sync's grants act on that authority.
CREATE TABLE vms.ldap_group_map (
    group_dn   text PRIMARY KEY,
    vms_role   text NOT NULL REFERENCES vms.principals (name) ON DELETE CASCADE,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX ON vms.ldap_group_map (vms_role);
COMMENT ON TABLE vms.ldap_group_map IS
    'Directory group (DN, lower-case, no blanks around separators) -> VMS role; change with vms.map_ldap_group() and vms.unmap_ldap_group()';
ALTER TABLE vms.ldap_group_map ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.ldap_group_map FORCE ROW LEVEL SECURITY;
CREATE POLICY managers ON vms.ldap_group_map FOR SELECT
    USING (vms.has_permission('manage_roles', false)
           OR vms._role_has((SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER),
                            'vms_directory_sync'));

-- The LOGIN roles the sync created.  A row disappears with the user
-- (vms.drop_user deletes the principal), so a later role of the same name is
-- not the sync's.
CREATE TABLE vms.ldap_users (
    login          text PRIMARY KEY REFERENCES vms.principals (name) ON DELETE CASCADE,
    dn             text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_synced_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE vms.ldap_users IS
    'VMS users created by vms.ldap_sync(); the only roles the sync ever changes';
ALTER TABLE vms.ldap_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.ldap_users FORCE ROW LEVEL SECURITY;
CREATE POLICY managers ON vms.ldap_users FOR SELECT
    USING (vms.has_permission('manage_users', false) OR vms.has_permission('manage_roles', false)
           OR vms._role_has((SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER),
                            'vms_directory_sync'));

SELECT pg_catalog.pg_extension_config_dump('vms.ldap_group_map', '');
SELECT pg_catalog.pg_extension_config_dump('vms.ldap_users', '');

-- A DN as pg_vms stores and compares it: validated, lower-case, no blanks
-- around unescaped separators.  Directory servers compare the attribute
-- types and (for cn, ou, dc) the values of a DN without regard to case.
CREATE FUNCTION vms._ldap_dn(what text, dn text)
RETURNS text LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    norm text;
BEGIN
    PERFORM vms._check_text(what, dn, 1024);
    norm := pg_catalog.lower(pg_catalog.btrim(dn));
    norm := pg_catalog.regexp_replace(norm, '(?<![\\\s])\s+(?=[,=+])', '', 'g');
    norm := pg_catalog.regexp_replace(norm, '((?:^|[^\\])[,=+])\s+', '\1', 'g');
    IF norm OPERATOR(pg_catalog.!~) '^([a-z][a-z0-9-]*|[0-9]+(\.[0-9]+)*)=[^,]' THEN
        RAISE EXCEPTION '% "%" is not a distinguished name', what, dn
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Write the full DN, e.g. cn=operators,ou=groups,dc=example,dc=org.';
    END IF;
    RETURN norm;
END
$$;
COMMENT ON FUNCTION vms._ldap_dn(text, text) IS 'Validates a DN and returns it lower-case without blanks around separators';

-- NULL if the name can be a VMS user, else why not (no error: the sync
-- reports such a directory entry and goes on).
CREATE FUNCTION vms._ldap_login_problem(login text)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._check_role_name('login', login);
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END
$$;
COMMENT ON FUNCTION vms._ldap_login_problem(text) IS 'Why a directory login cannot be a VMS user, or NULL';

-- Does the role hold the other directly (a GRANT the sync could revoke)?
CREATE FUNCTION vms._ldap_holds(login text, role text)
RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members am
                     JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) am.roleid
                     JOIN pg_catalog.pg_roles m ON m.oid OPERATOR(pg_catalog.=) am.member
                    WHERE g.rolname OPERATOR(pg_catalog.=) _ldap_holds.role
                      AND m.rolname OPERATOR(pg_catalog.=) _ldap_holds.login);
$$;
COMMENT ON FUNCTION vms._ldap_holds(text, text) IS 'Is the role granted directly to the login?';

CREATE FUNCTION vms._map_ldap_group(group_dn text, vms_role text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    dn text;
    existing text;
BEGIN
    dn := vms._ldap_dn('group_dn', group_dn);
    PERFORM vms._check_text('vms_role', vms_role, 63);
    PERFORM vms._require_any('manage_roles');
    IF vms_role OPERATOR(pg_catalog.=) 'vms_directory_sync' THEN
        RAISE EXCEPTION 'vms_directory_sync cannot be given by a directory group'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A system manager gives it to the sync account with vms.add_member().';
    END IF;
    IF vms._principal_kind(vms_role) IS NULL OR vms._principal_kind(vms_role) OPERATOR(pg_catalog.=) 'user'
       OR vms_role OPERATOR(pg_catalog.=) 'vms_user' THEN
        RAISE EXCEPTION 'VMS role "%" does not exist', vms_role USING ERRCODE = 'undefined_object';
    END IF;
    -- The sync hands the role out on the mapper's authority.
    PERFORM vms._require_role_assignable(vms_role);
    SELECT m.vms_role INTO existing FROM vms.ldap_group_map m WHERE m.group_dn OPERATOR(pg_catalog.=) dn;
    IF FOUND THEN
        RAISE EXCEPTION 'directory group "%" is already mapped to VMS role "%"', dn, existing
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Remove the mapping with vms.unmap_ldap_group() first.';
    END IF;
    INSERT INTO vms.ldap_group_map (group_dn, vms_role, created_by) VALUES (dn, vms_role, vms._invoker_name());
    PERFORM vms._audit('map_ldap_group', NULL, dn, pg_catalog.jsonb_build_object('vms_role', vms_role));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('map_ldap_group', NULL, COALESCE(dn, pg_catalog.left(group_dn, 1024)), SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._map_ldap_group(text, text) IS 'Body of vms.map_ldap_group(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.map_ldap_group(group_dn text, vms_role text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.map_ldap_group(text, text) IS
    'Members of the directory group get the VMS role at the next vms-ldap-sync run; needs manage_roles and the right to hand out the role';

CREATE FUNCTION vms._unmap_ldap_group(group_dn text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    dn text;
    role text;
    lg text;
    n integer := 0;
BEGIN
    dn := vms._ldap_dn('group_dn', group_dn);
    PERFORM vms._require_any('manage_roles');
    SELECT m.vms_role INTO role FROM vms.ldap_group_map m WHERE m.group_dn OPERATOR(pg_catalog.=) dn;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'directory group "%" is not mapped', dn USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._require_role_assignable(role);
    -- Same lock order as vms.ldap_sync(): users first, then the map.
    LOCK TABLE vms.ldap_users IN EXCLUSIVE MODE;
    DELETE FROM vms.ldap_group_map m WHERE m.group_dn OPERATOR(pg_catalog.=) dn;
    -- Once no group gives the role, no sync would take it back: do it now.
    IF NOT EXISTS (SELECT 1 FROM vms.ldap_group_map m WHERE m.vms_role OPERATOR(pg_catalog.=) role) THEN
        FOR lg IN SELECT u.login FROM vms.ldap_users u WHERE vms._ldap_holds(u.login, role) ORDER BY u.login LOOP
            EXECUTE pg_catalog.format('REVOKE %I FROM %I', role, lg);
            PERFORM vms._touch_principal(lg);
            PERFORM vms._audit('ldap_revoke', NULL, lg,
                               pg_catalog.jsonb_build_object('vms_role', role, 'group_dn', dn, 'reason', 'unmapped'));
            n := n OPERATOR(pg_catalog.+) 1;
        END LOOP;
    END IF;
    PERFORM vms._audit('unmap_ldap_group', NULL, dn, pg_catalog.jsonb_build_object('vms_role', role, 'revoked', n));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('unmap_ldap_group', NULL, COALESCE(dn, pg_catalog.left(group_dn, 1024)), SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._unmap_ldap_group(text) IS 'Body of vms.unmap_ldap_group(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.unmap_ldap_group(group_dn text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.unmap_ldap_group(text) IS
    'Removes a group mapping; when no mapped group gives the VMS role any more, takes it from the users the sync created. Same rights as vms.map_ldap_group()';

-- Applies one reading of the directory.  directory:
--   {"groups": [{"dn": "<group DN>", "members": [{"login": "alice", "dn": "<entry DN>"}]}]}
-- listing every mapped group the tool could read.  Mapped groups not listed
-- are left alone (a failed search must never revoke everyone).
CREATE FUNCTION vms._ldap_sync(directory jsonb, dry_run boolean)
RETURNS TABLE (action text, login text, vms_role text, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me regrole := vms._invoker();
    grp jsonb;
    mem jsonb;
    gdn text;
    groups_read text[] := '{}';
    m_group text[] := '{}';
    m_login text[] := '{}';
    m_dn text[] := '{}';
    good text[] := '{}';
    bad text[] := '{}';
    problem text;
    known_dn text;
    ours boolean;
    exists_now boolean;
    r record;
    n_not_read integer := 0;
    n_created integer := 0;
    n_dn integer := 0;
    n_skipped integer := 0;
    n_granted integer := 0;
    n_revoked integer := 0;
BEGIN
    IF dry_run IS NULL THEN
        RAISE EXCEPTION 'dry_run must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT vms._is_system_manager(me) AND NOT vms._role_has(me::oid, 'vms_directory_sync') THEN
        PERFORM vms._deny('vms.ldap_sync() needs the privileges of vms_directory_sync');
    END IF;
    IF directory IS NULL OR pg_catalog.jsonb_typeof(directory) OPERATOR(pg_catalog.<>) 'object'
       OR pg_catalog.jsonb_typeof(directory OPERATOR(pg_catalog.->) 'groups') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'directory must be a JSON object with an array "groups"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '{"groups": [{"dn": "cn=...", "members": [{"login": "alice", "dn": "uid=alice,..."}]}]}';
    END IF;
    -- One sync at a time; no mapping changes while it runs.
    LOCK TABLE vms.ldap_users IN EXCLUSIVE MODE;
    LOCK TABLE vms.ldap_group_map IN SHARE MODE;

    -- Read and check the whole input before changing anything.
    FOR grp IN SELECT e.value FROM pg_catalog.jsonb_array_elements(directory OPERATOR(pg_catalog.->) 'groups') e LOOP
        IF pg_catalog.jsonb_typeof(grp) OPERATOR(pg_catalog.<>) 'object'
           OR pg_catalog.jsonb_typeof(grp OPERATOR(pg_catalog.->) 'dn') IS DISTINCT FROM 'string'
           OR pg_catalog.jsonb_typeof(grp OPERATOR(pg_catalog.->) 'members') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'each group must be an object with a string "dn" and an array "members"'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        gdn := vms._ldap_dn('group dn', grp OPERATOR(pg_catalog.->>) 'dn');
        IF gdn OPERATOR(pg_catalog.=) ANY (groups_read) THEN
            RAISE EXCEPTION 'directory group "%" is listed twice', gdn USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM vms.ldap_group_map m WHERE m.group_dn OPERATOR(pg_catalog.=) gdn) THEN
            RAISE EXCEPTION 'directory group "%" is not mapped to a VMS role', gdn
                USING ERRCODE = 'undefined_object',
                      HINT = 'List only the groups of vms.ldap_group_map; nothing was changed.';
        END IF;
        groups_read := groups_read OPERATOR(pg_catalog.||) gdn;
        FOR mem IN SELECT e.value FROM pg_catalog.jsonb_array_elements(grp OPERATOR(pg_catalog.->) 'members') e LOOP
            IF pg_catalog.jsonb_typeof(mem) OPERATOR(pg_catalog.<>) 'object'
               OR pg_catalog.jsonb_typeof(mem OPERATOR(pg_catalog.->) 'login') IS DISTINCT FROM 'string'
               OR pg_catalog.jsonb_typeof(mem OPERATOR(pg_catalog.->) 'dn') IS DISTINCT FROM 'string' THEN
                RAISE EXCEPTION 'each member of group "%" must be an object with a string "login" and a string "dn"', gdn
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            PERFORM vms._check_text('member dn', mem OPERATOR(pg_catalog.->>) 'dn', 1024);
            m_group := m_group OPERATOR(pg_catalog.||) gdn;
            m_login := m_login OPERATOR(pg_catalog.||) (mem OPERATOR(pg_catalog.->>) 'login');
            m_dn := m_dn OPERATOR(pg_catalog.||) (mem OPERATOR(pg_catalog.->>) 'dn');
        END LOOP;
    END LOOP;

    FOR r IN SELECT m.group_dn, m.vms_role FROM vms.ldap_group_map m
              WHERE NOT m.group_dn OPERATOR(pg_catalog.=) ANY (groups_read) ORDER BY m.group_dn LOOP
        action := 'not_read'; login := NULL; vms_role := r.vms_role; detail := r.group_dn;
        n_not_read := n_not_read OPERATOR(pg_catalog.+) 1;
        RETURN NEXT;
    END LOOP;

    -- Users: create what is missing; never touch a role the sync did not create.
    FOR r IN SELECT x.lg, pg_catalog.min(x.dn) AS dn, pg_catalog.count(DISTINCT x.dn) AS ndn
               FROM ROWS FROM (pg_catalog.unnest(m_login), pg_catalog.unnest(m_dn)) AS x(lg, dn)
              GROUP BY x.lg ORDER BY x.lg LOOP
        problem := vms._ldap_login_problem(r.lg);
        IF problem IS NULL AND r.ndn OPERATOR(pg_catalog.>) 1 THEN
            problem := 'the directory gives this login to more than one entry';
        END IF;
        SELECT u.dn INTO known_dn FROM vms.ldap_users u WHERE u.login OPERATOR(pg_catalog.=) r.lg;
        ours := FOUND;
        exists_now := EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname OPERATOR(pg_catalog.=) r.lg);
        IF problem IS NULL AND NOT ours AND (exists_now OR vms._principal_kind(r.lg) IS NOT NULL) THEN
            problem := 'a role of this name exists and was not created by the directory sync';
        END IF;
        IF problem IS NOT NULL THEN
            action := 'skipped'; login := r.lg; vms_role := NULL; detail := problem;
            bad := bad OPERATOR(pg_catalog.||) r.lg;
            n_skipped := n_skipped OPERATOR(pg_catalog.+) 1;
            RETURN NEXT;
            CONTINUE;
        END IF;
        good := good OPERATOR(pg_catalog.||) r.lg;
        IF NOT exists_now THEN
            action := 'create_user'; login := r.lg; vms_role := NULL; detail := r.dn;
            n_created := n_created OPERATOR(pg_catalog.+) 1;
            RETURN NEXT;
            IF NOT dry_run THEN
                -- As vms._create_user(), without a password: the directory checks it.
                EXECUTE pg_catalog.format('CREATE ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r.lg);
                EXECUTE pg_catalog.format('GRANT vms_user TO %I', r.lg);
                EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r.lg, 'pg_vms user from the directory: ' || r.dn);
                INSERT INTO vms.principals (name, kind, description, created_by)
                VALUES (r.lg, 'user', 'directory: ' || r.dn, vms._invoker_name())
                ON CONFLICT ON CONSTRAINT principals_pkey DO NOTHING;
                INSERT INTO vms.ldap_users AS u (login, dn) VALUES (r.lg, r.dn)
                ON CONFLICT ON CONSTRAINT ldap_users_pkey DO UPDATE SET dn = EXCLUDED.dn, last_synced_at = pg_catalog.now();
                PERFORM vms._audit('ldap_create_user', NULL, r.lg, pg_catalog.jsonb_build_object('dn', r.dn));
            END IF;
        ELSIF known_dn OPERATOR(pg_catalog.<>) r.dn THEN
            action := 'update_dn'; login := r.lg; vms_role := NULL; detail := r.dn;
            n_dn := n_dn OPERATOR(pg_catalog.+) 1;
            RETURN NEXT;
            IF NOT dry_run THEN
                UPDATE vms.ldap_users u SET dn = r.dn WHERE u.login OPERATOR(pg_catalog.=) r.lg;
                PERFORM vms._audit('ldap_update_dn', NULL, r.lg, pg_catalog.jsonb_build_object('old_dn', known_dn, 'dn', r.dn));
            END IF;
        END IF;
        IF NOT dry_run THEN
            UPDATE vms.ldap_users u SET last_synced_at = pg_catalog.now() WHERE u.login OPERATOR(pg_catalog.=) r.lg;
        END IF;
    END LOOP;

    -- Grants: a member of any group read that maps to the role.
    FOR r IN SELECT x.lg, m.vms_role,
                    pg_catalog.string_agg(m.group_dn, '; ' ORDER BY m.group_dn) AS groups
               FROM ROWS FROM (pg_catalog.unnest(m_group), pg_catalog.unnest(m_login)) AS x(grp, lg)
               JOIN vms.ldap_group_map m ON m.group_dn OPERATOR(pg_catalog.=) x.grp
              WHERE x.lg OPERATOR(pg_catalog.=) ANY (good)
              GROUP BY x.lg, m.vms_role
             HAVING NOT vms._ldap_holds(x.lg, m.vms_role)
              ORDER BY x.lg, m.vms_role LOOP
        action := 'grant'; login := r.lg; vms_role := r.vms_role; detail := r.groups;
        n_granted := n_granted OPERATOR(pg_catalog.+) 1;
        RETURN NEXT;
        IF NOT dry_run THEN
            EXECUTE pg_catalog.format('GRANT %I TO %I', r.vms_role, r.lg);
            PERFORM vms._touch_principal(r.lg);
            PERFORM vms._audit('ldap_grant', NULL, r.lg,
                               pg_catalog.jsonb_build_object('vms_role', r.vms_role, 'groups', r.groups));
        END IF;
    END LOOP;

    -- Revokes: only roles all of whose groups were read, only from users the
    -- sync created (and did not skip this time).
    FOR r IN SELECT u.login AS lg, c.vms_role, c.groups
               FROM vms.ldap_users u
              CROSS JOIN (SELECT m.vms_role, pg_catalog.string_agg(m.group_dn, '; ' ORDER BY m.group_dn) AS groups
                            FROM vms.ldap_group_map m GROUP BY m.vms_role
                          HAVING pg_catalog.bool_and(m.group_dn OPERATOR(pg_catalog.=) ANY (groups_read))) c
              WHERE NOT u.login OPERATOR(pg_catalog.=) ANY (bad)
                AND vms._ldap_holds(u.login, c.vms_role)
                AND NOT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest(m_group), pg_catalog.unnest(m_login)) AS x(grp, lg)
                                  JOIN vms.ldap_group_map m ON m.group_dn OPERATOR(pg_catalog.=) x.grp
                                 WHERE x.lg OPERATOR(pg_catalog.=) u.login
                                   AND m.vms_role OPERATOR(pg_catalog.=) c.vms_role)
              ORDER BY u.login, c.vms_role LOOP
        action := 'revoke'; login := r.lg; vms_role := r.vms_role; detail := 'not a member of ' || r.groups;
        n_revoked := n_revoked OPERATOR(pg_catalog.+) 1;
        RETURN NEXT;
        IF NOT dry_run THEN
            EXECUTE pg_catalog.format('REVOKE %I FROM %I', r.vms_role, r.lg);
            PERFORM vms._touch_principal(r.lg);
            PERFORM vms._audit('ldap_revoke', NULL, r.lg,
                               pg_catalog.jsonb_build_object('vms_role', r.vms_role, 'groups', r.groups));
        END IF;
    END LOOP;

    PERFORM vms._audit('ldap_sync', NULL, NULL,
                       pg_catalog.jsonb_build_object('dry_run', dry_run,
                                                     'groups_read', pg_catalog.cardinality(groups_read),
                                                     'groups_not_read', n_not_read,
                                                     'members', pg_catalog.cardinality(m_login),
                                                     'created', n_created, 'dn_updated', n_dn,
                                                     'granted', n_granted, 'revoked', n_revoked,
                                                     'skipped', n_skipped));
    RETURN;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('ldap_sync', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._ldap_sync(jsonb, boolean) IS 'Body of vms.ldap_sync(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.ldap_sync(directory jsonb, dry_run boolean DEFAULT true)
RETURNS TABLE (action text, login text, vms_role text, detail text) AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.ldap_sync(jsonb, boolean) IS
    'Applies the members of the mapped directory groups (as read by vms-ldap-sync): creates missing LDAP users, grants and revokes mapped VMS roles of users it created; dry_run (the default) only reports. Needs vms_directory_sync';

REVOKE ALL ON vms.ldap_group_map, vms.ldap_users FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._ldap_dn(text, text), vms._ldap_login_problem(text), vms._ldap_holds(text, text),
                       vms._map_ldap_group(text, text), vms.map_ldap_group(text, text),
                       vms._unmap_ldap_group(text), vms.unmap_ldap_group(text),
                       vms._ldap_sync(jsonb, boolean), vms.ldap_sync(jsonb, boolean) FROM PUBLIC;
GRANT SELECT ON vms.ldap_group_map, vms.ldap_users TO vms_user;
GRANT EXECUTE ON FUNCTION vms.map_ldap_group(text, text), vms.unmap_ldap_group(text),
                          vms.ldap_sync(jsonb, boolean) TO vms_user;
------------------------------------------------------------------------------
-- Hardening report: one row per check of the settings pg_vms depends on.
-- docs/authentication.md explains each check and its remediation.
------------------------------------------------------------------------------
CREATE FUNCTION vms._check_row(check_name text, ok boolean, bad_status text, detail text, remediation text,
                               OUT check_name text, OUT status text, OUT detail text, OUT remediation text)
RETURNS record LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT $1, CASE WHEN $2 THEN 'pass' ELSE $3 END, $4, CASE WHEN $2 THEN NULL ELSE $5 END;
$$;
COMMENT ON FUNCTION vms._check_row(text, boolean, text, text, text) IS 'One row of vms.security_report()';

-- A numeric setting in its base unit (current_setting() adds units: '30s').
CREATE FUNCTION vms._setting_int(name text)
RETURNS integer LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT s.setting::integer FROM pg_catalog.pg_settings s WHERE s.name OPERATOR(pg_catalog.=) $1;
$$;
COMMENT ON FUNCTION vms._setting_int(text) IS 'A numeric setting in its base unit';

CREATE FUNCTION vms._security_report(OUT check_name text, OUT status text, OUT detail text, OUT remediation text)
RETURNS SETOF record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    s text;
    n bigint;
    lines text;
    names text;
BEGIN
    IF NOT (vms._is_system_manager(vms._invoker()) OR vms._invoker_holds('view_audit', true)) THEN
        PERFORM vms._deny('the security report is for system managers and auditors (view_audit, scope all)');
    END IF;

    -- Passwords: SCRAM-SHA-256 only, never stored or sent in a weaker form.
    s := pg_catalog.current_setting('password_encryption');
    RETURN QUERY SELECT * FROM vms._check_row('password_encryption', s OPERATOR(pg_catalog.=) 'scram-sha-256', 'fail',
        'password_encryption = ' || s, 'ALTER SYSTEM SET password_encryption = ''scram-sha-256''; then reset every password');
    SELECT pg_catalog.count(*) INTO n FROM pg_catalog.pg_authid a
     WHERE a.rolpassword IS NOT NULL AND a.rolpassword OPERATOR(pg_catalog.!~) '^SCRAM-SHA-256\$';
    RETURN QUERY SELECT * FROM vms._check_row('stored_password_hashes', n OPERATOR(pg_catalog.=) 0, 'fail',
        n || ' roles have a password stored other than as a SCRAM-SHA-256 verifier',
        'Set a new password for each of them (vms.set_password) with password_encryption = scram-sha-256');

    -- pg_hba: no trust, password or md5 for VMS principals (or for all roles).
    SELECT pg_catalog.string_agg(h.line_number || ' (' || h.auth_method || ')', ', ' ORDER BY h.line_number) INTO lines
      FROM pg_catalog.pg_hba_file_rules h
     WHERE h.auth_method OPERATOR(pg_catalog.=) ANY (ARRAY['trust', 'password', 'md5'])
       AND (h.user_name && ARRAY['all', '+vms_user']
            OR EXISTS (SELECT 1 FROM vms.principals p
                        WHERE p.name OPERATOR(pg_catalog.=) ANY (h.user_name)
                           OR ('+' || p.name) OPERATOR(pg_catalog.=) ANY (h.user_name)));
    RETURN QUERY SELECT * FROM vms._check_row('hba_weak_methods', lines IS NULL, 'fail',
        COALESCE('pg_hba.conf lines ' || lines || ' apply to VMS users', 'no trust, password or md5 line applies to VMS users'),
        'Use scram-sha-256 (or ldap/cert over hostssl) for VMS users; keep trust/peer for the postgres role only');
    SELECT pg_catalog.count(*) INTO n FROM pg_catalog.pg_hba_file_rules h WHERE h.error IS NOT NULL;
    RETURN QUERY SELECT * FROM vms._check_row('hba_errors', n OPERATOR(pg_catalog.=) 0, 'fail',
        n || ' pg_hba.conf lines have errors', 'SELECT * FROM pg_hba_file_rules WHERE error IS NOT NULL; fix them and reload');
    SELECT pg_catalog.string_agg(h.line_number::text, ', ' ORDER BY h.line_number) INTO lines
      FROM pg_catalog.pg_hba_file_rules h
     WHERE h.type OPERATOR(pg_catalog.=) 'host' AND h.auth_method OPERATOR(pg_catalog.<>) 'reject'
       AND NOT (h.address OPERATOR(pg_catalog.=) ANY (ARRAY['127.0.0.1', '::1']));
    RETURN QUERY SELECT * FROM vms._check_row('hba_tls_only', lines IS NULL, 'warn',
        COALESCE('pg_hba.conf lines ' || lines || ' accept non-TLS connections from the network',
                 'network connections are hostssl (or loopback only)'),
        'Use hostssl instead of host for every non-loopback line');
    SELECT pg_catalog.string_agg(h.line_number::text, ', ' ORDER BY h.line_number) INTO lines
      FROM pg_catalog.pg_hba_file_rules h
     WHERE h.auth_method OPERATOR(pg_catalog.=) 'ldap'
       AND NOT (COALESCE(h.options, '{}') && ARRAY['ldaptls=true', 'ldapscheme=ldaps'])
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(h.options) o WHERE o OPERATOR(pg_catalog.~~) 'ldapurl=ldaps://%');
    RETURN QUERY SELECT * FROM vms._check_row('hba_ldap_tls', lines IS NULL, 'fail',
        COALESCE('ldap lines ' || lines || ' send passwords to the directory without TLS', 'every ldap line uses LDAPS or StartTLS'),
        'Add ldapscheme=ldaps (or ldaptls=1) to those lines (docs/ldap.md)');

    -- TLS 1.2 or later.
    s := pg_catalog.current_setting('ssl');
    RETURN QUERY SELECT * FROM vms._check_row('ssl', s OPERATOR(pg_catalog.=) 'on', 'fail', 'ssl = ' || s,
        'Configure ssl_cert_file/ssl_key_file, ALTER SYSTEM SET ssl = on; reload');
    s := pg_catalog.current_setting('ssl_min_protocol_version');
    RETURN QUERY SELECT * FROM vms._check_row('ssl_min_protocol_version', s OPERATOR(pg_catalog.=) ANY (ARRAY['TLSv1.2', 'TLSv1.3']), 'fail',
        'ssl_min_protocol_version = ' || s, 'ALTER SYSTEM SET ssl_min_protocol_version = ''TLSv1.2''; reload');

    -- The default PostgreSQL account: a password, or reachable only through peer.
    SELECT pg_catalog.string_agg(h.line_number || ' (' || h.type || ' ' || h.auth_method || ')', ', ' ORDER BY h.line_number) INTO lines
      FROM pg_catalog.pg_hba_file_rules h, pg_catalog.pg_authid a
     WHERE a.oid OPERATOR(pg_catalog.=) 10
       AND (h.user_name && ARRAY['all', a.rolname::text])
       AND NOT (h.type OPERATOR(pg_catalog.=) 'local' AND h.auth_method OPERATOR(pg_catalog.=) ANY (ARRAY['peer', 'reject']))
       AND h.auth_method OPERATOR(pg_catalog.<>) 'reject';
    SELECT a.rolname::text INTO names FROM pg_catalog.pg_authid a WHERE a.oid OPERATOR(pg_catalog.=) 10;
    SELECT pg_catalog.count(*) INTO n FROM pg_catalog.pg_authid a
     WHERE a.oid OPERATOR(pg_catalog.=) 10 AND a.rolpassword IS NOT NULL;
    RETURN QUERY SELECT * FROM vms._check_row('bootstrap_superuser', n OPERATOR(pg_catalog.=) 1 OR lines IS NULL, 'fail',
        CASE WHEN n OPERATOR(pg_catalog.=) 1 THEN pg_catalog.format('%s has a password', names)
             WHEN lines IS NULL THEN pg_catalog.format('%s has no password and only peer access', names)
             ELSE pg_catalog.format('%s has no password and pg_hba.conf lines %s reach it other than by peer', names, lines) END,
        pg_catalog.format('ALTER ROLE %I PASSWORD ... (a strong one), or allow it only "local ... peer"', names));

    -- Who holds power.
    SELECT pg_catalog.count(*), pg_catalog.string_agg(a.rolname::text, ', ' ORDER BY a.rolname) INTO n, names
      FROM pg_catalog.pg_authid a WHERE a.rolsuper AND a.rolcanlogin;
    RETURN QUERY SELECT * FROM vms._check_row('superusers', n OPERATOR(pg_catalog.<=) 1, 'warn',
        n || ' superusers can log in: ' || COALESCE(names, 'none'),
        'Keep one superuser for the database administrator; VMS administrators are system managers, never superusers');
    SELECT pg_catalog.count(*), pg_catalog.string_agg(a.rolname::text, ', ' ORDER BY a.rolname) INTO n, names
      FROM pg_catalog.pg_roles a
     WHERE a.rolcanlogin AND NOT a.rolsuper AND vms._role_has(a.oid, 'vms_system_manager');
    RETURN QUERY SELECT * FROM vms._check_row('system_managers', n OPERATOR(pg_catalog.>=) 1 AND n OPERATOR(pg_catalog.<=) 3, 'warn',
        n || ' system managers: ' || COALESCE(names, 'none'),
        'Keep a few named system managers (1 to 3); give day-to-day administrators scoped manage_* grants instead');
    SELECT pg_catalog.count(*), pg_catalog.string_agg(a.rolname::text, ', ' ORDER BY a.rolname) INTO n, names
      FROM pg_catalog.pg_roles a
     WHERE a.rolcanlogin AND NOT a.rolsuper
       AND EXISTS (SELECT 1 FROM vms.second_factor_roles f WHERE vms._role_has(a.oid, f.role))
       AND NOT EXISTS (SELECT 1 FROM vms.totp_secrets t
                        WHERE t.role_name OPERATOR(pg_catalog.=) a.rolname AND t.confirmed_at IS NOT NULL);
    RETURN QUERY SELECT * FROM vms._check_row('second_factor_enrolled', n OPERATOR(pg_catalog.=) 0, 'fail',
        CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN 'every user who needs a second factor has one'
             ELSE n || ' users need a second factor and have none confirmed: ' || names END,
        'Each of them runs SELECT vms.totp_enroll(); and confirms with vms.totp_verify(code)');
    SELECT pg_catalog.count(*) INTO n FROM vms.second_factor_roles f WHERE f.role OPERATOR(pg_catalog.=) 'vms_system_manager';
    RETURN QUERY SELECT * FROM vms._check_row('second_factor_required', n OPERATOR(pg_catalog.=) 1, 'fail',
        CASE WHEN n OPERATOR(pg_catalog.=) 1 THEN 'system managers need a second factor for administration'
             ELSE 'system managers can administer without a second factor' END,
        'SELECT vms.set_second_factor_required(''vms_system_manager'', true);');
    SELECT pg_catalog.count(*), pg_catalog.string_agg(p.name, ', ' ORDER BY p.name) INTO n, names
      FROM vms.principals p
     WHERE p.kind OPERATOR(pg_catalog.=) 'role'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) m.roleid
                        WHERE r.rolname OPERATOR(pg_catalog.=) p.name);
    RETURN QUERY SELECT * FROM vms._check_row('roles_without_members', n OPERATOR(pg_catalog.=) 0, 'warn',
        n || ' VMS roles have no members' || COALESCE(': ' || names, ''),
        'Drop VMS roles nobody holds (vms.drop_role), or add their members');

    -- Login lockout and password policy as the requirements set them.
    RETURN QUERY SELECT * FROM vms._check_row('login_lockout',
        vms._setting_int('vms.lockout_threshold') BETWEEN 1 AND 5
        AND vms._setting_int('vms.lockout_duration') OPERATOR(pg_catalog.>=) 30, 'fail',
        pg_catalog.format('locked for %s s after %s failed logins',
                          vms._setting_int('vms.lockout_duration'), vms._setting_int('vms.lockout_threshold')),
        'ALTER SYSTEM SET vms.lockout_threshold = 3; ALTER SYSTEM SET vms.lockout_duration = ''30s''; reload');
    RETURN QUERY SELECT * FROM vms._check_row('password_policy',
        vms._setting_int('vms.password_min_length') OPERATOR(pg_catalog.>=) 12
        AND vms._setting_int('vms.password_min_classes') OPERATOR(pg_catalog.>=) 3
        AND pg_catalog.current_setting('vms.password_reject_username')::boolean
        AND pg_catalog.current_setting('vms.password_cracklib_dictionary') OPERATOR(pg_catalog.<>) ''
        AND pg_catalog.current_setting('vms.password_common_list') OPERATOR(pg_catalog.<>) ''
        AND vms._setting_int('vms.password_history') OPERATOR(pg_catalog.>=) 1
        AND NOT pg_catalog.current_setting('vms.password_allow_hashed')::boolean, 'fail',
        pg_catalog.format('length >= %s, %s classes, user name %s, cracklib %s, common list %s, history %s, pre-hashed %s',
            pg_catalog.current_setting('vms.password_min_length'), pg_catalog.current_setting('vms.password_min_classes'),
            CASE WHEN pg_catalog.current_setting('vms.password_reject_username')::boolean THEN 'refused' ELSE 'allowed' END,
            COALESCE(NULLIF(pg_catalog.current_setting('vms.password_cracklib_dictionary'), ''), 'off'),
            COALESCE(NULLIF(pg_catalog.current_setting('vms.password_common_list'), ''), 'off'),
            pg_catalog.current_setting('vms.password_history'),
            CASE WHEN pg_catalog.current_setting('vms.password_allow_hashed')::boolean THEN 'allowed' ELSE 'refused' END),
        'Restore the defaults of the vms.password_* settings (docs/password-policy.md)');

    -- Other settings pg_vms depends on.
    s := pg_catalog.current_setting('shared_preload_libraries');
    RETURN QUERY SELECT * FROM vms._check_row('pg_cron_loaded', s OPERATOR(pg_catalog.~) '(^|[ ,])pg_cron($|[ ,])', 'warn',
        'shared_preload_libraries = ' || s, 'Add pg_cron to shared_preload_libraries: retention and maintenance are scheduled with it');
    SELECT pg_catalog.count(*) INTO n FROM vms.key_status() k WHERE k.master_key_loaded;
    RETURN QUERY SELECT * FROM vms._check_row('master_key', n OPERATOR(pg_catalog.=) 1, 'fail',
        CASE WHEN n OPERATOR(pg_catalog.=) 1 THEN 'the master key is loaded' ELSE 'no master key is loaded: credentials and personal data cannot be read' END,
        'Set vms.key_file or vms.key_command and restart (docs/keys.md)');
    RETURN QUERY SELECT * FROM vms._check_row('log_connections', pg_catalog.current_setting('log_connections')::boolean, 'warn',
        'log_connections = ' || pg_catalog.current_setting('log_connections'),
        'ALTER SYSTEM SET log_connections = on: the server log then records every login next to the audit log');
    SELECT pg_catalog.count(*) INTO n FROM vms.audit_log l WHERE l.action OPERATOR(pg_catalog.=) 'audit_queue_overflow';
    RETURN QUERY SELECT * FROM vms._check_row('audit_queue_overflow', n OPERATOR(pg_catalog.=) 0, 'warn',
        n || ' audit queue overflows recorded',
        'Raise vms.audit_queue_size and restart; look at what flooded the queue (vms.audit_log around the overflow)');
    s := pg_catalog.current_setting('vms.max_retention', true);
    RETURN QUERY SELECT * FROM vms._check_row('retention_cap', s IS NOT NULL, 'warn',
        COALESCE('vms.max_retention = ' || s, 'this version of pg_vms does not enforce a retention cap yet'),
        'Update pg_vms: retention (at most 30 days by default) comes with the retention release');
END
$$;
COMMENT ON FUNCTION vms._security_report() IS 'Body of vms.security_report(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.security_report(OUT check_name text, OUT status text, OUT detail text, OUT remediation text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.security_report() IS
    'Hardening report: one row per check (pass, warn or fail) with what was found and how to fix it; system managers and auditors';

REVOKE ALL ON FUNCTION vms._check_row(text, boolean, text, text, text), vms._setting_int(text), vms._security_report(), vms.security_report() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vms.security_report() TO vms_user;

------------------------------------------------------------------------------
-- Fixes to 1.0 functions.
--
-- vms._ensure_partition: two sessions creating the same partition (the audit
-- worker and vms.create_partitions(), say) could both pass the existence
-- check; the second failed with "relation ... already exists" because an
-- advisory lock does not make a backend read newly committed catalog rows.
--
-- vms._covers: reads vms.grants itself, so it must also hold back
-- administrative permissions while a second factor is pending (1.2).
------------------------------------------------------------------------------
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
    -- Creators take turns on the parent (inserts are not blocked).  A relation
    -- lock, unlike an advisory lock, also makes this backend read the catalog
    -- changes the previous holder committed, so the check below sees its table.
    EXECUTE pg_catalog.format('LOCK TABLE vms.%I IN SHARE UPDATE EXCLUSIVE MODE', parent);
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


CREATE OR REPLACE FUNCTION vms._covers(permission text, scope text, camera_id integer, group_id integer,
                            recorded_window interval, valid_until timestamptz, check_limits boolean)
RETURNS boolean LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    inv oid := vms._invoker();
BEGIN
    IF vms._is_system_manager(inv::regrole) THEN
        RETURN true;
    END IF;
    -- Administrative permissions wait for a pending second factor here too.
    IF vms._second_factor_pending(inv::regrole)
       AND EXISTS (SELECT 1 FROM vms.permissions p
                    WHERE p.name OPERATOR(pg_catalog.=) permission AND p.administrative) THEN
        RETURN false;
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
