-- The audit log: who did what, append-only, and a hash chain that names the
-- first entry a superuser changed, deleted, reordered or cut off.
\set VERBOSITY terse
SELECT audit_settle();
SELECT ok, entries_checked > 0 AS has_entries, first_broken_seq, problem FROM vms.verify_audit();
-- (verify_audit's own entry may still wait for the worker: not counted.)
SELECT count(*) AS pending_left FROM vms.audit_pending WHERE action <> 'verify_audit';

-- Actor (the role acted as) and session user (the login) are both kept;
-- denied calls are there although they rolled back.
SELECT actor, session_user_name, action, target, outcome, details->>'sqlstate' AS sqlstate
  FROM vms.audit_log WHERE actor = 'regress_carol' ORDER BY seq;
SELECT action, outcome, camera_id IS NOT NULL AS has_camera
  FROM vms.audit_log WHERE actor = 'regress_rec' AND outcome = 'ok' ORDER BY seq LIMIT 3;
-- pg_regress connects over a Unix socket: no client address.
SELECT count(*) AS entries_with_address FROM vms.audit_log WHERE client_addr IS NOT NULL;

-- Reading the log needs view_audit: vms_auditor has it with scope all.
SELECT vms.create_user('regress_auditor', 'Auditor-pw-1-Zephyr');
SELECT vms.add_member('vms_auditor', 'regress_auditor');
SET ROLE regress_auditor;
SELECT count(*) > 0 AS auditor_reads_log FROM vms.audit_log;
SELECT ok FROM vms.verify_audit();
RESET ROLE;
SET ROLE regress_bob;
SELECT count(*) AS bob_reads FROM vms.audit_log;
SELECT expect_error('SELECT vms.verify_audit()');
RESET ROLE;
-- view_audit on one camera shows that camera's entries only.
SELECT vms.create_role('regress_cam_auditors');
SELECT vms.grant_permission('regress_cam_auditors', 'view_audit', camera_id => 1) > 0 AS granted;
SELECT vms.create_user('regress_cam_auditor', 'CamAuditor-pw-1-Zephyr');
SELECT vms.add_member('regress_cam_auditors', 'regress_cam_auditor');
SET ROLE regress_cam_auditor;
SELECT array_agg(DISTINCT camera_id) AS cameras_seen FROM vms.audit_log;
SELECT expect_error('SELECT vms.verify_audit()');
RESET ROLE;

-- Append-only, for everyone, the superuser included.
SELECT expect_error('UPDATE vms.audit_log SET outcome = ''ok'' WHERE seq = 1');
SELECT expect_error('DELETE FROM vms.audit_log WHERE seq = 1');
SELECT expect_error('TRUNCATE vms.audit_log');
SELECT expect_error('UPDATE vms.audit_anchor SET seq = 5');
SET ROLE regress_manager;
SELECT expect_error('DELETE FROM vms.audit_log');
SELECT expect_error('INSERT INTO vms.audit_pending (logged_at, action, outcome) VALUES (now(), ''x'', ''ok'')');
RESET ROLE;

-- TRUNCATE is refused on each partition too.
SELECT expect_error(format('TRUNCATE vms.%I', (SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                                               WHERE i.inhparent = 'vms.audit_log'::regclass ORDER BY 1 LIMIT 1)));

-- A long target is cut between whole characters, never inside one.
SET ROLE regress_bob;
SELECT expect_error(format('SELECT vms.add_camera(%L)', repeat('é', 190))) ~ '^22001' AS too_long;
RESET ROLE;
SELECT audit_settle();
SELECT octet_length(target) <= 255 AS fits, length(target) AS characters, target = repeat('é', length(target)) AS whole_characters
  FROM vms.audit_log WHERE action = 'add_camera' AND actor = 'regress_bob' AND target LIKE 'é%';

-- An entry the worker cannot store as given is kept as a damaged entry, not lost.
SELECT vms._audit_store_queued(now(), 'regress_bob', 'regress_bob', 'fe80::1%eth0', 'add_camera', NULL,
                               'x', 'denied', '{"sqlstate": "42501"}', current_database());
SELECT action, target, outcome, details->>'client_addr' AS client_addr
  FROM vms.audit_pending WHERE action = 'audit_entry_damaged';
SELECT audit_settle();

-- Anyone can recompute an entry's hash from docs/audit.md with plain SQL.
CREATE FUNCTION pg_temp.f(x text) RETURNS bytea LANGUAGE sql AS $$
    SELECT CASE WHEN x IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(x, 'UTF8'))) || convert_to(x, 'UTF8') END
