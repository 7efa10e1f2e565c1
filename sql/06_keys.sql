-- Keys (pg_vms 1.1): the master key, data keys, encrypted camera credentials,
-- ciphertexts bound to their row and column, rotation.
\set VERBOSITY terse
SELECT extversion FROM pg_extension WHERE extname = 'pg_vms';
SELECT master_key_loaded, master_key_version, data_keys FROM vms.key_status();
SELECT id AS cam1 FROM vms.cameras WHERE name = 'entrance' \gset
SELECT id AS cam3 FROM vms.cameras WHERE name = 'gate' \gset

-- A system manager stores two camera logins.
SET ROLE regress_manager;
SELECT vms.set_camera_credential(:cam1, 'admin', 'Cam-Secret-9931');
SELECT vms.set_camera_credential(:cam3, 'viewer', 'Gate-Secret-4417');
RESET ROLE;

-- The table holds ciphertext only; a data key exists, wrapped.
SELECT camera_id = :cam1 AS first,
       position(convert_to('Cam-Secret-9931', 'UTF8') IN password) = 0 AS password_hidden,
       position(convert_to('admin', 'UTF8') IN username) = 0 AS username_hidden,
       octet_length(password) = 9 + 12 + length('Cam-Secret-9931') + 16 AS gcm_layout,
       updated_by
  FROM vms.camera_credentials ORDER BY camera_id LIMIT 1;
SELECT purpose, subject_id, master_version, octet_length(wrapped) AS wrapped_bytes FROM vms.data_keys;
-- The same plaintext encrypts differently every time (fresh nonces).
SELECT vms._encrypt(1, '\x00', 't.c:1') <> vms._encrypt(1, '\x00', 't.c:1') AS fresh_nonce;

-- Only the recorder assigned to the camera reads it; the reveal is audited.
SET ROLE regress_rec;
SELECT username, password FROM vms.camera_credential(:cam1);
RESET ROLE;
SET ROLE regress_alice;
SELECT expect_error(format('SELECT vms.camera_credential(%s)', :cam1));
SELECT count(*) AS rows_alice_sees FROM vms.camera_credentials;
RESET ROLE;
SET ROLE regress_manager;
SELECT expect_error(format('SELECT vms.camera_credential(%s)', :cam1));
RESET ROLE;
SELECT audit_settle();
SELECT actor, action, camera_id = :cam1 AS cam1, outcome, details IS NULL OR details::text !~ 'Secret' AS no_secret
  FROM vms.audit_log WHERE action IN ('set_camera_credential', 'reveal_camera_credential') ORDER BY seq;

-- A ciphertext copied to another row or column, altered, or cut short, does not decrypt.
BEGIN;
UPDATE vms.camera_credentials SET password = (SELECT password FROM vms.camera_credentials WHERE camera_id = :cam3)
 WHERE camera_id = :cam1;
