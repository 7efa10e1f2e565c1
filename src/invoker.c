/*-------------------------------------------------------------------------
 * invoker.c
 *	  Track who invoked each pg_vms SECURITY DEFINER function.
 *
 *	  PostgreSQL runs a SECURITY DEFINER function as its owner and keeps no
 *	  record of the caller that SQL could read.  The executor checks EXECUTE
 *	  permission, and then fires OAT_FUNCTION_EXECUTE, in the caller's
 *	  context when it prepares a call; we remember the caller there, per
 *	  function and transaction.  fmgr_hook then pushes that caller when the
 *	  function starts and pops it when it ends or fails.  So the caller an
 *	  API function acts for is exactly the role whose EXECUTE privilege was
 *	  checked.  A call that did not go through the executor has no recorded
 *	  caller, and the API fails closed.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "pg_vms.h"
#include "invoker.h"

#define INVOKER_STACK_DEPTH 32

typedef struct ApiFunction
{
	Oid			fn_oid;			/* hash key */
	bool		kind_known;		/* is_api computed for the current catalog */
	bool		is_api;			/* SECURITY DEFINER function in schema vms */
	Oid			invoker;		/* role that prepared the last call */
	LocalTransactionId lxid;	/* ... in this transaction */
} ApiFunction;

static HTAB *api_functions = NULL;
static Oid	invoker_stack[INVOKER_STACK_DEPTH];
static int	invoker_depth = 0;

static object_access_hook_type prev_object_access_hook = NULL;
static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

static ApiFunction *
api_function_entry(Oid fn_oid)
{
	ApiFunction *entry;
	bool		found;

	if (api_functions == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ApiFunction);
		ctl.hcxt = TopMemoryContext;
		api_functions = hash_create("pg_vms api functions", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(api_functions, &fn_oid, HASH_ENTER, &found);
	if (!found)
	{
		entry->kind_known = false;
		entry->invoker = InvalidOid;
		entry->lxid = InvalidLocalTransactionId;
	}
	if (!entry->kind_known)
	{
		HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
		Oid			nsp = vms_schema_oid(true);

		entry->is_api = false;
		if (HeapTupleIsValid(tup))
		{
			Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tup);

			entry->is_api = OidIsValid(nsp) && proc->pronamespace == nsp &&
				proc->prosecdef;
			ReleaseSysCache(tup);
		}
		entry->kind_known = true;
	}
	return entry;
}

static void
invoker_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access == OAT_FUNCTION_EXECUTE && IsTransactionState())
	{
		ApiFunction *entry = api_function_entry(objectId);

		if (entry->is_api)
		{
			entry->invoker = GetUserId();
			entry->lxid = MyProc->lxid;
		}
	}
}

static bool
invoker_needs_fmgr_hook(Oid fn_oid)
{
	/* SECURITY DEFINER functions reach fmgr_hook anyway; add nothing. */
	return prev_needs_fmgr_hook ? prev_needs_fmgr_hook(fn_oid) : false;
}

static void
invoker_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	/*
	 * *private marks whether START pushed a caller.  The Datum is shared by
	 * every fmgr_hook in the chain; sepgsql, the only other core user, does
	 * not combine with pg_vms.
	 */
	switch (event)
	{
		case FHET_START:
			{
				ApiFunction *entry = api_function_entry(flinfo->fn_oid);

				if (entry->is_api)
				{
					Oid			caller = InvalidOid;

					if (invoker_depth >= INVOKER_STACK_DEPTH)
						ereport(ERROR,
								(errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
								 errmsg("pg_vms API calls are nested too deeply")));
					if (entry->lxid == MyProc->lxid)
						caller = entry->invoker;
					invoker_stack[invoker_depth++] = caller;
					*private = (Datum) 1;
				}
				else
					*private = (Datum) 0;
				break;
			}
		case FHET_END:
		case FHET_ABORT:
			if (*private == (Datum) 1 && invoker_depth > 0)
				invoker_depth--;
			break;
	}
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);
}

static void
invoker_proc_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS status;
	ApiFunction *entry;

	if (api_functions == NULL)
		return;
	hash_seq_init(&status, api_functions);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->kind_known = false;
}

static void
invoker_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		invoker_depth = 0;
}

void
invoker_install_hooks(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = invoker_object_access;
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = invoker_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = invoker_fmgr_hook;
	CacheRegisterSyscacheCallback(PROCOID, invoker_proc_callback, (Datum) 0);
	RegisterXactCallback(invoker_xact_callback, NULL);
}

/*
 * The role the innermost running pg_vms API function acts for; outside any
 * API function, the current user.
 */
Oid
invoker_current(void)
{
	Oid			caller;

	if (invoker_depth == 0)
		return GetUserId();
	caller = invoker_stack[invoker_depth - 1];
	if (!OidIsValid(caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pg_vms could not determine who called this function"),
				 errhint("Call pg_vms API functions from SQL, not through internal function calls.")));
	return caller;
}

PG_FUNCTION_INFO_V1(vms_invoker);

/* vms._invoker() returns regrole */
Datum
vms_invoker(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(invoker_current());
}
