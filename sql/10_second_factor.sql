-- Second factor (TOTP, RFC 6238), session elevation, client address rules
-- (their SQL side; logins are in test/t/007 and 008) and lockout admin.
\set VERBOSITY terse
SELECT clock_timestamp() AS file_started \gset

-- RFC 6238 appendix B: every published test vector, 8 digits.
WITH v(t, sha1, sha256, sha512) AS (VALUES
    (59::bigint,  '94287082', '46119246', '90693936'),
    (1111111109,  '07081804', '68084774', '25091201'),
    (1111111111,  '14050471', '67062674', '99943326'),
    (1234567890,  '89005924', '91819424', '93441116'),
    (2000000000,  '69279037', '90698825', '38618901'),
    (20000000000, '65353130', '77737706', '47863826'))
SELECT t,
       vms._totp_code(convert_to('12345678901234567890', 'UTF8'), to_timestamp(t), 8, 'SHA1') = sha1 AS sha1_ok,
       vms._totp_code(convert_to('12345678901234567890123456789012', 'UTF8'), to_timestamp(t), 8, 'SHA256') = sha256 AS sha256_ok,
       vms._totp_code(convert_to(repeat('1234567890', 6) || '1234', 'UTF8'), to_timestamp(t), 8, 'SHA512') = sha512 AS sha512_ok
  FROM v ORDER BY t;
-- RFC 4226 appendix D (HOTP, counter = step with a 1-second period), 6 digits.
SELECT array_agg(vms._totp_code(convert_to('12345678901234567890', 'UTF8'), to_timestamp(c), 6, 'SHA1', 1) ORDER BY c)
  FROM generate_series(0, 9) c;
SELECT public.expect_error($$ SELECT vms._totp_code('\x00'::bytea, now()) $$);
SELECT public.expect_error($$ SELECT vms._totp_code(convert_to('12345678901234567890', 'UTF8'), now(), 6, 'MD5') $$);
SELECT public.expect_error($$ SELECT vms._totp_code(convert_to('12345678901234567890', 'UTF8'), now(), 9) $$);

-- Users: a system manager (needs a second factor again from here on) and a
-- plain operator.
SELECT vms.set_second_factor_required('vms_system_manager', true);
SELECT vms.create_user('regress_sm', NULL, 'system manager with TOTP');
SELECT vms.add_member('vms_system_manager', 'regress_sm');
SELECT vms.create_user('regress_sm2', NULL, 'second system manager');
SELECT vms.add_member('vms_system_manager', 'regress_sm2');
SELECT vms.create_user('regress_op', NULL, 'operator');
SELECT vms.add_camera('totp-cam') AS cam \gset
SELECT vms.create_role('regress_viewers');
SELECT vms.grant_permission('regress_viewers', 'view_live', :cam) > 0 AS granted;
SELECT vms.add_member('regress_viewers', 'regress_op');

-- Not elevated: administration is refused (with a hint), viewing is not.
SET ROLE regress_sm;
SELECT vms.elevated_until() IS NULL AS not_elevated;
\set VERBOSITY default
SELECT vms.add_camera('refused');
\set VERBOSITY terse
SELECT vms.authorize('view_live', :cam) AS may_view, vms.authorize('manage_cameras', :cam) AS may_manage;
SELECT cardinality(vms.permitted_cameras('view_live')) > 0 AS lists_viewable,
       cardinality(vms.permitted_cameras('manage_cameras')) AS manageable_listed;
SELECT public.expect_error($$ SELECT vms.totp_verify('123456') $$);
-- Enrolment returns the otpauth URI; the secret is stored encrypted.
SELECT vms.totp_enroll() ~ '^otpauth://totp/pg_vms:regress_sm\?secret=[A-Z2-7]{32}&issuer=pg_vms&algorithm=SHA1&digits=6&period=30$' AS uri_ok;
RESET ROLE;
SELECT position(vms._decrypt(secret, 'vms.totp_secrets.secret:regress_sm') IN secret) = 0 AS stored_encrypted,
       confirmed_at IS NULL AS unconfirmed
  FROM vms.totp_secrets WHERE role_name = 'regress_sm';
SELECT vms._decrypt(secret, 'vms.totp_secrets.secret:regress_sm') AS sm_secret
  FROM vms.totp_secrets WHERE role_name = 'regress_sm' \gset
SELECT vms._totp_code(:'sm_secret', now()) AS code_now,
       vms._totp_code(:'sm_secret', now() + interval '30 seconds') AS code_next,
       lpad(((vms._totp_code(:'sm_secret', now())::int + 500000) % 1000000)::text, 6, '0') AS code_wrong \gset

