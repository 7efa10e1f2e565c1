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

