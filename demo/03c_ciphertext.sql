-- Even the superuser sees only AES-256-GCM ciphertext in the table.
SELECT camera_id, encode(substring(password FROM 1 FOR 24), 'hex') || '...' AS password_stored, updated_by
  FROM vms.camera_credentials;
SELECT * FROM vms.key_status();
