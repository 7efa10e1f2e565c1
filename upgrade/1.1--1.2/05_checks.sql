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

