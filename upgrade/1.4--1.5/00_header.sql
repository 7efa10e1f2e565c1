-- pg_vms 1.4 -> 1.5: privacy zones and evidence export.
-- Assembled by the Makefile from upgrade/1.4--1.5/*.sql in name order; edit
-- those files, not the built script.  Same conventions as pg_vms--1.0.sql:
-- SECURITY DEFINER functions pin search_path = pg_catalog, vms, pg_temp;
-- nothing is granted to PUBLIC; each file revokes and grants what it creates.

\echo Use "ALTER EXTENSION pg_vms UPDATE TO '1.5'" to load this file. \quit
