-- As 'manager', after the superuser made system managers need a second factor.
\set ON_ERROR_STOP 0
-- Administration waits for the second factor (viewing does not).
SELECT vms.add_camera('loading-dock');
\set ON_ERROR_STOP 1
-- Enrol: the URI goes to an authenticator app (here: to oathtool).
SELECT vms.totp_enroll() AS enrolment_uri \gset
\echo :enrolment_uri
