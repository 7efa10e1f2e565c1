------------------------------------------------------------------------------
-- The API's own overhead, found while measuring registration (bench section
-- 7): vms._invoker_name() was a SQL function with a query, called several
-- times by every API call.  Same result, now from the backend's cache.
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION vms._invoker_name() RETURNS text
AS 'MODULE_PATHNAME', 'vms_invoker_name' LANGUAGE C STABLE;
