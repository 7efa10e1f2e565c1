-- As 'manager': evidence export.  The signing certificate comes from the
-- site's evidence CA (demo/run.sh makes one with the openssl CLI); its key
-- stays on the export station, protected by a passphrase.
SELECT vms.set_export_profile('court', :'signer_cert', key_needs_passphrase => true,
                              description => 'Evidence for the court, signed by the export station');
SELECT name, key_needs_passphrase, formats, encryption_required, encode(signer_sha256, 'hex') AS signer_sha256
  FROM vms.export_profiles;

-- The neighbour's window is in the entrance camera's view: a permanent black zone.
SELECT vms.add_privacy_zone(1, 'neighbour window', '[[0.62,0.08],[0.95,0.08],[0.95,0.42],[0.62,0.42]]', 'black') AS zone_id;

-- Investigators may export the entrance camera, up to 30 days back.
SELECT vms.create_role('investigators', 'Incident investigation');
SELECT vms.grant_permission('investigators', p, camera_id => 1, recorded_window => '30 days')
  FROM unnest(ARRAY['view_recorded', 'export']) p;
SELECT vms.create_user('carol', 'Lark-Meadow-76');
SELECT vms.add_member('investigators', 'carol');
