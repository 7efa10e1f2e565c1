/*-------------------------------------------------------------------------
 * client_address.c
 *	  Per-role client address allow-lists (vms.client_address_rules),
 *	  enforced by the authentication hook.
 *
 *	  The hook runs before a database is chosen and cannot read the table,
 *	  so the rules are published to shared memory.  A change is published
 *	  when its transaction commits (the API functions lock the table, so
 *	  changes commit one at a time and the last publication is the table's
 *	  state); the postmaster saves the published rules to a file at each
 *	  publication's end and reads it at start, and the audit worker
 *	  republishes from the table when it starts (after a restore, say).
 *
 *	  Semantics: every role the connecting role is a member of (itself
 *	  included) that has rules must allow the address: one rule of each such
 *	  role must contain it.  Roles without rules do not restrict.  A Unix
 *	  socket connection counts as coming from the loopback address.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq/ifaddr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/memutils.h"

#include "pg_vms.h"
#include "client_address.h"
#include "state_file.h"

#define RULES_FILE		"pg_vms_client_addresses.dat"
#define RULES_MAGIC		0x564d5341	/* "VMSA" */
#define RULES_VERSION	1

typedef struct AddressRule
{
	Oid			roleid;
	char		role[NAMEDATALEN];
	struct sockaddr_storage addr;
	struct sockaddr_storage mask;
} AddressRule;

typedef struct ClientAddressShared
{
	LWLock	   *lock;
	uint64		generation;
	int			nrules;
	AddressRule rules[FLEXIBLE_ARRAY_MEMBER];	/* sorted by roleid */
} ClientAddressShared;

static int	client_address_max_rules = 1000;
static ClientAddressShared *shared = NULL;

/*
 * Rules read in this transaction, to be published when it commits.  Each
 * staging remembers the subtransaction that made it: if that one rolls back
 * (ROLLBACK TO SAVEPOINT), the staging before it is what stands.
 */
typedef struct Staging
{
	struct Staging *prev;
	SubTransactionId subxid;
	int			n;
	AddressRule rules[FLEXIBLE_ARRAY_MEMBER];
} Staging;

static Staging *staged = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(ClientAddressShared, rules),
					mul_size(client_address_max_rules, sizeof(AddressRule)));
}

void
client_address_define_settings(void)
{
	DefineCustomIntVariable("vms.client_address_max_rules",
							"Number of client address rules shared memory can hold.",
							NULL,
							&client_address_max_rules,
							1000, 10, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
}

void
client_address_shmem_request(void)
{
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("pg_vms_client_addresses", 1);
}

static void
publish(const AddressRule *rules, int n)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	memcpy(shared->rules, rules, sizeof(AddressRule) * n);
	shared->nrules = n;
	shared->generation++;
	LWLockRelease(shared->lock);
}

void
client_address_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_vms client addresses", shared_size(), &found);
	if (!found)
	{
		shared->lock = &(GetNamedLWLockTranche("pg_vms_client_addresses"))->lock;
		shared->generation = 0;
		shared->nrules = 0;
	}
	LWLockRelease(AddinShmemInitLock);

	/* The postmaster restores the last published rules before any login. */
	if (!IsUnderPostmaster && !found)
	{
		Size		len;
		AddressRule *rules = state_file_read(RULES_FILE, RULES_MAGIC, RULES_VERSION, &len);

		if (rules != NULL)
		{
			int			n = Min(len / sizeof(AddressRule), (Size) client_address_max_rules);
			int			i;

			for (i = 0; i < n; i++)
				rules[i].role[NAMEDATALEN - 1] = '\0';
			publish(rules, n);
			free(rules);
			ereport(LOG, (errmsg("pg_vms: restored %d client address rules", n)));
		}
	}
}

static void
drop_staging(Staging *upto)
{
	while (staged != upto)
	{
		Staging    *prev = staged->prev;

		pfree(staged);
		staged = prev;
	}
}

static void
client_address_xact_callback(XactEvent event, void *arg)
{
	if (staged == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			/* COMMIT PREPARED, later and elsewhere, could not publish them. */
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that changed client address rules")));
			break;
		case XACT_EVENT_COMMIT:
			/* Committed: make it true for logins, then for the next start. */
			publish(staged->rules, staged->n);
			(void) state_file_write(RULES_FILE, RULES_MAGIC, RULES_VERSION,
									staged->rules, sizeof(AddressRule) * staged->n);
			drop_staging(NULL);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			drop_staging(NULL);
			break;
		default:
			break;
	}
}

static void
client_address_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg)
{
	Staging    *s;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		while (staged != NULL && staged->subxid == mySubid)
		{
			s = staged->prev;
			pfree(staged);
			staged = s;
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (s = staged; s != NULL && s->subxid == mySubid; s = s->prev)
			s->subxid = parentSubid;
	}
}

