\set ON_ERROR_STOP 0
SELECT vms.grant_permission('vault_watch', 'view_recorded');
SELECT vms.add_member('vms_system_manager', 'bob');
SELECT count(*) AS audit_rows_bob_can_read FROM vms.audit_log;
