/*-------------------------------------------------------------------------
 * auth_guard.c
 *	  Login lockout and the client-address check, in the authentication
 *	  hook.
 *
 *	  The hook runs before a database is selected, so it cannot read pg_vms
 *	  tables: failed attempts and locks live in a shared-memory hash table
 *	  keyed by role, client address, or both (vms.lockout_scope).  After
 *	  vms.lockout_threshold consecutive failures the key is locked for
 *	  vms.lockout_duration; while locked, even the right password is refused
 *	  with exactly the message a wrong one gets, so the refusal tells an
 *	  attacker nothing.  Attempts during a lock neither extend nor shorten it
 *	  (unless vms.lockout_extend_on_attempt).  Failures, lock starts and
 *	  refusals go to the audit log through the shared-memory queue.
 *
 *	  The postmaster saves the table when it shuts down and reads it back at
 *	  start: locks survive clean restarts (their end is wall-clock time, so a
 *	  restart never lengthens one).  After a crashed child the postmaster
 *	  does not trust shared memory, and the table starts empty.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "pg_vms.h"
#include "audit.h"
#include "audit_queue.h"
#include "auth_guard.h"
#include "client_address.h"
#include "state_file.h"

#define LOCKOUT_FILE		"pg_vms_lockouts.dat"
#define LOCKOUT_MAGIC		0x564d534c	/* "VMSL" */
#define LOCKOUT_VERSION		1
#define LOCAL_ADDRESS		"local"		/* key for Unix-socket connections */

typedef enum LockoutScope
{
	LOCKOUT_SCOPE_ROLE,
	LOCKOUT_SCOPE_ADDRESS,
	LOCKOUT_SCOPE_ROLE_AND_ADDRESS,
	LOCKOUT_SCOPE_ROLE_AT_ADDRESS
} LockoutScope;

static const struct config_enum_entry lockout_scope_options[] = {
	{"role", LOCKOUT_SCOPE_ROLE, false},
	{"address", LOCKOUT_SCOPE_ADDRESS, false},
	{"role_and_address", LOCKOUT_SCOPE_ROLE_AND_ADDRESS, false},
	{"role_at_address", LOCKOUT_SCOPE_ROLE_AT_ADDRESS, false},
	{NULL, 0, false}
};

typedef enum LockoutKind
{
	KIND_ROLE = 1,
	KIND_ADDRESS = 2,
	KIND_ROLE_AT_ADDRESS = 3
} LockoutKind;

static const char *const kind_names[] = {"", "role", "address", "role_at_address"};

/* Hash key: zero-filled so that it can be hashed as bytes. */
typedef struct LockoutKey
{
	int32		kind;
	char		role[NAMEDATALEN];
	char		address[AUDIT_ADDR_LEN];
} LockoutKey;

typedef struct LockoutEntry
{
	LockoutKey	key;
	int32		failures;		/* consecutive failures since the last reset */
	TimestampTz last_failure;
	TimestampTz locked_since;
	TimestampTz locked_until;	/* 0 = not locked; DT_NOEND = held */
	int32		failures_while_locked;	/* wrong attempts refused during this lock */
} LockoutEntry;

typedef struct LockoutShared
{
	LWLock	   *lock;
	bool		full_warned;
} LockoutShared;

typedef enum FailureOutcome
{
	FAILURE_COUNTED,
	FAILURE_LOCK_STARTED,
	FAILURE_WHILE_LOCKED,
	FAILURE_NOT_TRACKED			/* the table is full of locks */
} FailureOutcome;

/* Settings */
static int	lockout_threshold = 3;
static int	lockout_duration_s = 30;
static int	lockout_scope = LOCKOUT_SCOPE_ROLE;
static int	lockout_reset_after_s = 900;
static bool lockout_extend_on_attempt = false;
static bool lockout_hold_after_guessing = true;
static char *lockout_exempt_roles = NULL;
static int	lockout_table_size = 10000;

static LockoutShared *lockout_shared = NULL;
static HTAB *lockout_table = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

static bool
check_exempt_roles(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitIdentifierString(raw, ',', &names);

	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	list_free(names);
	pfree(raw);
	return ok;
}