-- Bad input is refused and not counted.
SET ROLE regress_sm;
SELECT public.expect_error($$ SELECT vms.totp_verify('12345') $$);
SELECT public.expect_error($$ SELECT vms.totp_verify('abcdef') $$);
SELECT public.expect_error($$ SELECT vms.totp_verify(NULL) $$);
-- A verification that rolls back elevates nothing and leaves the code unused.
BEGIN;
SELECT vms.totp_verify(:'code_now') IS NOT NULL AS verified_in_txn;
ROLLBACK;
SELECT vms.elevated_until() IS NULL AS still_not_elevated;
-- The right code elevates the session for vms.totp_elevation_time.
WITH v AS MATERIALIZED (SELECT vms.totp_verify(:'code_now') AS until)
SELECT until BETWEEN now() + interval '14 minutes' AND now() + interval '16 minutes' AS elevated_15min FROM v;
SELECT vms.elevated_until() > now() AS elevated;
SELECT vms.add_camera('allowed-after-totp') > 0 AS admin_works;
SELECT vms.authorize('manage_cameras', :cam) AS may_manage;
-- A used code cannot be used again.
SELECT public.expect_error($$ SELECT vms.totp_verify('$$ || :'code_now' || $$') $$);
-- Elevation belongs to the role that verified: another manager in this session is not elevated.
RESET ROLE;
SET ROLE regress_sm2;
SELECT public.expect_error($$ SELECT vms.add_camera('refused-2') $$);
RESET ROLE;
SELECT confirmed_at IS NOT NULL AS confirmed FROM vms.totp_secrets WHERE role_name = 'regress_sm';

-- Wrong codes count toward the login lockout (threshold 3); a locked role's
-- right code is refused like a wrong one, until a user manager unlocks it.
SET ROLE regress_sm;
SELECT public.expect_error($$ SELECT vms.totp_verify('$$ || :'code_wrong' || $$') $$) FROM generate_series(1, 3);
RESET ROLE;
SELECT kind, role, failures, locked_until > now() AS locked FROM vms.login_lockouts() WHERE role = 'regress_sm';
SET ROLE regress_sm;
SELECT public.expect_error($$ SELECT vms.totp_verify('$$ || :'code_next' || $$') $$);
RESET ROLE;
SELECT vms.unlock_login('regress_sm') AS entries_cleared;
SET ROLE regress_sm;
SELECT vms.totp_verify(:'code_next') IS NOT NULL AS verified_after_unlock;
-- Re-enrolment while elevated replaces the secret (unconfirmed again).
SELECT vms.totp_enroll() LIKE 'otpauth://%' AS re_enrolled;
RESET ROLE;
SELECT confirmed_at IS NULL AS unconfirmed_again, last_step = 0 AS fresh FROM vms.totp_secrets WHERE role_name = 'regress_sm';

-- A confirmed factor cannot be replaced with the password alone.
SET ROLE regress_sm2;
SELECT vms.totp_enroll() LIKE 'otpauth://%' AS enrolled;
RESET ROLE;
SELECT vms._decrypt(secret, 'vms.totp_secrets.secret:regress_sm2') AS sm2_secret
  FROM vms.totp_secrets WHERE role_name = 'regress_sm2' \gset
SELECT vms._totp_code(:'sm2_secret', now()) AS code2 \gset
UPDATE vms.totp_secrets SET confirmed_at = now() WHERE role_name = 'regress_sm2';
SET ROLE regress_sm2;
SELECT public.expect_error($$ SELECT vms.totp_enroll() $$);
RESET ROLE;
-- A verification rolled back to a savepoint elevates nothing and leaves the code unused.
BEGIN;
SAVEPOINT before_verify;
SET ROLE regress_sm2;
SELECT vms.totp_verify(:'code2') IS NOT NULL AS verified_in_savepoint;
ROLLBACK TO SAVEPOINT before_verify;
COMMIT;
SET ROLE regress_sm2;
SELECT vms.elevated_until() IS NULL AS not_elevated_after_rollback_to_savepoint;
RESET ROLE;
SELECT last_step = 0 AS code2_unused FROM vms.totp_secrets WHERE role_name = 'regress_sm2';
-- A second factor belongs to a login: not to a role one SETs (vms_system_manager is NOLOGIN).
SET ROLE vms_system_manager;
SELECT public.expect_error($$ SELECT vms.totp_enroll() $$);
SELECT public.expect_error($$ SELECT vms.totp_verify('123456') $$);
SELECT public.expect_error($$ SELECT vms.create_role('regress_via_set_role') $$);
RESET ROLE;
SELECT count(*) AS vms_system_manager_secrets FROM vms.totp_secrets WHERE role_name = 'vms_system_manager';

