-- pg_vms 1.3 -> 1.4: ingest (the recording worker tools/vms-ingest).
-- Assembled by the Makefile from upgrade/1.3--1.4/*.sql in name order; edit
-- those files, not the built script.  Same conventions as pg_vms--1.0.sql:
-- SECURITY DEFINER functions pin search_path = pg_catalog, vms, pg_temp;
-- nothing is granted to PUBLIC; each file revokes and grants what it creates.
-- docs/ingest.md explains the worker and how it uses these functions.

\echo Use "ALTER EXTENSION pg_vms UPDATE TO '1.4'" to load this file. \quit
