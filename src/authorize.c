/*-------------------------------------------------------------------------
 * authorize.c
 *	  vms.authorize(): the single permission decision point, and the
 *	  per-backend cache behind it.
 *
 *	  For each role that asks, the cache holds its grants expanded to
 *	  (permission, camera) pairs, with each grant's limits (recorded-video
 *	  window, validity period), plus its grants of scope "all".  A decision is
 *	  one hash probe and a check of the limits against the statement time.
 *
 *	  The cache is dropped when vms.grants, vms.cameras, camera group
 *	  membership or vms.permissions change (a statement trigger sends a
 *	  relcache invalidation for vms.grants, delivered to every backend at
 *	  commit) and when roles or role memberships change (syscache callbacks
 *	  on pg_authid and pg_auth_members).  Backends process invalidations when
 *	  a statement starts, so another session's change applies to the next
 *	  statement.
 *
 *	  Second factor: a role with the privileges of a role listed in
 *	  vms.second_factor_roles (vms_system_manager by default) has its
 *	  administrative permissions (vms.permissions.administrative) and its
 *	  system-manager standing suspended until it verifies a TOTP code in the
 *	  session (totp.c).  Its other permissions work as usual.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_vms.h"
#include "authorize.h"
#include "invoker.h"
#include "totp.h"

#define MAX_PERMISSIONS 64

typedef struct GrantLimit
{
	int64		window_us;		/* how far back recorded data may be seen; -1 = no limit */
	TimestampTz valid_from;
	TimestampTz valid_until;
} GrantLimit;

typedef struct LimitList
{
	int			n;
	int			cap;
	GrantLimit *items;
} LimitList;

typedef struct CameraPermKey
{
	int32		permission;
	int32		camera_id;
} CameraPermKey;

typedef struct CameraPermEntry
{
	CameraPermKey key;
	LimitList	limits;
} CameraPermEntry;

typedef struct GroupLimits
{
	int32		group_id;
	LimitList	limits;
} GroupLimits;

typedef struct PrincipalCache
{
	Oid			roleid;			/* hash key */
	bool		allow_all;		/* superuser or vms_system_manager member */
	bool		needs_second_factor;	/* member of a vms.second_factor_roles role */
	HTAB	   *by_camera;		/* CameraPermKey -> CameraPermEntry */
	LimitList	all_scope[MAX_PERMISSIONS];
	List	   *cameras[MAX_PERMISSIONS];	/* CameraPermEntry * per permission */
	List	   *groups[MAX_PERMISSIONS];	/* GroupLimits * per permission */
} PrincipalCache;

/* Global state; everything below authz_context is dropped on invalidation. */
static MemoryContext authz_context = NULL;
static bool authz_valid = false;
static uint64 authz_generation = 0;
static Oid	authz_watched_relid = InvalidOid;	/* vms.grants */
static int	n_permissions = 0;
static char *permission_names[MAX_PERMISSIONS];
static bool administrative[MAX_PERMISSIONS];
static List *second_factor_roles = NIL;	/* role OIDs */
static int32 *all_cameras = NULL;
static int	n_all_cameras = 0;
static HTAB *principals = NULL;
static PrincipalCache *last_principal = NULL;
static bool authz_filled_in_parallel = false;

/* fn_extra of vms.authorize and friends: the last permission name seen. */
typedef struct PermissionMemo
{
	uint64		generation;
	int			permission;
	int			len;
	char		name[NAMEDATALEN];
} PermissionMemo;

static void
authz_invalidate(void)
{
	authz_valid = false;
	last_principal = NULL;
}

static void
authz_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == authz_watched_relid)
		authz_invalidate();
}

static void
authz_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	authz_invalidate();
}

void
authorize_install_callbacks(void)
{
	CacheRegisterRelcacheCallback(authz_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, authz_syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, authz_syscache_callback, (Datum) 0);
}

