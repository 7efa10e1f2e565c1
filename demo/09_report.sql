-- As 'auditor': the hardening report (docs/authentication.md).
SELECT check_name, status, detail FROM vms.security_report() ORDER BY status DESC, check_name;