SET ROLE regress_rec;
SELECT expect_error(format('SELECT vms.camera_credential(%s)', :cam1)) AS other_row;
RESET ROLE;
ROLLBACK;
BEGIN;
UPDATE vms.camera_credentials SET password = username WHERE camera_id = :cam1;
SET ROLE regress_rec;
SELECT expect_error(format('SELECT vms.camera_credential(%s)', :cam1)) AS other_column;
RESET ROLE;
ROLLBACK;
SELECT password AS pw FROM vms.camera_credentials WHERE camera_id = :cam1 \gset
SELECT expect_error(format('SELECT vms._decrypt(%L::bytea, %L)', set_byte(:'pw'::bytea, 25, get_byte(:'pw'::bytea, 25) # 1), 'vms.camera_credentials.password:' || :cam1)) AS altered;
SELECT expect_error(format('SELECT vms._decrypt(%L::bytea, %L)', substring(:'pw'::bytea FROM 1 FOR 30), 'vms.camera_credentials.password:' || :cam1)) AS truncated;
SELECT expect_error(format('SELECT vms._decrypt(%L::bytea, %L)', '\x0200'::bytea, 'x')) AS garbage;
-- A wrapped data key moved or altered does not unwrap.
BEGIN;
UPDATE vms.data_keys SET wrapped = set_byte(wrapped, 20, get_byte(wrapped, 20) # 128);
SELECT expect_error(format('SELECT vms._decrypt(%L::bytea, %L)', :'pw', 'vms.camera_credentials.password:' || :cam1)) AS altered_key;
ROLLBACK;

-- Randomized: 2,000 mutations of a real ciphertext (bit flips, truncation,
-- extension, random bytes) never decrypt and never crash the server.
DO $$
DECLARE
    ct bytea := (SELECT password FROM vms.camera_credentials ORDER BY camera_id LIMIT 1);
    binding text := 'vms.camera_credentials.password:' || (SELECT min(camera_id) FROM vms.camera_credentials);
    m bytea;
    refused integer := 0;
    pos integer;
BEGIN
    PERFORM setseed(0.42);
    FOR i IN 1 .. 2000 LOOP
        pos := floor(random() * octet_length(ct))::int;
        m := CASE i % 4
               WHEN 0 THEN set_byte(ct, pos, get_byte(ct, pos) # (1 + floor(random() * 255))::int)
               WHEN 1 THEN substring(ct FROM 1 FOR pos)
               WHEN 2 THEN ct || decode(md5(random()::text), 'hex')
               ELSE decode(md5(random()::text) || md5(random()::text), 'hex')
             END;
        BEGIN
            PERFORM vms._decrypt(m, binding);
            RAISE EXCEPTION 'mutation % decrypted', i;
        EXCEPTION WHEN data_exception OR invalid_binary_representation THEN
            refused := refused + 1;
        END;
    END LOOP;
    RAISE NOTICE '% of 2000 mutations refused', refused;
END
$$;

-- Rotation: every data key rewrapped under version 2, no data row touched.
SELECT md5(string_agg(password::text || username::text, ',' ORDER BY camera_id)) AS before_rotation
  FROM vms.camera_credentials \gset
SET ROLE regress_carol;
SELECT expect_error('SELECT vms.rotate_master_key()');
RESET ROLE;
SET ROLE regress_manager;
SELECT old_version, new_version, data_keys_rewrapped FROM vms.rotate_master_key();
RESET ROLE;
SELECT master_version, rewrapped_at IS NOT NULL AS rewrapped FROM vms.data_keys;
SELECT md5(string_agg(password::text || username::text, ',' ORDER BY camera_id)) = :'before_rotation' AS data_rows_untouched
  FROM vms.camera_credentials;
SET ROLE regress_rec;
SELECT username, password FROM vms.camera_credential(:cam3);
RESET ROLE;
SELECT master_key_version FROM vms.key_status();

-- Bad input: clear errors, nothing changed.
SET ROLE regress_manager;
SELECT stmt, expect_error(stmt) FROM (VALUES
    ('SELECT vms.set_camera_credential(NULL, ''u'', ''p'')'),
    ('SELECT vms.set_camera_credential(999999, ''u'', ''p'')'),
    (format('SELECT vms.set_camera_credential(%s, NULL, ''p'')', :cam1)),
    (format('SELECT vms.set_camera_credential(%s, ''u'', NULL)', :cam1)),
    (format('SELECT vms.set_camera_credential(%s, ''u'', '''')', :cam1)),
    (format('SELECT vms.set_camera_credential(%s, ''u'', repeat(''x'', 1025))', :cam1)),
    ('SELECT vms.camera_credential(NULL)')
) AS t(stmt);
RESET ROLE;
SET ROLE regress_rec;
SELECT expect_error('SELECT vms.camera_credential(999999)');
RESET ROLE;
SELECT md5(string_agg(password::text || username::text, ',' ORDER BY camera_id)) = :'before_rotation' AS nothing_changed
  FROM vms.camera_credentials;
