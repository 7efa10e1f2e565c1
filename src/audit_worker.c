/*-------------------------------------------------------------------------
 * audit_worker.c
 *	  The pg_vms background worker.  In the database named by
 *	  vms.database_name it
 *	  - moves entries from the shared-memory audit queue into
 *		vms.audit_pending, removing them from the queue only after commit;
 *	  - seals pending entries into the audit chain (vms.seal_audit());
 *	  - creates time partitions ahead (vms.create_partitions()).
 *	  It wakes when an entry is queued, and at least every
 *	  vms.audit_flush_interval.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "utils/lsyscache.h"

#include "pg_vms.h"
#include "audit_queue.h"
#include "audit_worker.h"

#define AUDIT_BATCH 512

void
audit_worker_register(void)
{
	BackgroundWorker worker;

	if (IsBinaryUpgrade)
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_vms");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "vms_audit_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_vms audit worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_vms audit worker");
	RegisterBackgroundWorker(&worker);
}

static void
worker_detach_latch(int code, Datum arg)
{
	audit_queue_set_worker_latch(NULL);
}

/*
 * Entries restored after a crash may hold anything: replace bytes that are
 * not valid in the database encoding, so that storing cannot fail on them.
 */
static void
valid_text(char *s)
{
	int			len = strlen(s);

	while (!pg_verifymbstr(s, len, true))
	{
		int			good = pg_encoding_verifymbstr(GetDatabaseEncoding(), s, len);

		s[good] = '?';
	}
}

/* Store a batch of queued entries; returns how many were stored. */
static int
store_queued_entries(AuditQueueEntry *batch, uint64 *dropped)
{
	int			n = audit_queue_peek(batch, AUDIT_BATCH, dropped);
	Oid			argtypes[10] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	SPIPlanPtr	plan;
	int			i;

	if (n == 0 && *dropped == 0)
		return 0;
	plan = SPI_prepare("SELECT vms._audit_store_queued($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
					   10, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare audit insert: %s", SPI_result_code_string(SPI_result));

	for (i = 0; i < n; i++)
	{
		AuditQueueEntry *e = &batch[i];
		Datum		values[10];
		char		nulls[10];
		char	   *dbname = get_database_name(e->database_id);

		valid_text(e->actor);
		valid_text(e->session_user);
		valid_text(e->client_addr);
		valid_text(e->action);
		valid_text(e->outcome);
		valid_text(e->target);
		valid_text(e->details);

		memset(nulls, ' ', sizeof(nulls));
		values[0] = TimestampTzGetDatum(e->logged_at);
		values[1] = CStringGetTextDatum(e->actor);
		values[2] = CStringGetTextDatum(e->session_user);
		values[3] = CStringGetTextDatum(e->client_addr);
		values[4] = CStringGetTextDatum(e->action);
		values[5] = Int32GetDatum(e->camera_id);
		if (!e->has_camera)
			nulls[5] = 'n';
		values[6] = CStringGetTextDatum(e->target);
		values[7] = CStringGetTextDatum(e->outcome);
		values[8] = CStringGetTextDatum(e->details);
		values[9] = CStringGetTextDatum(dbname ? dbname : "");
		if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not store queued audit entry");
	}
	if (*dropped > 0)
	{
		char		details[128];

		snprintf(details, sizeof(details), "{\"dropped\": %llu}",
				 (unsigned long long) *dropped);
		if (SPI_execute_with_args("SELECT vms._audit_store_queued(pg_catalog.now(), '', '', '', "
								  "'audit_queue_overflow', NULL, '', 'error', $1, '')",
								  1, (Oid[]) {TEXTOID},
								  (Datum[]) {CStringGetTextDatum(details)},
								  NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not record audit queue overflow");
	}
	return n;
}

static void
run_statement(const char *activity, const char *sql)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgstat_report_activity(STATE_RUNNING, activity);
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "%s failed", sql);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

static void
worker_cycle(AuditQueueEntry *batch, TimestampTz *next_partition_run)
{
	static bool rules_published = false;
	bool		publish_rules = false;
	bool		installed;
	int			stored = 0;
	uint64		dropped = 0;
	TimestampTz now = GetCurrentTimestamp();

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	installed = OidIsValid(get_extension_oid(PG_VMS_EXTENSION, true));
	if (installed)
	{
		pgstat_report_activity(STATE_RUNNING, "pg_vms: storing queued audit entries");
		stored = store_queued_entries(batch, &dropped);
		/* Once per start: the login check gets the table's rules (after a restore, say). */
		publish_rules = !rules_published &&
			OidIsValid(get_relname_relid("client_address_rules", vms_schema_oid(false)));
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* Only now, with the rows committed, may the queue forget them. */
	if (installed && (stored > 0 || dropped > 0))
		audit_queue_consume(stored, dropped);
	if (!installed)
	{
		pgstat_report_activity(STATE_IDLE, NULL);
		return;
	}

	if (publish_rules)
	{
		run_statement("pg_vms: publishing client address rules",
					  "SELECT vms._client_address_publish()");
		rules_published = true;
	}

	/* Sealing in its own transaction: a failure here never holds up storing. */
	run_statement("pg_vms: sealing the audit chain", "SELECT vms.seal_audit()");
	if (now >= *next_partition_run)
	{
		run_statement("pg_vms: creating partitions ahead", "SELECT vms.create_partitions()");
		*next_partition_run = TimestampTzPlusMilliseconds(now,
														  (int64) vms_partition_interval_s * 1000);
	}
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
vms_audit_worker_main(Datum main_arg)
{
	AuditQueueEntry *batch;
	TimestampTz next_partition_run = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(vms_database_name, NULL, 0);
	pgstat_report_appname("pg_vms audit worker");

	batch = MemoryContextAlloc(TopMemoryContext, sizeof(AuditQueueEntry) * AUDIT_BATCH);
	audit_queue_set_worker_latch(MyLatch);
	before_shmem_exit(worker_detach_latch, (Datum) 0);

	ereport(LOG,
			(errmsg("pg_vms audit worker started in database \"%s\"", vms_database_name)));

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		worker_cycle(batch, &next_partition_run);

		/* Drain a backlog without sleeping; otherwise wait for work. */
		if (audit_queue_length() > 0)
			continue;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 vms_audit_flush_interval_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
