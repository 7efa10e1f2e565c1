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