void
client_address_install_callbacks(void)
{
	RegisterXactCallback(client_address_xact_callback, NULL);
	RegisterSubXactCallback(client_address_subxact_callback, NULL);
}

static int
rule_cmp(const void *a, const void *b)
{
	Oid			x = ((const AddressRule *) a)->roleid;
	Oid			y = ((const AddressRule *) b)->roleid;

	return (x > y) - (x < y);
}

/* An inet/cidr value as the address and mask pg_range_sockaddr compares. */
static void
rule_from_inet(AddressRule *rule, inet *net)
{
	char		bits[8];

	memset(&rule->addr, 0, sizeof(rule->addr));
	if (ip_family(net) == PGSQL_AF_INET)
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) &rule->addr;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ip_addr(net), 4);
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &rule->addr;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip_addr(net), 16);
	}
	snprintf(bits, sizeof(bits), "%d", ip_bits(net));
	if (pg_sockaddr_cidr_mask(&rule->mask, bits, rule->addr.ss_family) != 0)
		elog(ERROR, "invalid prefix length %s", bits);
}

/*
 * Read the rules of roles that exist, to be published when this
 * transaction commits.  The table lock makes publishers take turns, so the
 * last one to commit publishes what the table holds.
 */
static int
stage_rules(void)
{
	uint64		i;
	Staging    *stage;
	AddressRule *rules;
	int			n = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("LOCK TABLE vms.client_address_rules IN SHARE ROW EXCLUSIVE MODE",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock vms.client_address_rules");
	if (SPI_execute("SELECT r.oid, r.rolname::text, c.network "
					"FROM vms.client_address_rules c "
					"JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) c.role",
					false /* a fresh snapshot: an AFTER trigger must see its statement's rows */, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read vms.client_address_rules");
	if (SPI_processed > (uint64) client_address_max_rules)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("%llu client address rules exceed vms.client_address_max_rules (%d)",
						(unsigned long long) SPI_processed, client_address_max_rules),
				 errhint("Raise vms.client_address_max_rules and restart the server.")));
	stage = MemoryContextAllocZero(TopMemoryContext,
								   offsetof(Staging, rules) + sizeof(AddressRule) * Max(SPI_processed, 1));
	rules = stage->rules;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		char	   *name;

		rules[n].roleid = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		name = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		strlcpy(rules[n].role, name, NAMEDATALEN);
		rule_from_inet(&rules[n], DatumGetInetPP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull)));
		n++;
	}
	SPI_finish();
	qsort(rules, n, sizeof(AddressRule), rule_cmp);

	stage->n = n;
	stage->subxid = GetCurrentSubTransactionId();
	stage->prev = staged;
	staged = stage;
	return n;
}

PG_FUNCTION_INFO_V1(vms_client_address_publish);
PG_FUNCTION_INFO_V1(vms_client_addresses_changed);

/* vms._client_address_publish() returns integer: the number of rules staged */
Datum
vms_client_address_publish(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(stage_rules());
}

/* Statement trigger on vms.client_address_rules: any change is published. */
Datum
vms_client_addresses_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("vms._client_addresses_changed() must be called as a trigger")));
	(void) stage_rules();
	return PointerGetDatum(NULL);
}

/* Does one rule contain the address?  A Unix socket counts as loopback. */
static bool
rule_matches(const AddressRule *rule, const struct sockaddr_storage *raddr)
{
	struct sockaddr_storage loop;

	if (raddr->ss_family == AF_INET || raddr->ss_family == AF_INET6)
		return pg_range_sockaddr(raddr, &rule->addr, &rule->mask) != 0;
	memset(&loop, 0, sizeof(loop));
	if (rule->addr.ss_family == AF_INET)
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) &loop;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &loop;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
	}
	return pg_range_sockaddr(&loop, &rule->addr, &rule->mask) != 0;
}

bool
client_address_allowed(Port *port, Oid roleid, char *rule_role, Size size)
{
	AddressRule *rules;
	int			n,
				i,
				start;

	if (shared == NULL)
		return true;
	/* Copy out: membership checks read catalogs and must not hold the lock. */
	LWLockAcquire(shared->lock, LW_SHARED);
	n = shared->nrules;
	if (n == 0)
	{
		LWLockRelease(shared->lock);
		return true;
	}
	rules = palloc(sizeof(AddressRule) * n);
	memcpy(rules, shared->rules, sizeof(AddressRule) * n);
	LWLockRelease(shared->lock);

	for (start = 0; start < n; start = i)
	{
		Oid			role = rules[start].roleid;
		bool		applies = (role == roleid) || is_member_of_role_nosuper(roleid, role);
		bool		matched = false;

		for (i = start; i < n && rules[i].roleid == role; i++)
			if (applies && !matched && rule_matches(&rules[i], &port->raddr.addr))
				matched = true;
		if (applies && !matched)
		{
			strlcpy(rule_role, rules[start].role, size);
			pfree(rules);
			return false;
		}
	}
	pfree(rules);
	return true;
}