static void
limit_list_add(LimitList *list, const GrantLimit *limit)
{
	if (list->n == list->cap)
	{
		int			newcap = list->cap ? list->cap * 2 : 2;

		if (list->items)
			list->items = repalloc(list->items, newcap * sizeof(GrantLimit));
		else
			list->items = palloc(newcap * sizeof(GrantLimit));
		list->cap = newcap;
	}
	list->items[list->n++] = *limit;
}

static inline bool
limits_allow(const LimitList *list, TimestampTz now, TimestampTz at, bool check_window)
{
	int			i;

	for (i = 0; i < list->n; i++)
	{
		const GrantLimit *l = &list->items[i];

		if (now < l->valid_from || now >= l->valid_until)
			continue;
		if (check_window && l->window_us >= 0 && at < now - l->window_us)
			continue;
		return true;
	}
	return false;
}

/*
 * Catalog queries run as the extension owner (owner_spi_begin) and read the
 * latest committed state, not the transaction's snapshot: the cache outlives
 * a REPEATABLE READ transaction that fills it.  Parallel mode cannot take a
 * new snapshot; a cache filled there is dropped at the next statement (see
 * authz_principal).
 */
static void
enter_owner_context(OwnerSpi *ctx)
{
	owner_spi_begin(ctx);
	if (IsInParallelMode())
	{
		PushActiveSnapshot(GetActiveSnapshot());
		authz_filled_in_parallel = true;
	}
	else
		PushActiveSnapshot(GetLatestSnapshot());
}

static void
leave_owner_context(OwnerSpi *ctx)
{
	PopActiveSnapshot();
	owner_spi_end(ctx);
}

static void
authz_load_global(void)
{
	OwnerSpi	oc;
	uint64		i;
	MemoryContext old;

	if (authz_context == NULL)
		authz_context = AllocSetContextCreate(CacheMemoryContext,
											  "pg_vms authorization cache",
											  ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(authz_context);
	principals = NULL;
	last_principal = NULL;
	n_permissions = 0;
	memset(permission_names, 0, sizeof(permission_names));
	memset(administrative, 0, sizeof(administrative));
	second_factor_roles = NIL;
	all_cameras = NULL;
	n_all_cameras = 0;

	/* Mark valid first: an invalidation arriving during the load wins. */
	authz_valid = true;
	authz_generation++;

	authz_watched_relid = get_relname_relid("grants", vms_schema_oid(false));

	enter_owner_context(&oc);
	/* to_jsonb: the column is new in 1.2 and the library may meet a 1.1 schema. */
	if (SPI_execute("SELECT id, name, COALESCE((pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.->>) 'administrative')::pg_catalog.bool, false) "
					"FROM vms.permissions p ORDER BY id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read vms.permissions");
	old = MemoryContextSwitchTo(authz_context);
	for (i = 0; i < SPI_processed && i < MAX_PERMISSIONS; i++)
	{
		bool		isnull;
		int			id = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (id < 0 || id >= MAX_PERMISSIONS)
			elog(ERROR, "permission id %d out of range", id);
		permission_names[id] = pstrdup(name);
		administrative[id] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 3, &isnull));
		n_permissions = Max(n_permissions, id + 1);
	}
	MemoryContextSwitchTo(old);

	if (OidIsValid(get_relname_relid("second_factor_roles", vms_schema_oid(false))))
	{
		if (SPI_execute("SELECT r.oid FROM vms.second_factor_roles s "
						"JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) s.role",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read vms.second_factor_roles");
		old = MemoryContextSwitchTo(authz_context);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			second_factor_roles = lappend_oid(second_factor_roles,
											  DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																			 SPI_tuptable->tupdesc, 1, &isnull)));
		}
		MemoryContextSwitchTo(old);
	}

	leave_owner_context(&oc);
}

/*
 * Every camera id, for answers covering all cameras.  Loaded only when such
 * an answer is needed: decisions on one camera never need it.
 */
