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

