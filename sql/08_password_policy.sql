-- Password policy: every rule refuses what it should (and nothing changes),
-- switching a rule off lets the password through, the history lives and
-- dies with the transaction that changes the password, and the password API
-- (vms.change_password, vms.set_password, vms.check_password) keeps
-- passwords out of statements, errors, the audit log and the server log.
\set VERBOSITY terse
-- The settings and their built-in defaults.
SELECT name, boot_val, context FROM pg_settings WHERE name LIKE 'vms.password%' ORDER BY name;
-- This file states every setting it relies on (the test instance may differ).
SET vms.password_min_length = 12;
SET vms.password_min_classes = 3;
SET vms.password_reject_username = on;
SET vms.password_cracklib_dictionary = '/var/cache/cracklib/cracklib_dict';
SET vms.password_common_list = '/usr/share/john/password.lst';
SET vms.password_history = 3;
SET vms.password_allow_hashed = off;

CREATE FUNCTION pg_temp.history(role text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM vms.password_history h WHERE h.role_name = role;
$$;
CREATE FUNCTION pg_temp.try_password(role text, pw text) RETURNS text LANGUAGE sql AS $$
    SELECT expect_error(format('ALTER ROLE %I PASSWORD %L', role, pw));
$$;

-- CREATE ROLE goes through the policy too, and records the first password.
SELECT expect_error($$CREATE ROLE regress_pw LOGIN PASSWORD 'short'$$) AS create_weak;
SELECT count(*) AS not_created FROM pg_roles WHERE rolname = 'regress_pw';
CREATE ROLE regress_pw LOGIN PASSWORD 'Tulip-Orbit-47';
SELECT rolpassword LIKE 'SCRAM-SHA-256$4096:%' AS scram_stored FROM pg_authid WHERE rolname = 'regress_pw';
SELECT pg_temp.history('regress_pw') AS history_after_create;

-- Each rule, on ALTER ROLE ... PASSWORD, refused with 22023 and the rule named.
SELECT rule, pw_len, pg_temp.try_password('regress_pw', pw) AS result FROM (VALUES
    ('length',      'Ab1-xyz'),
    ('length',      'Ab1-xyzuvwq'),
    ('classes',     'abcdefghijklmnop'),
    ('classes',     'abcdefgh12345678'),
    ('username',    'My-regress_pw-2024'),
    ('username',    'My-REGRESS_PW-2024'),
    ('cracklib',    'Butterfly123'),
    ('oversized',   repeat('Ab1-', 257)),
    ('empty',       '')
) AS t(rule, pw), LATERAL (SELECT octet_length(pw) AS pw_len) l;
-- The client gets the rule and a hint; cracklib's own reason goes to the
-- server log only (errdetail_log), and no log line shows the statement.
\set VERBOSITY default
ALTER ROLE regress_pw PASSWORD 'Butterfly123';
\set VERBOSITY terse
-- The common list, with the length, class and cracklib rules out of the way.
SET vms.password_min_length = 6;
SET vms.password_min_classes = 1;
SET vms.password_cracklib_dictionary = '';
SELECT pw, pg_temp.try_password('regress_pw', pw) AS result FROM (VALUES
    ('trustno1'), ('TrustNo1'), ('iloveyou'), ('ILoveYou'), ('trustme77')) AS t(pw);
-- trustme77 is on no list: it became the password.  No refusal changed anything.
SELECT pg_temp.history('regress_pw') AS history_now;
SET vms.password_min_length = 12;
SET vms.password_min_classes = 3;
SET vms.password_cracklib_dictionary = '/var/cache/cracklib/cracklib_dict';

-- Switching a rule off lets its password through.
SET vms.password_min_length = 0;
SELECT pg_temp.try_password('regress_pw', 'Ab1-xyz') AS length_off;
SET vms.password_min_length = 12;
SET vms.password_min_classes = 1;
SELECT pg_temp.try_password('regress_pw', 'qzvbnrtplkwxjmhd') AS classes_off;
SET vms.password_min_classes = 3;
SET vms.password_reject_username = off;
SELECT pg_temp.try_password('regress_pw', 'My-REGRESS_PW-2024') AS username_off;
SET vms.password_reject_username = on;
SET vms.password_cracklib_dictionary = '';
SELECT pg_temp.try_password('regress_pw', 'Butterfly123') AS cracklib_off;
SET vms.password_cracklib_dictionary = '/var/cache/cracklib/cracklib_dict';
SET vms.password_min_length = 6;
SET vms.password_min_classes = 1;
SET vms.password_cracklib_dictionary = '';
SET vms.password_common_list = '';
SELECT pg_temp.try_password('regress_pw', 'TrustNo1') AS common_list_off;
SET vms.password_common_list = '/usr/share/john/password.lst';
SET vms.password_cracklib_dictionary = '/var/cache/cracklib/cracklib_dict';
SET vms.password_min_length = 12;
SET vms.password_min_classes = 3;

-- Bad settings are refused.
SELECT expect_error($$SET vms.password_cracklib_dictionary = 'cracklib_dict'$$) AS relative_path;
SELECT expect_error($$SET vms.password_cracklib_dictionary = '/nonexistent/dict'$$) AS missing_dictionary;
SELECT expect_error($$SET vms.password_common_list = '/nonexistent/list.txt'$$) AS missing_list;
SELECT expect_error($$SET vms.password_min_classes = 5$$) AS too_many_classes;

-- History: the last 3 passwords (vms.password_history = 3) may not come back;
-- the 4th back may.  The table keeps only 3 per role.
ALTER ROLE regress_pw PASSWORD 'Mango#Vector-82';
ALTER ROLE regress_pw PASSWORD 'Quartz!Lake-19';
ALTER ROLE regress_pw PASSWORD 'Violet*Crane-63';
ALTER ROLE regress_pw PASSWORD 'Amber+Pixel-55';
SELECT pg_temp.history('regress_pw') AS kept;
SELECT pw, pg_temp.try_password('regress_pw', pw) AS result FROM (VALUES
    ('Amber+Pixel-55'), ('Violet*Crane-63'), ('Quartz!Lake-19')) AS t(pw);
SELECT pg_temp.try_password('regress_pw', 'Mango#Vector-82') AS fourth_back;
SELECT pg_temp.history('regress_pw') AS kept;
-- Stored as salted SCRAM verifiers (as strong as pg_authid), never plain.
SELECT count(*) FILTER (WHERE verifier LIKE 'SCRAM-SHA-256$4096:%') AS scram,
       count(*) FILTER (WHERE verifier LIKE '%Mango%' OR verifier LIKE '%Amber%') AS plain,
       count(DISTINCT split_part(split_part(verifier, '$', 2), ':', 2)) AS distinct_salts
  FROM vms.password_history WHERE role_name = 'regress_pw';
-- With the history off, reuse is allowed (the current password too).
SET vms.password_history = 0;
SELECT pg_temp.try_password('regress_pw', 'Mango#Vector-82') AS history_off;
SET vms.password_history = 3;

-- A rolled-back ALTER ROLE leaves no history (nor does a rolled-back savepoint).
CREATE TEMP TABLE before_rollback AS
    SELECT string_agg(verifier, ',' ORDER BY id) AS v FROM vms.password_history WHERE role_name = 'regress_pw';
BEGIN;
ALTER ROLE regress_pw PASSWORD 'Cobalt~Fern-31';
SELECT pg_temp.history('regress_pw') AS inside_transaction;
ROLLBACK;
BEGIN;
SAVEPOINT s;
ALTER ROLE regress_pw PASSWORD 'Hazel=Comet-74';
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT (SELECT string_agg(verifier, ',' ORDER BY id) FROM vms.password_history WHERE role_name = 'regress_pw')
       = (SELECT v FROM before_rollback) AS history_unchanged;
-- So both are still new passwords.
SELECT pg_temp.try_password('regress_pw', 'Cobalt~Fern-31') AS cobalt, pg_temp.try_password('regress_pw', 'Hazel=Comet-74') AS hazel;

-- A password sent already hashed (psql's \password does that) cannot be
-- checked: refused by default, allowed by vms.password_allow_hashed, and then
-- recorded.  MD5 hashes are refused always; so is md5 password_encryption.
SELECT rolpassword AS verifier FROM pg_authid WHERE rolname = 'regress_pw' \gset
SELECT pg_temp.try_password('regress_pw', :'verifier') AS hashed_default;
SELECT pg_temp.try_password('regress_pw', 'md5' || md5('Zephyr-Kiln-90regress_pw')) AS md5_hash;
SET vms.password_allow_hashed = on;
SELECT pg_temp.try_password('regress_pw', :'verifier') AS hashed_allowed;
SELECT verifier = :'verifier' AS recorded FROM vms.password_history WHERE role_name = 'regress_pw' ORDER BY id DESC LIMIT 1;
SELECT pg_temp.try_password('regress_pw', 'md5' || md5('Zephyr-Kiln-90regress_pw')) AS md5_hash_allowed;
SET vms.password_allow_hashed = off;
SET password_encryption = 'md5';
SELECT pg_temp.try_password('regress_pw', 'Zephyr-Kiln-90') AS md5_encryption;
RESET password_encryption;
SELECT rolpassword LIKE 'SCRAM-SHA-256$%' AS still_scram FROM pg_authid WHERE rolname = 'regress_pw';

-- vms.create_user: a weak password creates nothing; a good one goes through
-- the verifier path (the hook sees the plaintext, then accepts exactly the
-- verifier pg_vms made, although pre-hashed passwords are refused).
CREATE TEMP TABLE counts AS SELECT (SELECT count(*) FROM pg_roles) AS roles, (SELECT count(*) FROM vms.principals) AS principals;
SELECT expect_error($$SELECT vms.create_user('regress_pw_u', 'Butterfly123')$$) AS weak;
SELECT expect_error($$SELECT vms.create_user('regress_pw_u', 'Regress_PW_U-2024')$$) AS with_name;
SELECT (SELECT count(*) FROM pg_roles) = roles AND (SELECT count(*) FROM vms.principals) = principals AS nothing_created FROM counts;
SELECT vms.create_user('regress_pw_u', 'Saffron-Dune-12');
SELECT vms.create_user('regress_pw_v', 'Nimbus-Quill-66');
SELECT vms.create_user('regress_pw_lock', 'Garnet-Sprout-8');
SELECT h.verifier = a.rolpassword AS history_holds_the_stored_verifier
  FROM vms.password_history h JOIN pg_authid a ON a.rolname = h.role_name WHERE h.role_name = 'regress_pw_u';
-- The announced verifier is good for one statement only.
SELECT rolpassword AS u_verifier FROM pg_authid WHERE rolname = 'regress_pw_u' \gset
SELECT pg_temp.try_password('regress_pw_u', :'u_verifier') AS replayed_verifier;

-- vms.change_password: the caller's own password, with the current one.
SET ROLE regress_pw_u;
SELECT expect_error($$SELECT vms.change_password('Wrong-Guess-11', 'Indigo^Reef-28')$$) AS wrong_current;
SELECT expect_error($$SELECT vms.change_password('Saffron-Dune-12', 'Butterfly123')$$) AS weak_new;
SELECT expect_error($$SELECT vms.change_password('Saffron-Dune-12', 'Saffron-Dune-12')$$) AS same_again;
SELECT expect_error($$SELECT vms.change_password('Saffron-Dune-12', NULL)$$) AS null_new;
SELECT expect_error(format('SELECT vms.change_password(%L, %L)', 'Saffron-Dune-12', repeat('Ab1-', 300))) AS oversized_new;
SELECT expect_error(format('SELECT vms.change_password(%L, %L)', repeat('Ab1-', 300), 'Indigo^Reef-28')) AS oversized_current;
SELECT vms.change_password('Saffron-Dune-12', 'Indigo^Reef-28');
-- A plain VMS user may also use ALTER ROLE on its own password here: the
-- hook writes the history as the owner (the user has no access to the table).
ALTER ROLE regress_pw_u PASSWORD 'Zephyr-Kiln-90';
SELECT expect_error($$SELECT count(*) FROM vms.password_history$$) AS user_reads_history;
-- Permission: setting someone else's password needs manage_users.
SELECT expect_error($$SELECT vms.set_password('regress_pw_v', 'Indigo^Reef-28')$$) AS set_without_manage_users;
SELECT expect_error($$SELECT vms.check_password('regress_pw_v', 'Indigo^Reef-28')$$) AS check_without_manage_users;
RESET ROLE;
SELECT vms._password_matches('regress_pw_u', 'Zephyr-Kiln-90') AS new_password_works,
       vms._password_matches('regress_pw_u', 'Saffron-Dune-12') AS old_password_gone;
SELECT pg_temp.history('regress_pw_u') AS u_history;
SELECT pg_temp.try_password('regress_pw_u', 'Indigo^Reef-28') AS previous_via_alter;

-- A wrong current password, no password at all, or a locked-out role: one
-- error, no oracle.  Three wrong guesses lock regress_pw_lock (login lockout),
-- after which even the right password is refused.
SELECT rolpassword AS lock_verifier FROM pg_authid WHERE rolname = 'regress_pw_lock' \gset
SET ROLE regress_pw_lock;
SELECT expect_error($$SELECT vms.change_password('Wrong-Guess-1', 'Indigo^Reef-28')$$) AS wrong_1;
SELECT expect_error($$SELECT vms.change_password('Wrong-Guess-2', 'Indigo^Reef-28')$$) AS wrong_2;
SELECT expect_error($$SELECT vms.change_password('Wrong-Guess-3', 'Indigo^Reef-28')$$) AS wrong_3;
SELECT expect_error($$SELECT vms.change_password('Garnet-Sprout-8', 'Indigo^Reef-28')$$) AS right_but_locked;
RESET ROLE;
SELECT rolpassword = :'lock_verifier' AS unchanged_while_locked FROM pg_authid WHERE rolname = 'regress_pw_lock';
SELECT vms.unlock_login('regress_pw_lock') > 0 AS unlocked;

-- vms.set_password: an administrator sets a VMS user's password.
SELECT vms.set_password('regress_pw_v', 'Hazel=Comet-74');
SELECT vms._password_matches('regress_pw_v', 'Hazel=Comet-74') AS set_works;
-- An administrator's reset does not consult the user's history: it would
-- tell the administrator whether a guess is one of the user's recent
-- passwords (try, roll back, repeat).  The user's own change does consult it.
SELECT vms.set_password('regress_pw_v', 'Nimbus-Quill-66') IS NOT NULL AS reset_to_a_recent_password_accepted;
SELECT vms.set_password('regress_pw_v', 'Hazel=Comet-74') IS NOT NULL AS and_back;
SELECT stmt, expect_error(stmt) AS result FROM (VALUES
    ($$SELECT vms.set_password('regress_pw_v', 'short')$$),
    ($$SELECT vms.set_password('regress_pw_v', 'Regress_PW_V-2024')$$),
    ($$SELECT vms.set_password('regress_pw_v', '')$$),
    ($$SELECT vms.set_password('regress_pw_v', NULL)$$),
    ($$SELECT vms.set_password('regress_no_such_user', 'Hazel=Comet-74')$$),
    ($$SELECT vms.set_password('regress_pw', 'Hazel=Comet-74')$$),
    ($$SELECT vms.set_password(NULL, 'Hazel=Comet-74')$$),
    ($$SELECT vms.set_password(repeat('u', 64), 'Hazel=Comet-74')$$),
    ($$SELECT vms.set_password('regress_pw_v', repeat('Ab1-', 257))$$)
) AS t(stmt);
SELECT vms._password_matches('regress_pw_v', 'Hazel=Comet-74') AS unchanged_by_bad_input;
-- A manager with manage_users, but not over the roles the target holds.
SELECT vms.create_role('regress_pw_admins');
SELECT vms.grant_permission('regress_pw_admins', 'manage_users') > 0 AS granted;
SELECT vms.create_role('regress_pw_guards');
SELECT vms.grant_permission('regress_pw_guards', 'view_live') > 0 AS granted;
SELECT vms.add_member('regress_pw_admins', 'regress_pw_u');
SELECT vms.add_member('regress_pw_guards', 'regress_pw_v');
SET ROLE regress_pw_u;
SELECT regexp_replace(expect_error($$SELECT vms.set_password('regress_pw_v', 'Cobalt~Fern-31')$$), 'grant [0-9]+', 'grant N') AS target_holds_more;
SELECT expect_error($$SELECT vms.set_password('regress_pw_u', 'Cobalt~Fern-31')$$) AS own_password;
SELECT vms.set_password('regress_pw_lock', 'Cobalt~Fern-31');
SELECT * FROM vms.check_password('regress_pw_lock', 'Butterfly123');
SELECT * FROM vms.check_password('regress_pw_lock', 'Cobalt~Fern-31');
RESET ROLE;
SELECT vms._password_matches('regress_pw_lock', 'Cobalt~Fern-31') AS set_by_manager;

-- Neither password reached the audit log; the actions did.
SELECT audit_settle();
SELECT action, outcome, details->>'sqlstate' AS sqlstate, count(*)
  FROM vms.audit_log WHERE action IN ('change_password', 'set_password')
   AND (target LIKE 'regress\_pw%' OR target IN ('regress_no_such_user', repeat('u', 64)) OR target IS NULL)
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT count(*) AS audit_entries_with_a_password FROM vms.audit_log
 WHERE details::text ~ '(Saffron|Indigo|Zephyr|Hazel|Nimbus|Cobalt|Garnet|Butterfly|Wrong-Guess|Ab1-)';

-- Nor the server log: with every statement logged and log lines sent here,
-- the statements that pass passwords are hidden.
SET log_statement = 'all';
SET client_min_messages = log;
SELECT vms.set_password('regress_pw_v', 'Quartz!Lake-19');
SELECT count(*) AS rules FROM vms.check_password('regress_pw_v', 'Quartz!Lake-19');
SET ROLE regress_pw_v;
SELECT vms.change_password('Quartz!Lake-19', 'Tulip-Orbit-47');
RESET ROLE;
RESET client_min_messages;
RESET log_statement;

-- Outside the VMS database the content rules apply, and the current
-- password (pg_authid is shared) may not be set again, but the history table
-- is neither read nor written; VMS users' passwords are refused there (they
-- would escape the history).
SELECT string_agg(verifier, ',' ORDER BY id) AS history_before FROM vms.password_history WHERE role_name = 'regress_pw' \gset
CREATE DATABASE regress_pw_other;
\c regress_pw_other
\set VERBOSITY terse
SET vms.password_history = 3;
SET vms.password_min_length = 12;
ALTER ROLE regress_pw PASSWORD 'short';
ALTER ROLE regress_pw_u PASSWORD 'Violet*Crane-63';
ALTER ROLE regress_pw PASSWORD 'Amber+Pixel-55';
ALTER ROLE regress_pw PASSWORD 'Amber+Pixel-55';
\c contrib_regression
\set VERBOSITY terse
DROP DATABASE regress_pw_other;
SELECT string_agg(verifier, ',' ORDER BY id) = :'history_before' AS history_untouched_by_other_db
  FROM vms.password_history WHERE role_name = 'regress_pw';

-- DROP ROLE forgets the role's history (here, and through vms.drop_user).
DROP ROLE regress_pw;
SELECT count(*) AS after_drop FROM vms.password_history WHERE role_name = 'regress_pw';
SELECT vms.drop_user('regress_pw_u');
SELECT vms.drop_user('regress_pw_v');
SELECT vms.drop_user('regress_pw_lock');
SELECT vms.drop_role('regress_pw_admins');
SELECT vms.drop_role('regress_pw_guards');
SELECT count(*) AS history_left FROM vms.password_history WHERE role_name LIKE 'regress_pw%';
