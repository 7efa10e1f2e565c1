/*-------------------------------------------------------------------------
 * pg_vms.c
 *	  Module entry point: settings, shared memory requests, hooks and the
 *	  background worker.  Each concern lives in its own file; this one only
 *	  wires them together.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "catalog/pg_namespace.h"

#include "pg_vms.h"
#include "audit_chain.h"
#include "audit_queue.h"
#include "audit_worker.h"
#include "auth_guard.h"
#include "authorize.h"
#include "client_address.h"
#include "facex.h"
#include "invoker.h"
#include "keys.h"
#include "log_filter.h"
#include "password_policy.h"
#include "totp.h"
#include "retention.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *vms_database_name = NULL;
int			vms_audit_flush_interval_ms = 1000;
int			vms_audit_queue_size = 4096;
int			vms_partition_interval_s = 3600;
double		vms_face_search_min_score = 0.5;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
vms_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	audit_queue_shmem_request();
	keys_shmem_request();
	auth_guard_shmem_request();
	client_address_shmem_request();
}

static void
vms_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	audit_queue_shmem_startup();
	keys_shmem_startup();
	auth_guard_shmem_startup();
	client_address_shmem_startup();
}

void
_PG_init(void)
{
	/*
	 * The audit queue lives in shared memory and the hooks must be in every
	 * backend, so loading through LOAD or session_preload_libraries would
	 * give a half-working system.  Refuse it.
	 */
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_vms must be loaded via shared_preload_libraries"),
				 errhint("Add pg_vms to shared_preload_libraries in postgresql.conf and restart the server.")));

	DefineCustomStringVariable("vms.database_name",
							   "Database in which the pg_vms background worker runs.",
							   "pg_vms lives in one database per cluster, like pg_cron.",
							   &vms_database_name,
							   "postgres",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("vms.audit_flush_interval",
							"Longest time an audit entry waits before the worker drains and seals it.",
							NULL,
							&vms_audit_flush_interval_ms,
							1000, 10, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("vms.audit_queue_size",
							"Number of entries the shared-memory audit queue holds.",
							"When the queue is full, further entries are counted and reported as one overflow entry.",
							&vms_audit_queue_size,
							4096, 64, 1048576,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("vms.partition_maintenance_interval",
							"How often the worker creates time partitions ahead.",
							NULL,
							&vms_partition_interval_s,
							3600, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	keys_define_settings();

	DefineCustomRealVariable("vms.face_search_min_score",
							 "Lowest similarity vms.face_search() returns, whatever the caller asks.",
							 "A floor keeps chosen probes from reading stored face templates back out of the scores.",
							 &vms_face_search_min_score,
							 0.5, -1.0, 1.0,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	password_policy_define_settings();
	auth_guard_define_settings();
	client_address_define_settings();
	totp_define_settings();
	retention_define_settings();

	MarkGUCPrefixReserved("vms");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = vms_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = vms_shmem_startup;

	invoker_install_hooks();
	log_filter_install_hook();
	password_policy_install_hook();
	auth_guard_install_hook();
	client_address_install_callbacks();
	totp_install_callbacks();
	authorize_install_callbacks();
	audit_chain_install_callbacks();
	facex_install_callbacks();
	audit_worker_register();
}

/*
 * OID of the vms schema; InvalidOid if the extension is not installed in
 * this database and missing_ok.
 */
Oid
vms_schema_oid(bool missing_ok)
{
	return get_namespace_oid(PG_VMS_SCHEMA, missing_ok);
}

/*
 * The extension's owner is the owner of its schema: the role that ran
 * CREATE EXTENSION (a superuser; the extension is never trusted).
 */
Oid
vms_schema_owner(void)
{
	Oid			nspid = vms_schema_oid(false);
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nspid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nspid);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

void
owner_spi_begin(OwnerSpi *ctx)
{
	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec_context);
	SetUserIdAndSecContext(vms_schema_owner(),
						   ctx->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	ctx->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
owner_spi_end(OwnerSpi *ctx)
{
	SPI_finish();
	AtEOXact_GUC(true, ctx->save_nestlevel);
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec_context);
}