static void
authz_load_all_cameras(void)
{
	OwnerSpi	oc;
	uint64		i;

	if (all_cameras != NULL)
		return;
	enter_owner_context(&oc);
	if (SPI_execute("SELECT id FROM vms.cameras ORDER BY id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read vms.cameras");
	all_cameras = MemoryContextAlloc(authz_context, sizeof(int32) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		all_cameras[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
	}
	n_all_cameras = (int) SPI_processed;
	leave_owner_context(&oc);
}

static PrincipalCache *
authz_load_principal(Oid roleid)
{
	PrincipalCache *pc;
	bool		found;
	OwnerSpi	oc;
	uint64		i;
	Oid			manager;
	MemoryContext old;

	if (principals == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(PrincipalCache);
		ctl.hcxt = authz_context;
		principals = hash_create("pg_vms principals", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	pc = hash_search(principals, &roleid, HASH_ENTER, &found);
	if (found)
		return pc;

	memset(((char *) pc) + sizeof(Oid), 0, sizeof(PrincipalCache) - sizeof(Oid));
	manager = get_role_oid("vms_system_manager", true);
	pc->allow_all = superuser_arg(roleid) ||
		(OidIsValid(manager) && has_privs_of_role(roleid, manager));
	if (!superuser_arg(roleid))
	{
		ListCell   *lc;

		foreach(lc, second_factor_roles)
			if (has_privs_of_role(roleid, lfirst_oid(lc)))
				pc->needs_second_factor = true;
	}
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(CameraPermKey);
		ctl.entrysize = sizeof(CameraPermEntry);
		ctl.hcxt = authz_context;
		pc->by_camera = hash_create("pg_vms camera permissions", 256, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (pc->allow_all)
		return pc;

	enter_owner_context(&oc);
	if (SPI_execute("SELECT g.role, p.id, g.scope, "
					"       COALESCE(g.camera_id, m.camera_id), "
					"       CASE WHEN g.recorded_window IS NULL THEN -1 "
					"            ELSE (EXTRACT(EPOCH FROM g.recorded_window) "
					"                  OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8 END, "
					"       g.valid_from, g.valid_until, g.group_id "
					"FROM vms.grants g "
					"JOIN vms.permissions p ON p.name OPERATOR(pg_catalog.=) g.permission "
					"LEFT JOIN vms.camera_group_members m "
					"  ON g.scope OPERATOR(pg_catalog.=) 'group' "
					" AND m.group_id OPERATOR(pg_catalog.=) g.group_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read vms.grants");

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull,
					cam_null,
					from_null,
					until_null;
		char	   *rolname = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		int			perm = DatumGetInt16(SPI_getbinval(tup, desc, 2, &isnull));
		char	   *scope = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		int32		camera = DatumGetInt32(SPI_getbinval(tup, desc, 4, &cam_null));
		Datum		from_d = SPI_getbinval(tup, desc, 6, &from_null);
		Datum		until_d = SPI_getbinval(tup, desc, 7, &until_null);
		bool		group_null;
		int32		group_id = DatumGetInt32(SPI_getbinval(tup, desc, 8, &group_null));
		GrantLimit	limit;
		Oid			grantee = get_role_oid(rolname, true);

		if (!OidIsValid(grantee) || !has_privs_of_role(roleid, grantee))
			continue;
		if (perm < 0 || perm >= MAX_PERMISSIONS)
			continue;
		limit.window_us = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		limit.valid_from = from_null ? DT_NOBEGIN : DatumGetTimestampTz(from_d);
		limit.valid_until = until_null ? DT_NOEND : DatumGetTimestampTz(until_d);

		/* Only what the cache keeps goes into its long-lived context. */
		old = MemoryContextSwitchTo(authz_context);
		if (strcmp(scope, "group") == 0 && !group_null)
		{
			GroupLimits *gl = NULL;
			ListCell   *lc;

			foreach(lc, pc->groups[perm])
				if (((GroupLimits *) lfirst(lc))->group_id == group_id)
					gl = lfirst(lc);
			if (gl == NULL)
			{
				gl = palloc0(sizeof(GroupLimits));
				gl->group_id = group_id;
				pc->groups[perm] = lappend(pc->groups[perm], gl);
			}
			/* One row per member camera: record each grant once. */
			if (gl->limits.n == 0 || memcmp(&gl->limits.items[gl->limits.n - 1], &limit, sizeof(limit)) != 0)
				limit_list_add(&gl->limits, &limit);
		}
		if (strcmp(scope, "all") == 0)
			limit_list_add(&pc->all_scope[perm], &limit);
		else if (!cam_null)
		{
			CameraPermKey key;
			CameraPermEntry *entry;

			key.permission = perm;
			key.camera_id = camera;
			entry = hash_search(pc->by_camera, &key, HASH_ENTER, &found);
			if (!found)
			{
				memset(&entry->limits, 0, sizeof(LimitList));
				pc->cameras[perm] = lappend(pc->cameras[perm], entry);
			}
			limit_list_add(&entry->limits, &limit);
		}
		MemoryContextSwitchTo(old);
	}
	leave_owner_context(&oc);
	return pc;
}

static PrincipalCache *
authz_principal(Oid roleid)
{
	static TimestampTz last_statement = 0;
	TimestampTz statement = GetCurrentStatementStartTimestamp();

	/*
	 * Once per statement, take in invalidations other sessions have
	 * committed, so that a change applies to the next statement even inside
	 * an open transaction (which would otherwise only see them when it
	 * locks a relation it has not locked yet).
	 */
	if (unlikely(statement != last_statement))
	{
		last_statement = statement;
		AcceptInvalidationMessages();
		if (authz_filled_in_parallel)
		{
			authz_filled_in_parallel = false;
			authz_invalidate();
		}
	}
	if (likely(authz_valid && last_principal && last_principal->roleid == roleid))
		return last_principal;
	/* A load that fails half way must not leave a half-filled cache. */
	PG_TRY();
	{
		if (!authz_valid)
			authz_load_global();
		last_principal = authz_load_principal(roleid);
	}
	PG_CATCH();
	{
		authz_invalidate();
		PG_RE_THROW();
	}
	PG_END_TRY();
	return last_principal;
}

/*
 * Does the second factor still stand between this principal and its
 * administrative permissions?  The factor belongs to the person, that is the
 * session user: SET ROLE to a role that needs one (even a NOLOGIN role such
 * as vms_system_manager) cannot dodge it, and only the session user's own
 * verified code lifts it.  A superuser session acting as another role (SET
 * ROLE, as tests and administrators do) is judged by that role instead.
 */
static bool
second_factor_pending(PrincipalCache *pc)
{
	static Oid	session_role = InvalidOid;
	static uint64 session_generation = 0;
	static bool session_super = false;
	static bool session_needs = false;
	Oid			session = GetSessionUserId();

	if (session != session_role || session_generation != authz_generation)
	{
		ListCell   *lc;

		session_role = session;
		session_generation = authz_generation;
		session_super = superuser_arg(session);
		session_needs = false;
		if (!session_super)
			foreach(lc, second_factor_roles)
				if (is_member_of_role(session, lfirst_oid(lc)))
					session_needs = true;
	}
	if (session_super)
		return pc->needs_second_factor && !totp_session_elevated(pc->roleid);
	return (pc->needs_second_factor || session_needs) && !totp_session_elevated(session);
}

/* Administrative permission held back by a pending second factor? */
static inline bool
suspended(PrincipalCache *pc, int perm)
{
	return unlikely(administrative[perm]) && second_factor_pending(pc);
}

static int
permission_id(const char *name, int len)
{
	int			i;

	for (i = 0; i < n_permissions; i++)
		if (permission_names[i] && strlen(permission_names[i]) == (size_t) len &&
			memcmp(permission_names[i], name, len) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown permission \"%.*s\"", len, name),
			 errhint("The permissions are listed in vms.permissions.")));
	return -1;					/* keep compiler quiet */
}

/* Resolve the permission argument, remembering the answer in fn_extra. */
static int
permission_arg(FunctionCallInfo fcinfo, int argno)
{
	text	   *t = PG_GETARG_TEXT_PP(argno);
	const char *name = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	PermissionMemo *memo = (PermissionMemo *) fcinfo->flinfo->fn_extra;

	if (!authz_valid)
	{
		PG_TRY();
		{
			authz_load_global();
		}
		PG_CATCH();
		{
			authz_invalidate();
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	if (memo && memo->generation == authz_generation && memo->len == len &&
		memcmp(memo->name, name, len) == 0)
		return memo->permission;

	if (len >= NAMEDATALEN)
		return permission_id(name, len);	/* errors out */
	if (memo == NULL)
		memo = fcinfo->flinfo->fn_extra =
			MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(PermissionMemo));
	memo->permission = permission_id(name, len);
	memo->generation = authz_generation;
	memo->len = len;
	memcpy(memo->name, name, len);
	return memo->permission;
}

static bool
decide(PrincipalCache *pc, int perm, int32 camera, TimestampTz at)
{
	TimestampTz now;
	CameraPermKey key;
	CameraPermEntry *entry;

	if (suspended(pc, perm))
		return false;
	if (pc->allow_all)
		return true;
	now = GetCurrentStatementStartTimestamp();
	if (pc->all_scope[perm].n > 0 && limits_allow(&pc->all_scope[perm], now, at, true))
		return true;
	key.permission = perm;
	key.camera_id = camera;
	entry = hash_search(pc->by_camera, &key, HASH_FIND, NULL);
	return entry != NULL && limits_allow(&entry->limits, now, at, true);
}

/* C-level entry for other modules. */
bool
authorize_role(Oid roleid, const char *permission, int32 camera_id, TimestampTz at)
{
	PrincipalCache *pc = authz_principal(roleid);

	return decide(pc, permission_id(permission, strlen(permission)), camera_id, at);
}

PG_FUNCTION_INFO_V1(vms_authorize);
PG_FUNCTION_INFO_V1(vms_authorized_invoker);
PG_FUNCTION_INFO_V1(vms_permitted_cameras);
PG_FUNCTION_INFO_V1(vms_holds_permission);
PG_FUNCTION_INFO_V1(vms_visible_cameras);
PG_FUNCTION_INFO_V1(vms_invoker_holds_permission);
PG_FUNCTION_INFO_V1(vms_is_system_manager);
PG_FUNCTION_INFO_V1(vms_noop_authorize);
PG_FUNCTION_INFO_V1(vms_authz_invalidate_trigger);

/* vms.authorize(permission text, camera_id integer, at timestamptz) */
Datum
vms_authorize(PG_FUNCTION_ARGS)
{
	int			perm = permission_arg(fcinfo, 0);
	PrincipalCache *pc = authz_principal(GetUserId());

	PG_RETURN_BOOL(decide(pc, perm, PG_GETARG_INT32(1), PG_GETARG_TIMESTAMPTZ(2)));
}

/* vms._authorized(...): the same decision for the API function's caller. */
Datum
vms_authorized_invoker(PG_FUNCTION_ARGS)
{
	int			perm = permission_arg(fcinfo, 0);
	PrincipalCache *pc = authz_principal(invoker_current());

	PG_RETURN_BOOL(decide(pc, perm, PG_GETARG_INT32(1), PG_GETARG_TIMESTAMPTZ(2)));
}

static int
int32_cmp(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/*
 * vms.permitted_cameras(permission text) returns integer[]: the cameras on
 * which the current user holds the permission now (ignoring the recorded
 * window, which depends on the row).  RLS policies use it as an index
 * condition: camera_id = ANY (vms.permitted_cameras('view_recorded')).
 */
Datum
vms_permitted_cameras(PG_FUNCTION_ARGS)
{
	int			perm = permission_arg(fcinfo, 0);
	PrincipalCache *pc = authz_principal(GetUserId());
	TimestampTz now = GetCurrentStatementStartTimestamp();
	Datum	   *elems;
	int32	   *ids;
	int			n = 0;
	int			i;
	ListCell   *lc;

	/* Same answer as vms.authorize() would give camera by camera. */
	if (suspended(pc, perm))
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT4OID));
	if (pc->allow_all || limits_allow(&pc->all_scope[perm], now, 0, false))
	{
		authz_load_all_cameras();
		elems = palloc(sizeof(Datum) * Max(n_all_cameras, 1));
		for (i = 0; i < n_all_cameras; i++)
			elems[i] = Int32GetDatum(all_cameras[i]);
		PG_RETURN_ARRAYTYPE_P(construct_array(elems, n_all_cameras, INT4OID, 4, true, TYPALIGN_INT));
	}
	ids = palloc(sizeof(int32) * Max(list_length(pc->cameras[perm]), 1));
	foreach(lc, pc->cameras[perm])
	{
		CameraPermEntry *entry = lfirst(lc);

		if (limits_allow(&entry->limits, now, 0, false))
			ids[n++] = entry->key.camera_id;
	}
	qsort(ids, n, sizeof(int32), int32_cmp);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
		elems[i] = Int32GetDatum(ids[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

static bool
holds_anywhere(PrincipalCache *pc, int perm)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();
	ListCell   *lc;

	if (suspended(pc, perm))
		return false;
	if (pc->allow_all || limits_allow(&pc->all_scope[perm], now, 0, false))
		return true;
	foreach(lc, pc->cameras[perm])
		if (limits_allow(&((CameraPermEntry *) lfirst(lc))->limits, now, 0, false))
			return true;
	return false;
}

/*
 * vms.has_permission(permission text, scope_all boolean): held now on at
 * least one camera, or (scope_all) through a grant of scope "all".  The
 * same for the API caller: vms._invoker_holds().
 */
static Datum
holds_permission_for(FunctionCallInfo fcinfo, Oid roleid)
{
	int			perm = permission_arg(fcinfo, 0);
	PrincipalCache *pc = authz_principal(roleid);

	if (suspended(pc, perm))
		PG_RETURN_BOOL(false);
	if (PG_GETARG_BOOL(1))
		PG_RETURN_BOOL(pc->allow_all ||
					   limits_allow(&pc->all_scope[perm],
									GetCurrentStatementStartTimestamp(), 0, false));
	PG_RETURN_BOOL(holds_anywhere(pc, perm));
}

/* vms.has_permission(permission text, scope_all boolean) */
Datum
vms_holds_permission(PG_FUNCTION_ARGS)
{
	return holds_permission_for(fcinfo, GetUserId());
}

/*
 * vms.visible_cameras() returns integer[]: cameras on which the current
 * user holds any permission now.  The RLS policy of vms.cameras uses it.
 */
Datum
vms_visible_cameras(PG_FUNCTION_ARGS)
{
	PrincipalCache *pc;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int32	   *ids;
	int			n = 0,
				m = 0,
				perm,
				i;
	Datum	   *elems;

	pc = authz_principal(GetUserId());
	for (perm = 0; perm < n_permissions; perm++)
		if (!suspended(pc, perm) &&
			(pc->allow_all || limits_allow(&pc->all_scope[perm], now, 0, false)))
		{
			authz_load_all_cameras();
			elems = palloc(sizeof(Datum) * Max(n_all_cameras, 1));
			for (i = 0; i < n_all_cameras; i++)
				elems[i] = Int32GetDatum(all_cameras[i]);
			PG_RETURN_ARRAYTYPE_P(construct_array(elems, n_all_cameras, INT4OID, 4, true, TYPALIGN_INT));
		}
	for (perm = 0; perm < n_permissions; perm++)
		n += list_length(pc->cameras[perm]);
	ids = palloc(sizeof(int32) * Max(n, 1));
	for (perm = 0; perm < n_permissions; perm++)
	{
		ListCell   *lc;

		if (suspended(pc, perm))
			continue;
		foreach(lc, pc->cameras[perm])
		{
			CameraPermEntry *entry = lfirst(lc);

			if (limits_allow(&entry->limits, now, 0, false))
				ids[m++] = entry->key.camera_id;
		}
	}
	qsort(ids, m, sizeof(int32), int32_cmp);
	elems = palloc(sizeof(Datum) * Max(m, 1));
	n = 0;
	for (i = 0; i < m; i++)
		if (i == 0 || ids[i] != ids[i - 1])
			elems[n++] = Int32GetDatum(ids[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

/* vms._invoker_holds(permission text, scope_all boolean) */
Datum
vms_invoker_holds_permission(PG_FUNCTION_ARGS)
{
	return holds_permission_for(fcinfo, invoker_current());
}

static bool
holds_on_group(PrincipalCache *pc, int perm, bool group_null, int32 group_id)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();
	ListCell   *lc;

	if (suspended(pc, perm))
		return false;
	if (pc->allow_all || limits_allow(&pc->all_scope[perm], now, 0, false))
		return true;
	if (group_null)
		return false;
	foreach(lc, pc->groups[perm])
	{
		GroupLimits *gl = lfirst(lc);

		if (gl->group_id == group_id && limits_allow(&gl->limits, now, 0, false))
			return true;
	}
	return false;
}

PG_FUNCTION_INFO_V1(vms_holds_on_group);
PG_FUNCTION_INFO_V1(vms_invoker_holds_on_group);

/*
 * vms.has_permission_on_group(permission text, group_id integer): through a
 * grant on that camera group, or of scope all (a NULL group: scope all only).
 * The same for the API caller: vms._invoker_holds_on_group().
 */
static Datum
holds_on_group_for(FunctionCallInfo fcinfo, Oid roleid)
{
	int			perm;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	perm = permission_arg(fcinfo, 0);
	PG_RETURN_BOOL(holds_on_group(authz_principal(roleid), perm,
								  PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1)));
}

/* vms.has_permission_on_group(permission text, group_id integer) */
Datum
vms_holds_on_group(PG_FUNCTION_ARGS)
{
	return holds_on_group_for(fcinfo, GetUserId());
}

/* vms._invoker_holds_on_group(permission text, group_id integer) */
Datum
vms_invoker_holds_on_group(PG_FUNCTION_ARGS)
{
	return holds_on_group_for(fcinfo, invoker_current());
}

/*
 * vms._is_system_manager(role regrole): superuser, or member of
 * vms_system_manager that has no second factor pending.
 */
Datum
vms_is_system_manager(PG_FUNCTION_ARGS)
{
	Oid			role = PG_GETARG_OID(0);
	Oid			manager = get_role_oid("vms_system_manager", true);
	PrincipalCache *pc;

	if (superuser_arg(role))
		PG_RETURN_BOOL(true);
	if (!OidIsValid(manager) || !has_privs_of_role(role, manager))
		PG_RETURN_BOOL(false);
	pc = authz_principal(role);
	PG_RETURN_BOOL(!second_factor_pending(pc));
}

PG_FUNCTION_INFO_V1(vms_second_factor_pending);

/*
 * vms._second_factor_pending(role regrole): must the role verify a second
 * factor before its administrative permissions work?
 */
Datum
vms_second_factor_pending(PG_FUNCTION_ARGS)
{
	Oid			role = PG_GETARG_OID(0);
	PrincipalCache *pc = authz_principal(role);

	PG_RETURN_BOOL(second_factor_pending(pc));
}

/* Benchmark baseline: the signature of vms.authorize and no work at all. */
Datum
vms_noop_authorize(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(true);
}

/*
 * Statement trigger on the tables the cache is built from: queue a relcache
 * invalidation of vms.grants, which every backend (this one included)
 * receives once the transaction commits.
 */
Datum
vms_authz_invalidate_trigger(PG_FUNCTION_ARGS)
{
	Oid			grants;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("vms._authz_invalidate() must be called as a trigger")));
	grants = get_relname_relid("grants", vms_schema_oid(false));
	if (OidIsValid(grants))
		CacheInvalidateRelcacheByRelid(grants);
	return PointerGetDatum(NULL);
}