$$;
CREATE FUNCTION pg_temp.us(t timestamptz) RETURNS bytea LANGUAGE sql AS $$
    SELECT int8send(((extract(epoch FROM t) - 946684800) * 1000000)::int8)
$$;
SELECT sha256(pg_temp.f('pg_vms audit v1') || p.hash || int8send(e.seq) || pg_temp.us(e.sealed_at)
              || pg_temp.us(e.logged_at) || pg_temp.f(e.actor) || pg_temp.f(e.session_user_name)
              || pg_temp.f(host(e.client_addr)) || pg_temp.f(e.action) || pg_temp.f(e.camera_id::text)
              || pg_temp.f(e.target) || pg_temp.f(e.outcome) || pg_temp.f(e.details::text)) = e.hash
       AS independent_hash_matches
  FROM vms.audit_log e JOIN vms.audit_log p ON p.seq = e.seq - 1
 WHERE e.seq = (SELECT max(seq) FROM vms.audit_log WHERE camera_id IS NOT NULL AND details IS NOT NULL);

-- Tampering.  A superuser switches the triggers off; each case is rolled back.
SELECT audit_settle();
SELECT max(seq) AS last FROM vms.audit_log \gset
SET session_replication_role = replica;
-- an edited entry
BEGIN;
UPDATE vms.audit_log SET outcome = 'tampered' WHERE seq = 5;
SELECT ok, first_broken_seq, problem FROM vms.verify_audit();
ROLLBACK;
-- a deleted entry
BEGIN;
DELETE FROM vms.audit_log WHERE seq = 7;
SELECT ok, first_broken_seq, problem FROM vms.verify_audit();
ROLLBACK;
-- two entries swapped
BEGIN;
UPDATE vms.audit_log SET seq = -9 WHERE seq = 9;
UPDATE vms.audit_log SET seq = 9 WHERE seq = 10;
UPDATE vms.audit_log SET seq = 10 WHERE seq = -9;
SELECT ok, first_broken_seq, problem FROM vms.verify_audit();
ROLLBACK;
-- the newest entries cut off (the rest is a valid, shorter chain)
BEGIN;
DELETE FROM vms.audit_log WHERE seq > :last - 2;
SELECT ok, first_broken_seq - :last AS first_broken_from_end, problem ~ 'missing from the end' AS names_truncation
  FROM vms.verify_audit();
ROLLBACK;
-- a forged entry appended
BEGIN;
INSERT INTO vms.audit_log (seq, sealed_at, logged_at, action, outcome, hash)
VALUES (:last + 1, now(), now(), 'forged', 'ok', sha256('forged'));
SELECT ok, first_broken_seq - :last AS first_broken_from_end, problem ~ 'does not match its hash' AS names_forgery
  FROM vms.verify_audit();
ROLLBACK;
-- a whole entry rewritten, including the stored hash of that entry only
BEGIN;
UPDATE vms.audit_log SET actor = 'someone_else',
       hash = vms.audit_hash((SELECT hash FROM vms.audit_log WHERE seq = 11), 12, sealed_at, logged_at,
                             'someone_else', session_user_name, client_addr, action, camera_id, target, outcome, details)
 WHERE seq = 12;
SELECT ok, first_broken_seq, problem FROM vms.verify_audit();
ROLLBACK;
RESET session_replication_role;
SELECT ok, first_broken_seq, problem FROM vms.verify_audit();

-- Verification itself is audited.
SELECT audit_settle();
SELECT count(*) >= 2 AS verifications_audited FROM vms.audit_log WHERE action = 'verify_audit';
