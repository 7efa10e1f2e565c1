/*-------------------------------------------------------------------------
 * audit.c
 *	  Producing audit entries that must survive a rollback: the SQL entry
 *	  point used by API functions when they deny or fail a request, and the
 *	  helper that fills in who and where from the current connection (the
 *	  authentication hook reuses it; it copes with MyProcPort == NULL in
 *	  background and parallel workers).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "common/ip.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "pg_vms.h"
#include "audit.h"
#include "audit_queue.h"
#include "invoker.h"

void
audit_entry_init(AuditQueueEntry *entry, Oid actor, const char *action,
				 const char *outcome)
{
	char	   *name;

	memset(entry, 0, sizeof(AuditQueueEntry));
	entry->logged_at = GetCurrentTimestamp();
	entry->database_id = MyDatabaseId;
	name = OidIsValid(actor) ? GetUserNameFromId(actor, true) : NULL;
	strlcpy(entry->actor, name ? name : "", AUDIT_ACTOR_LEN);
	name = OidIsValid(GetSessionUserId()) ? GetUserNameFromId(GetSessionUserId(), true) : NULL;
	strlcpy(entry->session_user, name ? name : "", AUDIT_ACTOR_LEN);
	audit_client_addr(entry->client_addr, AUDIT_ADDR_LEN);
	strlcpy(entry->action, action, AUDIT_ACTION_LEN);
	strlcpy(entry->outcome, outcome, AUDIT_OUTCOME_LEN);
}

/* Numeric client address, or "" for Unix sockets and processes without one. */
void
audit_client_addr(char *buf, size_t size)
{
	char		host[NI_MAXHOST];

	buf[0] = '\0';
	if (MyProcPort == NULL)
		return;
	if (MyProcPort->raddr.addr.ss_family != AF_INET &&
		MyProcPort->raddr.addr.ss_family != AF_INET6)
		return;
	host[0] = '\0';
	if (pg_getnameinfo_all(&MyProcPort->raddr.addr, MyProcPort->raddr.salen,
						   host, sizeof(host), NULL, 0,
						   NI_NUMERICHOST | NI_NUMERICSERV) == 0)
	{
		/* Drop an IPv6 zone ("fe80::1%eth0"): inet cannot hold it. */
		char	   *zone = strchr(host, '%');

		if (zone)
			*zone = '\0';
		strlcpy(buf, host, size);
	}
}

/* Copy text into a fixed buffer, cutting only between whole characters. */
void
audit_copy_text(char *dst, const char *src, size_t size)
{
	int			len = strlen(src);

	if (len >= (int) size)
		len = pg_mbcliplen(src, len, size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

PG_FUNCTION_INFO_V1(vms_audit_enqueue);
PG_FUNCTION_INFO_V1(vms_audit_queue_length);

/*
 * vms._audit_enqueue(action text, outcome text, camera_id integer,
 *					  target text, details jsonb) returns boolean
 *
 * Queues an entry outside the current transaction.  Returns false when the
 * queue was full (the entry is then counted as dropped and reported).
 */
Datum
vms_audit_enqueue(PG_FUNCTION_ARGS)
{
	AuditQueueEntry entry;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit action and outcome must not be null")));
	audit_entry_init(&entry, invoker_current(),
					 text_to_cstring(PG_GETARG_TEXT_PP(0)),
					 text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (!PG_ARGISNULL(2))
	{
		entry.has_camera = true;
		entry.camera_id = PG_GETARG_INT32(2);
	}
	if (!PG_ARGISNULL(3))
		audit_copy_text(entry.target, text_to_cstring(PG_GETARG_TEXT_PP(3)), AUDIT_TARGET_LEN);
	if (!PG_ARGISNULL(4))
	{
		char	   *json = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(4)));

		/* A truncated JSON text would not parse: keep it whole or drop it. */
		if (strlen(json) < AUDIT_DETAILS_LEN)
			strlcpy(entry.details, json, AUDIT_DETAILS_LEN);
		else
			strlcpy(entry.details, "{\"truncated\": true}", AUDIT_DETAILS_LEN);
	}
	PG_RETURN_BOOL(audit_queue_push(&entry));
}

/* vms.audit_queue_length() returns bigint: entries waiting for the worker */
Datum
vms_audit_queue_length(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) audit_queue_length());
}
