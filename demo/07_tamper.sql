-- A superuser bypasses the append-only trigger and rewrites bob's denial.
SET session_replication_role = replica;
UPDATE vms.audit_log SET outcome = 'ok' WHERE actor = 'bob' AND outcome = 'denied';
RESET session_replication_role;
SELECT * FROM vms.verify_audit();
