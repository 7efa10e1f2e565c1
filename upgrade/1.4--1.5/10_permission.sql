------------------------------------------------------------------------------
-- A new permission: approving someone else's lift of privacy masks (the
-- second person of vms.lift_privacy_mask on cameras whose lift policy needs
-- approval).  Not administrative: it changes no configuration, so it works
-- without a second factor, like lift_privacy_mask itself.  src/authorize.c
-- reads the catalog (up to 64 ids), so nothing in C has to know it.
------------------------------------------------------------------------------
INSERT INTO vms.permissions (id, name, description, administrative) VALUES
    (17, 'approve_privacy_lift', 'Approve another user''s lift of privacy masks', false);
