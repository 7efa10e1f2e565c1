-- As the superuser: install pg_vms and make 'manager' a VMS system manager.
CREATE EXTENSION pg_vms CASCADE;
-- No TOTP prompt for the scripted system manager here (docs/authentication.md).
SELECT vms.set_second_factor_required('vms_system_manager', false);
SELECT vms.create_user('manager', 'Kestrel-Lake-71', 'Site manager');
SELECT vms.add_member('vms_system_manager', 'manager');
SELECT vms.create_user('recorder1', 'Heron-Field-72', 'Recording server 1');
SELECT vms.add_member('vms_recorder', 'recorder1');
SELECT vms.create_user('auditor', 'Osprey-Ridge-73', 'Internal audit');
SELECT vms.add_member('vms_auditor', 'auditor');
SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = 'manager';
