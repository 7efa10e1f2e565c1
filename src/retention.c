/*-------------------------------------------------------------------------
 * retention.c
 *	  Settings of the retention policy.
 *
 *	  Retention itself is SQL (vms.apply_retention() and friends in the
 *	  1.3 script): it is set-oriented work on tables.  What lives here are the
 *	  cluster-wide limits, which only a superuser may change, in
 *	  postgresql.conf or with ALTER SYSTEM, so that no VMS administrator can
 *	  lift the cap the law sets.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "retention.h"

#define SECONDS_PER_DAY 86400

static int	max_retention_s = 30 * SECONDS_PER_DAY;
static int	audit_retention_s = 365 * SECONDS_PER_DAY;
static bool hold_release_requires_approval = false;
static int	partition_lock_wait_ms = 3000;
static int	max_export_range_s = SECONDS_PER_DAY;

void
retention_define_settings(void)
{
	DefineCustomIntVariable("vms.max_retention",
							"Longest time recordings, events and face events may be kept.",
							"Per-camera retention above this cap is refused; a lowered cap applies at the next vms.apply_retention().",
							&max_retention_s,
							30 * SECONDS_PER_DAY, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("vms.audit_retention",
							"How long audit log entries are kept (never less than vms.max_retention).",
							"Whole monthly partitions are dropped once all their entries are older; the chain anchor moves to the cut.",
							&audit_retention_s,
							365 * SECONDS_PER_DAY, SECONDS_PER_DAY, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("vms.hold_release_requires_approval",
							 "Whether releasing any evidence hold needs a second person's approval.",
							 "When off, only holds placed with release_needs_approval need it.",
							 &hold_release_requires_approval,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("vms.partition_lock_wait",
							"How long pg_vms keeps trying for the brief exclusive lock that adds or retires a partition.",
							"It never queues for the lock (queries would stall behind it): retention leaves such partitions to its next run; creating one then waits.",
							&partition_lock_wait_ms,
							3000, 0, 600000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	/* From 1.5: vms.begin_export() refuses longer ranges (export in parts). */
	DefineCustomIntVariable("vms.max_export_range",
							"Longest time range one evidence export may cover.",
							"vms.begin_export() refuses a longer range; export it in parts.",
							&max_export_range_s,
							SECONDS_PER_DAY, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}
