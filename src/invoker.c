/*-------------------------------------------------------------------------
 * invoker.c
 *	  Who called a pg_vms API function.
 *
 *	  Inside a SECURITY DEFINER function current_user is the owner, and
 *	  PostgreSQL keeps no record of the caller.  So every public API function
 *	  vms.<name> is a SECURITY INVOKER C trampoline (vms_api_call): it reads
 *	  the caller with GetUserId() at the moment of the call, pushes it, and
 *	  calls the SECURITY DEFINER body vms._<name> (same arguments, granted to
 *	  nobody) through fmgr.  vms._invoker() inside the body returns the top of
 *	  that stack; outside any API call it returns the current user.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pg_vms.h"
#include "invoker.h"

#define INVOKER_STACK_DEPTH 32

static Oid	invoker_stack[INVOKER_STACK_DEPTH];
static int	invoker_depth = 0;

static void
invoker_xact_callback(XactEvent event, void *arg)
{
	/* PG_FINALLY pops on every path; this only guards against surprises. */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		invoker_depth = 0;
}

void
invoker_install_hooks(void)
{
	RegisterXactCallback(invoker_xact_callback, NULL);
}

/*
 * The role the innermost running pg_vms API function acts for; outside any
 * API function, the current user.
 */
Oid
invoker_current(void)
{
	if (invoker_depth == 0)
		return GetUserId();
	return invoker_stack[invoker_depth - 1];
}

/* fn_extra of a trampoline: the body it calls. */
typedef struct ApiBody
{
	FmgrInfo	flinfo;
} ApiBody;

static ApiBody *
api_body_lookup(FunctionCallInfo fcinfo)
{
	Oid			self = fcinfo->flinfo->fn_oid;
	HeapTuple	tup;
	Form_pg_proc proc;
	char	   *nspname;
	char	   *bodyname;
	Oid			body;
	ApiBody    *cache;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(self));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", self);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	nspname = get_namespace_name(proc->pronamespace);
	bodyname = psprintf("_%s", NameStr(proc->proname));
	body = LookupFuncName(list_make2(makeString(nspname), makeString(bodyname)),
						  proc->pronargs, proc->proargtypes.values, false);
	ReleaseSysCache(tup);

	/* The body must be the extension's SECURITY DEFINER function. */
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(body));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", body);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (!proc->prosecdef || proc->pronamespace != vms_schema_oid(false) ||
		proc->prorettype != get_func_rettype(self))
		elog(ERROR, "pg_vms: %s.%s is not the body of %s", nspname, bodyname, get_func_name(self));
	ReleaseSysCache(tup);

	cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ApiBody));
	fmgr_info_cxt(body, &cache->flinfo, fcinfo->flinfo->fn_mcxt);
	cache->flinfo.fn_expr = fcinfo->flinfo->fn_expr;
	return cache;
}

PG_FUNCTION_INFO_V1(vms_api_call);

/* The trampoline behind every public API function. */
Datum
vms_api_call(PG_FUNCTION_ARGS)
{
	ApiBody    *cache = (ApiBody *) fcinfo->flinfo->fn_extra;
	LOCAL_FCINFO(inner, FUNC_MAX_ARGS);
	Datum		result;
	int			i;

	if (cache == NULL)
		fcinfo->flinfo->fn_extra = cache = api_body_lookup(fcinfo);
	if (invoker_depth >= INVOKER_STACK_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
				 errmsg("pg_vms API calls are nested too deeply")));

	InitFunctionCallInfoData(*inner, &cache->flinfo, PG_NARGS(),
							 fcinfo->fncollation, fcinfo->context, fcinfo->resultinfo);
	for (i = 0; i < PG_NARGS(); i++)
		inner->args[i] = fcinfo->args[i];

	invoker_stack[invoker_depth++] = GetUserId();
	PG_TRY();
	{
		result = FunctionCallInvoke(inner);
	}
	PG_FINALLY();
	{
		invoker_depth--;
	}
	PG_END_TRY();

	fcinfo->isnull = inner->isnull;
	return result;
}

PG_FUNCTION_INFO_V1(vms_invoker);

/* vms._invoker() returns regrole */
Datum
vms_invoker(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(invoker_current());
}

PG_FUNCTION_INFO_V1(vms_invoker_name);

/*
 * vms._invoker_name() returns text: the invoker's name, unquoted, or NULL if
 * the role is gone.  In C (from 1.4) because every API call asks for it
 * several times, and the SQL version cost a query each time.
 */
Datum
vms_invoker_name(PG_FUNCTION_ARGS)
{
	char	   *name = GetUserNameFromId(invoker_current(), true);

	if (name == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(name));
}