-- Reset (lost phone): needs manage_users over the user; unknown users are refused.
SET ROLE regress_op;
SELECT public.expect_error($$ SELECT vms.totp_reset('regress_sm2') $$);
SELECT public.expect_error($$ SELECT vms.set_second_factor_required('regress_viewers', true) $$);
SELECT public.expect_error($$ SELECT * FROM vms.login_lockouts() $$);
SELECT public.expect_error($$ SELECT vms.unlock_login('regress_sm') $$);
-- Operators' own permissions are untouched by the second-factor rule.
SELECT vms.authorize('view_live', :cam) AS op_may_view;
RESET ROLE;
SELECT public.expect_error($$ SELECT vms.totp_reset('regress_no_such_user') $$);
SELECT public.expect_error($$ SELECT vms.totp_reset(repeat('x', 100)) $$);
SELECT vms.totp_reset('regress_sm2');
SELECT count(*) AS sm2_rows FROM vms.totp_secrets WHERE role_name = 'regress_sm2';
SELECT public.expect_error($$ SELECT vms.totp_reset('regress_sm2') $$);
SELECT public.expect_error($$ SELECT vms.unlock_login(NULL, NULL) $$);
SELECT public.expect_error($$ SELECT vms.set_second_factor_required('regress_no_such_user', true) $$);

-- Making a VMS role need a second factor suspends its members' administration.
SELECT vms.grant_permission('regress_viewers', 'manage_cameras', :cam) > 0 AS granted;
SET ROLE regress_op;
SELECT vms.authorize('manage_cameras', :cam) AS op_may_manage_before;
RESET ROLE;
SELECT vms.set_second_factor_required('regress_viewers', true);
SET ROLE regress_op;
SELECT vms.authorize('manage_cameras', :cam) AS op_may_manage_after, vms.authorize('view_live', :cam) AS op_may_view;
RESET ROLE;
-- Grants on a camera group, checked by vms._covers, are held back too.
SELECT vms.add_camera_group('regress_2fa_group') > 0 AS group_added;
SELECT vms.grant_permission('regress_viewers', 'manage_cameras', camera_group => 'regress_2fa_group') > 0 AS granted;
SET ROLE regress_op;
SELECT public.expect_error($$ SELECT vms.add_camera('regress-2fa-cam', camera_group => 'regress_2fa_group') $$);
RESET ROLE;
SELECT vms.set_second_factor_required('regress_viewers', false);
SET ROLE regress_op;
SELECT vms.add_camera('regress-2fa-cam', camera_group => 'regress_2fa_group') > 0 AS added_without_the_rule;
RESET ROLE;
SELECT vms.remove_camera(id) FROM vms.cameras WHERE name = 'regress-2fa-cam';
SELECT vms.remove_camera_group('regress_2fa_group');

-- Client address rules: bad input changes nothing.
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_op', '10.0.0.300/8') $$);
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_op', '10.0.0.1/8') $$);
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_op', '10.0.0.0') $$);
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_op', 'not-a-network/8') $$);
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_op', '2001:db8::/129') $$);
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_op', repeat('1', 100)) $$);
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_no_such_user', '10.0.0.0/8') $$);
SELECT public.expect_error($$ SELECT vms.allow_client_address('vms_user', '10.0.0.0/8') $$);
SELECT public.expect_error($$ SELECT vms.allow_client_address(NULL, '10.0.0.0/8') $$);
SELECT count(*) AS rules FROM vms.client_address_rules;
SELECT vms.allow_client_address('regress_op', '10.1.0.0/16', 'control room') > 0 AS added;
SELECT vms.allow_client_address('regress_viewers', '2001:db8::/32') > 0 AS added_v6;
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_op', '10.1.0.0/16') $$);
SELECT role, network, description FROM vms.client_address_rules ORDER BY role, network;
-- Only who may manage the principal may restrict it.
SET ROLE regress_op;
SELECT public.expect_error($$ SELECT vms.allow_client_address('regress_sm', '10.0.0.0/8') $$);
SELECT count(*) AS visible_rules FROM vms.client_address_rules;
RESET ROLE;
SELECT public.expect_error($$ SELECT vms.remove_client_address('regress_op', '10.2.0.0/16') $$);
SELECT vms.remove_client_address('regress_op', '10.1.0.0/16');
SELECT vms.remove_client_address('regress_viewers', '2001:db8::/32');
SELECT count(*) AS rules_left FROM vms.client_address_rules;
SELECT vms.reload_client_addresses() AS published;

-- Everything above is in the audit log (denials through the queue).
SELECT public.audit_settle();
SELECT action, outcome, count(*) FROM vms.audit_log
 WHERE action IN ('totp_enroll', 'totp_verify', 'totp_reset', 'unlock_login', 'set_second_factor_required',
                  'allow_client_address', 'remove_client_address', 'login_lockout')
   AND logged_at >= :'file_started'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) = 0 AS no_codes_in_audit FROM vms.audit_log
 WHERE details::text LIKE '%' || :'code_now' || '%' OR details::text LIKE '%' || :'code_next' || '%';

-- Clean up; the files after this one run without the second-factor rule again.
SELECT vms.drop_user('regress_sm');
SELECT vms.drop_user('regress_sm2');
SELECT vms.drop_user('regress_op');
SELECT vms.drop_role('regress_viewers');
DELETE FROM vms.totp_secrets;
SELECT vms.set_second_factor_required('vms_system_manager', false);
