------------------------------------------------------------------------------
-- Export profiles: how evidence packages are signed and protected.  Each
-- names the signer's certificate (vms-export refuses a key that does not
-- match it), its chain, whether the key must be passphrase-protected, the
-- formats offered (MP4 as recorded, PNG stills; never AVI or JPEG), whether
-- encryption is required and an RFC 3161 time-stamping authority.  Set by
-- system managers; read by everyone who may export or take snapshots.
-- docs/export.md explains the package.
------------------------------------------------------------------------------
CREATE TABLE vms.export_profiles (
    name                 text PRIMARY KEY CHECK (pg_catalog.octet_length(name) BETWEEN 1 AND 63),
    description          text,
    signer_certificate   text NOT NULL,
    signer_chain         text,
    signer_sha256        bytea NOT NULL CHECK (pg_catalog.length(signer_sha256) = 32),
    key_needs_passphrase boolean NOT NULL DEFAULT true,
    formats              text[] NOT NULL DEFAULT '{mp4}'
                         CHECK (formats <@ '{mp4,png}'::text[] AND pg_catalog.cardinality(formats) > 0),
    encryption_required  boolean NOT NULL DEFAULT false,
    tsa_url              text CHECK (tsa_url ~ '^https?://'),
    updated_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at           timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE vms.export_profiles IS
    'How evidence exports are signed and protected (vms.set_export_profile); vms.begin_export() hands the chosen one to vms-export';
COMMENT ON COLUMN vms.export_profiles.signer_certificate IS 'The signer''s certificate (PEM, exactly one); vms-export refuses any other key';
COMMENT ON COLUMN vms.export_profiles.signer_chain IS 'Intermediate certificates included in the signature (PEM, zero or more)';
COMMENT ON COLUMN vms.export_profiles.signer_sha256 IS 'SHA-256 of the signer certificate''s DER encoding';
COMMENT ON COLUMN vms.export_profiles.key_needs_passphrase IS 'vms-export refuses a signing key file that is not encrypted';
COMMENT ON COLUMN vms.export_profiles.formats IS 'What may be exported: mp4 (video) and/or png (snapshots); AVI and JPEG are never offered';
COMMENT ON COLUMN vms.export_profiles.encryption_required IS 'Packages must be encrypted (CMS, to recipient certificates or a password)';
COMMENT ON COLUMN vms.export_profiles.tsa_url IS 'RFC 3161 time-stamping authority for the signature (NULL: none)';
ALTER TABLE vms.export_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE vms.export_profiles FORCE ROW LEVEL SECURITY;
-- Exporters need the profile; system managers hold every permission.
CREATE POLICY exporters ON vms.export_profiles FOR SELECT
    USING (vms.has_permission('export') OR vms.has_permission('snapshot'));
SELECT pg_catalog.pg_extension_config_dump('vms.export_profiles', '');

-- The certificates of a PEM text, as DER, in order.  Anything but complete
-- CERTIFICATE blocks (a key, a request, stray text) is refused.
CREATE FUNCTION vms._pem_certificates(what text, pem text)
RETURNS bytea[] LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    m text[];
    der bytea;
    ders bytea[] := '{}';
BEGIN
    IF pem IS NULL THEN
        RETURN ders;
    END IF;
    IF pg_catalog.octet_length(pem) > 262144 THEN
        RAISE EXCEPTION '% is too long (at most 256 kB)', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.btrim(pg_catalog.regexp_replace(pem,
            '-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=[:space:]]*-----END CERTIFICATE-----', '', 'g'),
            E' \t\r\n') OPERATOR(pg_catalog.<>) '' THEN
        RAISE EXCEPTION '% must hold PEM certificates ("-----BEGIN CERTIFICATE-----" blocks) and nothing else', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'openssl x509 -in signer.crt -outform PEM prints one; never include a private key.';
    END IF;
    FOR m IN SELECT pg_catalog.regexp_matches(pem,
                 '-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=[:space:]]*)-----END CERTIFICATE-----', 'g') LOOP
        BEGIN
            der := pg_catalog.decode(pg_catalog.regexp_replace(m[1], '[[:space:]]', '', 'g'), 'base64');
        EXCEPTION WHEN OTHERS THEN
            der := NULL;
        END;
        -- A certificate is a DER SEQUENCE (0x30) of some length.
        IF der IS NULL OR pg_catalog.length(der) < 64 OR pg_catalog.get_byte(der, 0) OPERATOR(pg_catalog.<>) 48 THEN
            RAISE EXCEPTION '% holds a CERTIFICATE block that is not a DER certificate in base64', what
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ders := ders OPERATOR(pg_catalog.||) der;
    END LOOP;
    RETURN ders;
END
$$;
COMMENT ON FUNCTION vms._pem_certificates(text, text) IS 'The DER certificates of a PEM text; raises on anything else';

-- SHA-256 of the DER of a PEM text that must hold exactly one certificate.
CREATE FUNCTION vms._certificate_sha256(what text, pem text)
RETURNS bytea LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    ders bytea[];
BEGIN
    IF pem IS NULL THEN
        RAISE EXCEPTION '% must not be null', what USING ERRCODE = 'null_value_not_allowed';
    END IF;
    ders := vms._pem_certificates(what, pem);
    IF pg_catalog.cardinality(ders) OPERATOR(pg_catalog.<>) 1 THEN
        RAISE EXCEPTION '% must be exactly one PEM certificate ("-----BEGIN CERTIFICATE-----" block), not %', what,
                        pg_catalog.cardinality(ders)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Intermediate certificates go in signer_chain.';
    END IF;
    RETURN pg_catalog.sha256(ders[1]);
END
$$;
COMMENT ON FUNCTION vms._certificate_sha256(text, text) IS 'SHA-256 of the DER of exactly one PEM certificate; raises otherwise';

CREATE FUNCTION vms._set_export_profile(name text, signer_certificate text, signer_chain text DEFAULT NULL,
                                       key_needs_passphrase boolean DEFAULT true, formats text[] DEFAULT '{mp4}',
                                       encryption_required boolean DEFAULT false, tsa_url text DEFAULT NULL,
                                       description text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    fp bytea;
    fmts text[];
    existed boolean;
BEGIN
    IF NOT vms._is_system_manager(vms._invoker()) THEN
        PERFORM vms._deny('only system managers may set export profiles');
    END IF;
    PERFORM vms._check_text('name', name, 63);
    fp := vms._certificate_sha256('signer_certificate', signer_certificate);
    IF signer_chain IS NOT NULL AND pg_catalog.btrim(signer_chain, E' \t\r\n') OPERATOR(pg_catalog.=) '' THEN
        signer_chain := NULL;
    END IF;
    PERFORM vms._pem_certificates('signer_chain', signer_chain);
    IF key_needs_passphrase IS NULL OR encryption_required IS NULL OR formats IS NULL THEN
        RAISE EXCEPTION 'key_needs_passphrase, formats and encryption_required must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.cardinality(formats) OPERATOR(pg_catalog.=) 0 OR NOT formats <@ '{mp4,png}'::text[]
       OR pg_catalog.array_position(formats, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'formats must be mp4, png or both, not %', formats
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'AVI and JPEG are never offered: MP4 carries the recorded H.264 unchanged and PNG stills are lossless.';
    END IF;
    fmts := ARRAY(SELECT DISTINCT f FROM pg_catalog.unnest(formats) f ORDER BY f);
    IF tsa_url IS NOT NULL THEN
        PERFORM vms._check_text('tsa_url', tsa_url, 2048);
        IF tsa_url !~ '^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[!-~]*)?$' THEN
            RAISE EXCEPTION 'tsa_url must be an http:// or https:// address without credentials'
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: https://tsa.example.org/tsr';
        END IF;
    END IF;
    PERFORM vms._check_optional_text('description', description, 2000);
    existed := EXISTS (SELECT 1 FROM vms.export_profiles p WHERE p.name OPERATOR(pg_catalog.=) name);
    INSERT INTO vms.export_profiles AS p (name, description, signer_certificate, signer_chain, signer_sha256,
                                         key_needs_passphrase, formats, encryption_required, tsa_url, updated_by)
    VALUES (name, description, signer_certificate, signer_chain, fp, key_needs_passphrase, fmts,
            encryption_required, tsa_url, vms._invoker_name())
    ON CONFLICT ON CONSTRAINT export_profiles_pkey DO UPDATE
       SET description = EXCLUDED.description, signer_certificate = EXCLUDED.signer_certificate,
           signer_chain = EXCLUDED.signer_chain, signer_sha256 = EXCLUDED.signer_sha256,
           key_needs_passphrase = EXCLUDED.key_needs_passphrase, formats = EXCLUDED.formats,
           encryption_required = EXCLUDED.encryption_required, tsa_url = EXCLUDED.tsa_url,
           updated_by = EXCLUDED.updated_by, updated_at = pg_catalog.now();
    PERFORM vms._audit('export_profile_set', NULL, name,
                       pg_catalog.jsonb_build_object('new', NOT existed, 'signer_sha256', pg_catalog.encode(fp, 'hex'),
                                                     'chain_certificates',
                                                     pg_catalog.cardinality(vms._pem_certificates('signer_chain', signer_chain)),
                                                     'key_needs_passphrase', key_needs_passphrase, 'formats', fmts,
                                                     'encryption_required', encryption_required, 'tsa_url', tsa_url));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('export_profile_set', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._set_export_profile(text, text, text, boolean, text[], boolean, text, text) IS 'Body of vms.set_export_profile(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.set_export_profile(name text, signer_certificate text, signer_chain text DEFAULT NULL,
                                      key_needs_passphrase boolean DEFAULT true, formats text[] DEFAULT '{mp4}',
                                      encryption_required boolean DEFAULT false, tsa_url text DEFAULT NULL,
                                      description text DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.set_export_profile(text, text, text, boolean, text[], boolean, text, text) IS
    'Creates or replaces an export profile (system managers only): signer certificate and chain, passphrase rule, formats (mp4, png), encryption rule, TSA';

CREATE FUNCTION vms._remove_export_profile(name text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    p vms.export_profiles;
BEGIN
    IF NOT vms._is_system_manager(vms._invoker()) THEN
        PERFORM vms._deny('only system managers may remove export profiles');
    END IF;
    DELETE FROM vms.export_profiles x WHERE x.name OPERATOR(pg_catalog.=) name RETURNING * INTO p;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'export profile "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM vms._audit('export_profile_remove', NULL, name,
                       pg_catalog.jsonb_build_object('signer_sha256', pg_catalog.encode(p.signer_sha256, 'hex')));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('export_profile_remove', NULL, name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._remove_export_profile(text) IS 'Body of vms.remove_export_profile(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.remove_export_profile(name text)
RETURNS void AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.remove_export_profile(text) IS
    'Removes an export profile (system managers only); the export register keeps the name of the profile each export used';

REVOKE ALL ON vms.export_profiles FROM PUBLIC;
REVOKE ALL ON FUNCTION vms._pem_certificates(text, text), vms._certificate_sha256(text, text),
                       vms._set_export_profile(text, text, text, boolean, text[], boolean, text, text),
                       vms.set_export_profile(text, text, text, boolean, text[], boolean, text, text),
                       vms._remove_export_profile(text), vms.remove_export_profile(text) FROM PUBLIC;
GRANT SELECT ON vms.export_profiles TO vms_user;
GRANT EXECUTE ON FUNCTION vms.set_export_profile(text, text, text, boolean, text[], boolean, text, text),
                          vms.remove_export_profile(text) TO vms_user;
