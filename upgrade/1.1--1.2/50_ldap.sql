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
