-- pg_vms 1.2 -> 1.3: retention, evidence holds and the storage lifecycle.
-- Assembled by the Makefile from upgrade/1.2--1.3/*.sql in name order; edit
-- those files, not the built script.  Same conventions as pg_vms--1.0.sql:
-- SECURITY DEFINER functions pin search_path = pg_catalog, vms, pg_temp;
-- nothing is granted to PUBLIC; each file revokes and grants what it creates.
-- docs/retention.md explains the model.

\echo Use "ALTER EXTENSION pg_vms UPDATE TO '1.3'" to load this file. \quit