void
auth_guard_define_settings(void)
{
	DefineCustomIntVariable("vms.lockout_threshold",
							"Failed logins after which a role (or address) is locked out; 0 turns lockout off.",
							NULL,
							&lockout_threshold,
							3, 0, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("vms.lockout_duration",
							"How long a lockout lasts.",
							NULL,
							&lockout_duration_s,
							30, 1, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("vms.lockout_scope",
							 "What failed logins are counted against: role, address, role_and_address (two counters) or role_at_address (one per pair).",
							 NULL,
							 &lockout_scope,
							 LOCKOUT_SCOPE_ROLE, lockout_scope_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("vms.lockout_reset_after",
							"Failures older than this are forgotten; 0 keeps them until a successful login.",
							NULL,
							&lockout_reset_after_s,
							900, 0, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("vms.lockout_extend_on_attempt",
							 "Whether an attempt during a lockout starts the lockout again.",
							 NULL,
							 &lockout_extend_on_attempt,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("vms.lockout_hold_after_guessing",
							 "Whether the right password, given during a lock after vms.lockout_threshold more wrong ones, holds the lock until vms.unlock_login().",
							 "PostgreSQL completes the SCRAM exchange before the authentication hook runs, so a client that reads the protocol learns that a password was right even when the login is then refused; the hold keeps such a guesser out.",
							 &lockout_hold_after_guessing,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("vms.lockout_exempt_roles",
							   "Roles never locked out (service accounts that authenticate by certificate, for example).",
							   "Failures of these roles are still audited.",
							   &lockout_exempt_roles,
							   "",
							   PGC_SIGHUP, GUC_LIST_INPUT | GUC_SUPERUSER_ONLY,
							   check_exempt_roles, NULL, NULL);
	DefineCustomIntVariable("vms.lockout_table_size",
							"Number of roles and addresses the lockout table can track at once.",
							NULL,
							&lockout_table_size,
							10000, 100, 10000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
}

void
auth_guard_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(LockoutShared)));
	RequestAddinShmemSpace(hash_estimate_size(lockout_table_size, sizeof(LockoutEntry)));
	RequestNamedLWLockTranche("pg_vms_lockout", 1);
}

static void lockout_save(int code, Datum arg);
static void lockout_load(void);

void
auth_guard_shmem_startup(void)
{
	bool		found;
	HASHCTL		ctl;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	lockout_shared = ShmemInitStruct("pg_vms lockout", sizeof(LockoutShared), &found);
	if (!found)
	{
		lockout_shared->lock = &(GetNamedLWLockTranche("pg_vms_lockout"))->lock;
		lockout_shared->full_warned = false;
	}
	ctl.keysize = sizeof(LockoutKey);
	ctl.entrysize = sizeof(LockoutEntry);
	lockout_table = ShmemInitHash("pg_vms lockout table",
								  lockout_table_size, lockout_table_size,
								  &ctl, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);

	if (!IsUnderPostmaster)
	{
		lockout_load();
		on_shmem_exit(lockout_save, (Datum) 0);
	}
}

/*
 * The keys one attempt is counted against under the current scope.  A role
 * that does not exist gets no role key: it can never log in, so its lock
 * state cannot be observed, and attempts under made-up names must not fill
 * the table.  Its attempts still count against the address.
 */
static int
lockout_keys(const char *role, bool role_exists, const char *address, LockoutKey *keys)
{
	int			n = 0;
	const char *addr = (address && address[0]) ? address : LOCAL_ADDRESS;

	memset(keys, 0, sizeof(LockoutKey) * 2);
	if (role_exists &&
		(lockout_scope == LOCKOUT_SCOPE_ROLE || lockout_scope == LOCKOUT_SCOPE_ROLE_AND_ADDRESS))
	{
		keys[n].kind = KIND_ROLE;
		strlcpy(keys[n].role, role, NAMEDATALEN);
		n++;
	}
	if (lockout_scope == LOCKOUT_SCOPE_ADDRESS || lockout_scope == LOCKOUT_SCOPE_ROLE_AND_ADDRESS)
	{
		keys[n].kind = KIND_ADDRESS;
		strlcpy(keys[n].address, addr, AUDIT_ADDR_LEN);
		n++;
	}
	if (role_exists && lockout_scope == LOCKOUT_SCOPE_ROLE_AT_ADDRESS)
	{
		keys[n].kind = KIND_ROLE_AT_ADDRESS;
		strlcpy(keys[n].role, role, NAMEDATALEN);
		strlcpy(keys[n].address, addr, AUDIT_ADDR_LEN);
		n++;
	}
	return n;
}

/* End of the lock on role/address, or 0 when there is none now. */
static TimestampTz
lockout_locked_until(const char *role, bool role_exists, const char *address, TimestampTz now)
{
	LockoutKey	keys[2];
	int			n = lockout_keys(role, role_exists, address, keys);
	TimestampTz until = 0;
	int			i;

	if (lockout_table == NULL)
		return 0;
	LWLockAcquire(lockout_shared->lock, LW_SHARED);
	if (hash_get_num_entries(lockout_table) > 0)
		for (i = 0; i < n; i++)
		{
			LockoutEntry *e = hash_search(lockout_table, &keys[i], HASH_FIND, NULL);

			if (e && e->locked_until > now)
				until = Max(until, e->locked_until);
		}
	LWLockRelease(lockout_shared->lock);
	return until;
}

/*
 * Make room by forgetting the entry that matters least: not locked, oldest
 * failure.  Locks are never evicted (that would let a flood unlock a role).
 */
static bool
lockout_evict(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	LockoutEntry *e;
	LockoutEntry *victim = NULL;

	hash_seq_init(&seq, lockout_table);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->locked_until > now)
			continue;
		if (victim == NULL || e->last_failure < victim->last_failure)
			victim = e;
	}
	if (victim == NULL)
		return false;
	hash_search(lockout_table, &victim->key, HASH_REMOVE, NULL);
	return true;
}

/* Count one failure; *locked_until is set when the key is or becomes locked. */
static FailureOutcome
lockout_fail(const char *role, bool role_exists, const char *address, TimestampTz now,
			 TimestampTz *locked_until)
{
	LockoutKey	keys[2];
	int			n = lockout_keys(role, role_exists, address, keys);
	FailureOutcome outcome = FAILURE_COUNTED;
	int			i;

	*locked_until = 0;
	LWLockAcquire(lockout_shared->lock, LW_EXCLUSIVE);
	/* A key that is locked now: the attempt is refused, not counted. */
	for (i = 0; i < n; i++)
	{
		LockoutEntry *e = hash_search(lockout_table, &keys[i], HASH_FIND, NULL);

		if (e && e->locked_until > now)
		{
			e->failures_while_locked++;
			if (lockout_extend_on_attempt && e->locked_until != DT_NOEND)
				e->locked_until = TimestampTzPlusMilliseconds(now, lockout_duration_s * 1000L);
			*locked_until = Max(*locked_until, e->locked_until);
			outcome = FAILURE_WHILE_LOCKED;
		}
	}
	if (outcome == FAILURE_WHILE_LOCKED)
	{
		LWLockRelease(lockout_shared->lock);
		return outcome;
	}
	for (i = 0; i < n; i++)
	{
		bool		found;
		LockoutEntry *e = hash_search(lockout_table, &keys[i], HASH_ENTER_NULL, &found);

		if (e == NULL && lockout_evict(now))
			e = hash_search(lockout_table, &keys[i], HASH_ENTER_NULL, &found);
		if (e == NULL)
		{
			if (!lockout_shared->full_warned)
				ereport(WARNING,
						(errmsg("pg_vms: the lockout table is full of locks; new failures are not counted"),
						 errhint("Raise vms.lockout_table_size.")));
			lockout_shared->full_warned = true;
			outcome = FAILURE_NOT_TRACKED;
			continue;
		}
		if (!found ||
			(lockout_reset_after_s > 0 &&
			 e->last_failure < TimestampTzPlusMilliseconds(now, -lockout_reset_after_s * 1000L)) ||
			(e->locked_until != 0 && e->locked_until <= now))
		{
			/* New, stale, or a lock that has ended: count from zero. */
			e->failures = 0;
			e->locked_since = 0;
			e->locked_until = 0;
			e->failures_while_locked = 0;
		}
		e->failures++;
		e->last_failure = now;
		if (lockout_threshold > 0 && e->failures >= lockout_threshold)
		{
			e->locked_since = now;
			e->locked_until = TimestampTzPlusMilliseconds(now, lockout_duration_s * 1000L);
			e->failures = 0;
			e->failures_while_locked = 0;
			*locked_until = Max(*locked_until, e->locked_until);
			outcome = FAILURE_LOCK_STARTED;
		}
	}
	LWLockRelease(lockout_shared->lock);
	return outcome;
}

/*
 * The right password arrived during a lock.  After vms.lockout_threshold
 * wrong ones in the same lock it is most likely a guess that hit (the
 * client may have seen the SCRAM exchange succeed): hold the lock until an
 * administrator lifts it.  Returns true if it did.
 */
static bool
lockout_hold(const char *role, bool role_exists, const char *address, TimestampTz now)
{
	LockoutKey	keys[2];
	int			n = lockout_keys(role, role_exists, address, keys);
	int			i;
	bool		held = false;

	if (!lockout_hold_after_guessing)
		return false;
	LWLockAcquire(lockout_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		LockoutEntry *e = hash_search(lockout_table, &keys[i], HASH_FIND, NULL);

		if (e && e->locked_until > now && e->failures_while_locked >= lockout_threshold)
		{
			if (e->locked_until != DT_NOEND)
				held = true;
			e->locked_until = DT_NOEND;
		}
	}
	LWLockRelease(lockout_shared->lock);
	return held;
}

/*
 * A successful login clears the role's counters.  A pure address counter
 * is left to age out: one valid login from an address must not wipe the
 * failures a password sprayer ran up from it against other roles.
 */
static void
lockout_clear(const char *role, bool role_exists, const char *address, TimestampTz now)
{
	LockoutKey	keys[2];
	int			n = lockout_keys(role, role_exists, address, keys);
	int			i;
	bool		any = false;

	if (lockout_table == NULL)
		return;
	LWLockAcquire(lockout_shared->lock, LW_SHARED);
	for (i = 0; i < n; i++)
		if (keys[i].kind != KIND_ADDRESS &&
			hash_search(lockout_table, &keys[i], HASH_FIND, NULL) != NULL)
			any = true;
	LWLockRelease(lockout_shared->lock);
	if (!any)
		return;
	LWLockAcquire(lockout_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		LockoutEntry *e;

		if (keys[i].kind == KIND_ADDRESS)
			continue;
		e = hash_search(lockout_table, &keys[i], HASH_FIND, NULL);
		if (e && e->locked_until <= now)
			hash_search(lockout_table, &keys[i], HASH_REMOVE, NULL);
	}
	LWLockRelease(lockout_shared->lock);
}

static bool
role_is_exempt(const char *role)
{
	char	   *raw;
	List	   *names;
	ListCell   *lc;
	bool		exempt = false;

	if (lockout_exempt_roles == NULL || lockout_exempt_roles[0] == '\0')
		return false;
	raw = pstrdup(lockout_exempt_roles);
	if (SplitIdentifierString(raw, ',', &names))
		foreach(lc, names)
			if (strcmp((char *) lfirst(lc), role) == 0)
				exempt = true;
	list_free(names);
	pfree(raw);
	return exempt;
}

/*
 * Per authentication method: its pg_hba.conf name (for the audit entry) and
 * the message PostgreSQL's auth_failed() gives when it fails, which a
 * refusal by pg_vms repeats word for word.
 */
typedef struct AuthMethodInfo
{
	const char *label;
	const char *failure;
} AuthMethodInfo;

static const AuthMethodInfo auth_methods[] = {
	[uaReject] = {"reject", gettext_noop("authentication failed for user \"%s\": host rejected")},
	[uaImplicitReject] = {"reject", gettext_noop("authentication failed for user \"%s\": host rejected")},
	[uaTrust] = {"trust", gettext_noop("\"trust\" authentication failed for user \"%s\"")},
	[uaIdent] = {"ident", gettext_noop("Ident authentication failed for user \"%s\"")},
	[uaPassword] = {"password", gettext_noop("password authentication failed for user \"%s\"")},
	[uaMD5] = {"md5", gettext_noop("password authentication failed for user \"%s\"")},
	[uaSCRAM] = {"scram-sha-256", gettext_noop("password authentication failed for user \"%s\"")},
	[uaGSS] = {"gss", gettext_noop("GSSAPI authentication failed for user \"%s\"")},
	[uaSSPI] = {"sspi", gettext_noop("SSPI authentication failed for user \"%s\"")},
	[uaPAM] = {"pam", gettext_noop("PAM authentication failed for user \"%s\"")},
	[uaBSD] = {"bsd", gettext_noop("BSD authentication failed for user \"%s\"")},
	[uaLDAP] = {"ldap", gettext_noop("LDAP authentication failed for user \"%s\"")},
	[uaCert] = {"cert", gettext_noop("certificate authentication failed for user \"%s\"")},
	[uaRADIUS] = {"radius", gettext_noop("RADIUS authentication failed for user \"%s\"")},
	[uaPeer] = {"peer", gettext_noop("Peer authentication failed for user \"%s\"")},
};

static const AuthMethodInfo *
auth_method_info(UserAuth method)
{
	static const AuthMethodInfo unknown = {
		"unknown", gettext_noop("authentication failed for user \"%s\": invalid authentication method")
	};

	if ((int) method < 0 || method > USER_AUTH_LAST || auth_methods[method].label == NULL)
		return &unknown;
	return &auth_methods[method];
}

/* Queue an audit entry about a login attempt (no transaction exists yet). */
static void
audit_login(Port *port, const char *address, const char *action,
			const char *outcome, const char *reason, TimestampTz locked_until)
{
	AuditQueueEntry entry;
	StringInfoData details;

	audit_entry_init(&entry, InvalidOid, action, outcome);
	audit_copy_text(entry.actor, port->user_name ? port->user_name : "", AUDIT_ACTOR_LEN);
	audit_copy_text(entry.target, port->user_name ? port->user_name : "", AUDIT_TARGET_LEN);
	strlcpy(entry.client_addr, address, AUDIT_ADDR_LEN);

	initStringInfo(&details);
	appendStringInfoString(&details, "{\"database\": ");
	escape_json(&details, port->database_name ? port->database_name : "");
	appendStringInfo(&details, ", \"method\": \"%s\"",
					 port->hba ? auth_method_info(port->hba->auth_method)->label : "none");
	if (reason)
		appendStringInfo(&details, ", \"reason\": \"%s\"", reason);
	if (locked_until)
	{
		appendStringInfoString(&details, ", \"locked_until\": ");
		escape_json(&details, timestamptz_to_str(locked_until));
	}
	appendStringInfoChar(&details, '}');
	if (details.len < AUDIT_DETAILS_LEN)
		strlcpy(entry.details, details.data, AUDIT_DETAILS_LEN);
	pfree(details.data);
	(void) audit_queue_push(&entry);
}

/*
 * Refuse the connection with exactly the message and SQLSTATE PostgreSQL
 * gives for a failed attempt with this method: no lockout oracle.  Why it
 * was refused goes to the server log only.
 */
static void
refuse_login(Port *port, const char *why)
{
	UserAuth	method = port->hba->auth_method;
	bool		password = method == uaPassword || method == uaMD5 || method == uaSCRAM;

	ereport(FATAL,
			(errcode(password ? ERRCODE_INVALID_PASSWORD : ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg(auth_method_info(method)->failure, port->user_name),
			 errdetail_log("pg_vms: %s", why)));
}

static void
auth_guard_hook(Port *port, int status)
{
	char		address[AUDIT_ADDR_LEN];
	TimestampTz now;
	TimestampTz until;
	Oid			roleid;
	bool		role_exists;
	bool		exempt;
	bool		counting;

	if (prev_client_auth_hook)
		(*prev_client_auth_hook) (port, status);

	/* The client hung up at the password prompt (psql's first try): not an attempt. */
	if (status == STATUS_EOF || port == NULL || port->hba == NULL ||
		port->user_name == NULL || lockout_table == NULL)
		return;
	audit_client_addr(address, sizeof(address));
	now = GetCurrentTimestamp();
	roleid = get_role_oid(port->user_name, true);
	role_exists = OidIsValid(roleid);
	exempt = role_is_exempt(port->user_name);
	/*
	 * Peer authentication (Unix socket, operating-system user) cannot be
	 * guessed at and is the way back in for the server's own administrator:
	 * never locked.  Allow-lists still apply to it.
	 */
	counting = !exempt && lockout_threshold > 0 && port->hba->auth_method != uaPeer;

	if (status == STATUS_OK)
	{
		char		rule_role[NAMEDATALEN];

		if (counting && (until = lockout_locked_until(port->user_name, role_exists, address, now)) != 0)
		{
			if (lockout_hold(port->user_name, role_exists, address, now))
				audit_login(port, address, "login_lockout", "held", "right_password_after_guessing", DT_NOEND);
			else if (lockout_extend_on_attempt)
			{
				TimestampTz ignored;

				(void) lockout_fail(port->user_name, role_exists, address, now, &ignored);
			}
			audit_login(port, address, "login", "denied", "locked", until);
			refuse_login(port, psprintf("role or address is locked out until %s",
										timestamptz_to_str(until)));
		}
		if (role_exists &&
			!client_address_allowed(port, roleid, rule_role, sizeof(rule_role)))
		{
			audit_login(port, address, "login", "denied", "client_address", 0);
			refuse_login(port, psprintf("client address is not in the allow-list of role \"%s\"",
										rule_role));
		}
		if (counting)
			lockout_clear(port->user_name, role_exists, address, now);
		return;
	}

	/* A failed attempt; PostgreSQL refuses it right after this hook. */
	if (!counting)
	{
		audit_login(port, address, "login", "failed", "bad_credentials", 0);
		return;
	}
	switch (lockout_fail(port->user_name, role_exists, address, now, &until))
	{
		case FAILURE_WHILE_LOCKED:
			audit_login(port, address, "login", "denied", "locked", until);
			break;
		case FAILURE_LOCK_STARTED:
			audit_login(port, address, "login", "failed", "bad_credentials", 0);
			audit_login(port, address, "login_lockout", "locked", NULL, until);
			break;
		case FAILURE_COUNTED:
		case FAILURE_NOT_TRACKED:
			audit_login(port, address, "login", "failed", "bad_credentials", 0);
			break;
	}
}

void
auth_guard_install_hook(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = auth_guard_hook;
}

/* ---- Second-factor failures (from a running session) ---------------- */

bool
lockout_is_locked(const char *role, const char *client_addr)
{
	if (lockout_threshold == 0 || role_is_exempt(role))
		return false;
	return lockout_locked_until(role, true, client_addr, GetCurrentTimestamp()) != 0;
}

void
lockout_note_failure(const char *role, const char *client_addr, const char *source)
{
	AuditQueueEntry entry;
	TimestampTz until;

	if (lockout_threshold == 0 || role_is_exempt(role) || lockout_table == NULL)
		return;
	if (lockout_fail(role, true, client_addr, GetCurrentTimestamp(), &until) == FAILURE_LOCK_STARTED)
	{
		audit_entry_init(&entry, InvalidOid, "login_lockout", "locked");
		audit_copy_text(entry.actor, role, AUDIT_ACTOR_LEN);
		audit_copy_text(entry.target, role, AUDIT_TARGET_LEN);
		snprintf(entry.details, AUDIT_DETAILS_LEN,
				 "{\"reason\": \"%s\", \"locked_until\": \"%s\"}",
				 source, timestamptz_to_str(until));
		(void) audit_queue_push(&entry);
	}
}

void
lockout_note_success(const char *role, const char *client_addr)
{
	lockout_clear(role, true, client_addr, GetCurrentTimestamp());
}

/* ---- Persistence (postmaster only) ------------------------------------ */

static void
lockout_save(int code, Datum arg)
{
	HASH_SEQ_STATUS seq;
	LockoutEntry *e;
	LockoutEntry *buf;
	long		n = 0;

	/*
	 * After a child crashed (code 1) the table may be half-updated, and
	 * walking a damaged hash could keep the postmaster from coming back, as
	 * pg_stat_statements also judges: locks survive clean restarts only.
	 */
	if (lockout_table == NULL || code != 0)
		return;
	buf = malloc(sizeof(LockoutEntry) * Max(hash_get_num_entries(lockout_table), 1));
	if (buf == NULL)
		return;
	hash_seq_init(&seq, lockout_table);
	while ((e = hash_seq_search(&seq)) != NULL)
		buf[n++] = *e;
	if (n == 0)
		unlink(LOCKOUT_FILE);
	else if (state_file_write(LOCKOUT_FILE, LOCKOUT_MAGIC, LOCKOUT_VERSION,
							  buf, sizeof(LockoutEntry) * n))
		ereport(LOG, (errmsg("pg_vms: saved %ld login lockout entries", n)));
	free(buf);
}

static void
lockout_load(void)
{
	Size		len;
	LockoutEntry *buf = state_file_read(LOCKOUT_FILE, LOCKOUT_MAGIC, LOCKOUT_VERSION, &len);
	TimestampTz now = GetCurrentTimestamp();
	long		n,
				i,
				kept = 0;

	if (buf == NULL)
		return;
	n = len / sizeof(LockoutEntry);
	for (i = 0; i < n && kept < lockout_table_size; i++)
	{
		LockoutEntry *e;
		bool		found;

		/* Ended locks and failures that have aged out are not restored. */
		if (buf[i].locked_until <= now &&
			(buf[i].failures == 0 ||
			 (lockout_reset_after_s > 0 &&
			  buf[i].last_failure < TimestampTzPlusMilliseconds(now, -lockout_reset_after_s * 1000L))))
			continue;
		if (buf[i].key.kind < KIND_ROLE || buf[i].key.kind > KIND_ROLE_AT_ADDRESS)
			continue;
		buf[i].key.role[NAMEDATALEN - 1] = '\0';
		buf[i].key.address[AUDIT_ADDR_LEN - 1] = '\0';
		e = hash_search(lockout_table, &buf[i].key, HASH_ENTER_NULL, &found);
		if (e == NULL)
			break;
		*e = buf[i];
		kept++;
	}
	free(buf);
	unlink(LOCKOUT_FILE);
	ereport(LOG, (errmsg("pg_vms: restored %ld login lockout entries", kept)));
}

/* ---- SQL ---------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(vms_lockouts);
PG_FUNCTION_INFO_V1(vms_unlock);

/*
 * vms._lockouts() returns setof (kind text, role text, client_addr text,
 * failures integer, last_failure timestamptz, locked_since timestamptz,
 * locked_until timestamptz): what the table holds now.
 */
Datum
vms_lockouts(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	LockoutEntry *e;
	LockoutEntry *copy;
	long		n = 0,
				i;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	if (lockout_table == NULL)
		return (Datum) 0;
	LWLockAcquire(lockout_shared->lock, LW_SHARED);
	copy = palloc(sizeof(LockoutEntry) * Max(hash_get_num_entries(lockout_table), 1));
	hash_seq_init(&seq, lockout_table);
	while ((e = hash_seq_search(&seq)) != NULL)
		copy[n++] = *e;
	LWLockRelease(lockout_shared->lock);

	for (i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {false};
		bool		locked = copy[i].locked_until > now;

		if (!locked && copy[i].failures == 0)
			continue;
		if (copy[i].key.kind < KIND_ROLE || copy[i].key.kind > KIND_ROLE_AT_ADDRESS)
			continue;
		values[0] = CStringGetTextDatum(kind_names[copy[i].key.kind]);
		values[1] = CStringGetTextDatum(copy[i].key.role);
		nulls[1] = copy[i].key.role[0] == '\0';
		values[2] = CStringGetTextDatum(copy[i].key.address);
		nulls[2] = copy[i].key.address[0] == '\0';
		values[3] = Int32GetDatum(copy[i].failures);
		values[4] = TimestampTzGetDatum(copy[i].last_failure);
		values[5] = TimestampTzGetDatum(copy[i].locked_since);
		nulls[5] = !locked;
		values[6] = TimestampTzGetDatum(copy[i].locked_until);
		nulls[6] = !locked;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * vms._unlock(role text, client_addr text) returns integer: removes the
 * entries of the role (any address) or, with client_addr, of that address
 * too.  NULL role with an address: that address only.
 */
Datum
vms_unlock(PG_FUNCTION_ARGS)
{
	char	   *role = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *address = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	HASH_SEQ_STATUS seq;
	LockoutEntry *e;
	LockoutKey *doomed;
	long		n = 0,
				i;

	if (lockout_table == NULL)
		PG_RETURN_INT32(0);
	LWLockAcquire(lockout_shared->lock, LW_EXCLUSIVE);
	doomed = palloc(sizeof(LockoutKey) * Max(hash_get_num_entries(lockout_table), 1));
	hash_seq_init(&seq, lockout_table);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		bool		role_match = role != NULL && strcmp(e->key.role, role) == 0;
		bool		addr_match = address != NULL && strcmp(e->key.address, address) == 0;

		if ((role_match && (address == NULL || e->key.kind == KIND_ROLE || addr_match)) ||
			(role == NULL && addr_match))
			doomed[n++] = e->key;
	}
	for (i = 0; i < n; i++)
		hash_search(lockout_table, &doomed[i], HASH_REMOVE, NULL);
	LWLockRelease(lockout_shared->lock);
	PG_RETURN_INT32((int32) n);
}
