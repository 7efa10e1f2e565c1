-- As 'auditor' (vms_auditor).
SELECT seq, logged_at::timestamp(0) AS at, actor, action, target, outcome
  FROM vms.audit_log ORDER BY seq;
SELECT * FROM vms.verify_audit();
