/*-------------------------------------------------------------------------
 * pg_vms.h
 *	  Shared declarations for the pg_vms extension: settings and the
 *	  entry points each module exposes to the others.
 *-------------------------------------------------------------------------
 */
#ifndef PG_VMS_H
#define PG_VMS_H

#include "postgres.h"

#define PG_VMS_SCHEMA		"vms"
#define PG_VMS_EXTENSION	"pg_vms"

/* Settings (pg_vms.c) */
extern char *vms_database_name;
extern int	vms_audit_flush_interval_ms;
extern int	vms_audit_queue_size;
extern int	vms_partition_interval_s;
extern double vms_face_search_min_score;

/* Helpers (pg_vms.c) */
extern Oid	vms_schema_oid(bool missing_ok);
extern Oid	vms_schema_owner(void);

/*
 * SPI as the owner of schema vms with search_path pg_catalog, pg_temp: the
 * caller's privileges, its row-level security view of the tables and
 * objects it planted in its search_path cannot change what C code reads.
 */
typedef struct OwnerSpi
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} OwnerSpi;

extern void owner_spi_begin(OwnerSpi *ctx);
extern void owner_spi_end(OwnerSpi *ctx);

#endif							/* PG_VMS_H */
