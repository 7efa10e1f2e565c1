-- As 'manager': the camera's password is encrypted before it is stored.
SELECT vms.set_camera_credential(1, 'admin', 'Entrance-cam-pw-7');
\set ON_ERROR_STOP 0
-- The manager manages the camera but is not its recorder: no reveal.
SELECT * FROM vms.camera_credential(1);
