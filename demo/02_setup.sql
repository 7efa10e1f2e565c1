-- As 'manager' (vms_system_manager, not a superuser).
SELECT vms.add_camera_group('lobby', 'Lobby cameras');
SELECT vms.add_camera('entrance', 'rtsp://192.0.2.10/stream1', 'Front door', 'Lobby', camera_group => 'lobby');
SELECT vms.add_camera('reception', 'rtsp://192.0.2.11/stream1', camera_group => 'lobby');
SELECT vms.add_camera('vault', 'rtsp://192.0.2.20/stream1', 'Vault corridor', 'Basement');
SELECT vms.assign_recorder(id, 'recorder1') FROM vms.cameras ORDER BY id;

-- A VMS role: live view of the lobby, recorded video only 4 hours back.
SELECT vms.create_role('lobby_guards', 'Guards at the lobby desk');
SELECT vms.grant_permission('lobby_guards', 'view_live', camera_group => 'lobby');
SELECT vms.grant_permission('lobby_guards', 'view_recorded', camera_group => 'lobby', recorded_window => '4 hours');
-- Another: live view of one camera.
SELECT vms.create_role('vault_watch', 'Vault corridor watch');
SELECT vms.grant_permission('vault_watch', 'view_live', camera_id => (SELECT id FROM vms.cameras WHERE name = 'vault'));

SELECT vms.create_user('alice', 'Falcon-Creek-74');
SELECT vms.create_user('bob', 'Plover-Dune-75');
SELECT vms.add_member('lobby_guards', 'alice');
SELECT vms.add_member('vault_watch', 'bob');

SELECT username, via_role, permission, camera_name, recorded_window
  FROM vms.effective_permissions WHERE username IN ('alice', 'bob') ORDER BY 1, 3, 4;
