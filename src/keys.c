/*-------------------------------------------------------------------------
 * keys.c
 *	  The master key.
 *
 *	  It comes from vms.key_file (a file of 64 hex digits, mode 0600, owned
 *	  by the server's user) or vms.key_command (a program that prints them);
 *	  "%v" in either is replaced by the key version.  The postmaster loads
 *	  the current version, and the one before it, when it creates shared
 *	  memory, before any backend exists.  The keys live in a page of shared
 *	  memory of their own, locked in RAM and left out of core dumps where the
 *	  system allows, and wiped when the postmaster exits.  Nothing here ever
 *	  returns a key to SQL or prints it.
 *
 *	  The current version is kept in $PGDATA/pg_vms_master_key_version.
 *	  Rotation (vms.rotate_master_key) loads version N+1 first, rewraps every
 *	  data key, and makes N+1 current when its transaction commits.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "pg_vms.h"
#include "keys.h"

#define KEY_SLOTS			4
#define KEY_VERSION_FILE	"pg_vms_master_key_version"
#define KEY_STATUS_LEN		256
#define KEY_PAGE			8192

char	   *vms_key_file = NULL;
char	   *vms_key_command = NULL;

typedef struct KeySlot
{
	int32		version;		/* 0 = empty */
	uint8		key[MASTER_KEY_LEN];
} KeySlot;

typedef struct KeyStore
{
	LWLock	   *lock;
	int32		current_version;	/* 0 = no key */
	char		status[KEY_STATUS_LEN]; /* why there is no key */
	KeySlot		slots[KEY_SLOTS];
} KeyStore;

static KeyStore *store = NULL;

/* A version made current by this transaction, published at commit. */
static int32 pending_current = 0;
static int	pending_nest_level = 0;

void
keys_define_settings(void)
{
	DefineCustomStringVariable("vms.key_file",
							   "File holding the master key as 64 hex digits; %v is replaced by the key version.",
							   "Must be mode 0600 and owned by the server's user.",
							   &vms_key_file, "", PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("vms.key_command",
							   "Program that prints the master key as 64 hex digits; %v is replaced by the key version.",
							   NULL,
							   &vms_key_command, "", PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
}

void
keys_shmem_request(void)
{
	/* A whole page of its own, so it can be locked and kept out of dumps. */
	RequestAddinShmemSpace(sizeof(KeyStore) + 2 * KEY_PAGE);
	RequestNamedLWLockTranche("pg_vms_keys", 1);
}

/* Replace %v by the version and %% by %. */
static char *
expand_version(const char *pattern, int32 version)
{
	StringInfoData buf;
	const char *p;

	initStringInfo(&buf);
	for (p = pattern; *p; p++)
	{
		if (p[0] == '%' && p[1] == 'v')
		{
			appendStringInfo(&buf, "%d", version);
			p++;
		}
		else if (p[0] == '%' && p[1] == '%')
		{
			appendStringInfoChar(&buf, '%');
			p++;
		}
		else
			appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits, then optional whitespace; anything else is refused. */
static bool
parse_key(const char *text, size_t len, uint8 *key)
{
	size_t		i;

	if (len < 2 * MASTER_KEY_LEN)
		return false;
	for (i = 0; i < MASTER_KEY_LEN; i++)
	{
		int			hi = hexval(text[2 * i]);
		int			lo = hexval(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		key[i] = (uint8) ((hi << 4) | lo);
	}
	for (i = 2 * MASTER_KEY_LEN; i < len; i++)
		if (text[i] != '\n' && text[i] != '\r' && text[i] != ' ' && text[i] != '\t')
			return false;
	return true;
}

/*
 * Read one version from the key source into key.  On failure returns false
 * and describes the problem in why (never with key material).
 */
static bool
read_key_source(int32 version, uint8 *key, char *why, size_t whylen)
{
	char		buf[256];
	size_t		len = 0;
	bool		ok = false;

	if (vms_key_file[0] != '\0' && vms_key_command[0] != '\0')
	{
		snprintf(why, whylen, "set only one of vms.key_file and vms.key_command");
		return false;
	}
	if (vms_key_file[0] != '\0')
	{
		char	   *path = expand_version(vms_key_file, version);
		struct stat st;
		int			fd;

		/* Check the file actually opened: no symlink, no swap in between. */
		if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | PG_BINARY, 0)) < 0)
			snprintf(why, whylen, "vms.key_file \"%s\" cannot be opened: %m", path);
		else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		{
			snprintf(why, whylen, "vms.key_file \"%s\" is not a regular file", path);
			close(fd);
		}
		else if (st.st_uid != geteuid())
		{
			snprintf(why, whylen, "vms.key_file \"%s\" is not owned by the server's user", path);
			close(fd);
		}
		else if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		{
			snprintf(why, whylen, "vms.key_file \"%s\" is accessible to group or others (mode %04o; it must be 0600)",
					 path, (unsigned) (st.st_mode & 07777));
			close(fd);
		}
		else
		{
			ssize_t		n = read(fd, buf, sizeof(buf));

			close(fd);
			if (n < 0)
				snprintf(why, whylen, "vms.key_file \"%s\" cannot be read: %m", path);
			else
			{
				len = (size_t) n;
				ok = parse_key(buf, len, key);
				if (!ok)
					snprintf(why, whylen, "vms.key_file \"%s\" does not hold 64 hex digits", path);
			}
		}
		pfree(path);
	}
	else if (vms_key_command[0] != '\0')
	{
		char	   *cmd = expand_version(vms_key_command, version);
		FILE	   *pipe;
		int			status;

		fflush(NULL);
		pipe = popen(cmd, "r");
		if (pipe == NULL)
			snprintf(why, whylen, "vms.key_command could not be started: %m");
		else
		{
			char		drain[256];

			len = fread(buf, 1, sizeof(buf), pipe);
			/* Read to the end, so a talkative command cannot block pclose. */
			while (fread(drain, 1, sizeof(drain), pipe) > 0)
				len = sizeof(buf) + 1;
			OPENSSL_cleanse(drain, sizeof(drain));
			status = pclose(pipe);
			if (status != 0)
				snprintf(why, whylen, "vms.key_command failed for key version %d (exit status %d)",
						 version, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			else if (!(ok = parse_key(buf, len, key)))
				snprintf(why, whylen, "vms.key_command did not print 64 hex digits for key version %d", version);
		}
		pfree(cmd);
	}
	else
		snprintf(why, whylen, "neither vms.key_file nor vms.key_command is set");

	OPENSSL_cleanse(buf, sizeof(buf));
	if (!ok)
		OPENSSL_cleanse(key, MASTER_KEY_LEN);
	return ok;
}

static int32
read_version_file(void)
{
	FILE	   *f = AllocateFile(KEY_VERSION_FILE, "r");
	int			v = 1;

	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG, (errmsg("pg_vms: could not read \"%s\": %m; assuming key version 1", KEY_VERSION_FILE)));
		return 1;
	}
	if (fscanf(f, "%d", &v) != 1 || v < 1)
	{
		ereport(LOG, (errmsg("pg_vms: \"%s\" is damaged; assuming key version 1", KEY_VERSION_FILE)));
		v = 1;
	}
	FreeFile(f);
	return v;
}

static void
write_version_file(int32 version)
{
	FILE	   *f = AllocateFile(KEY_VERSION_FILE ".tmp", "w");

	if (f == NULL ||
		fprintf(f, "%d\n", version) < 0 ||
		fflush(f) != 0 ||
		pg_fsync(fileno(f)) != 0)
	{
		if (f)
			FreeFile(f);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write \"%s\": %m", KEY_VERSION_FILE ".tmp")));
	}
	FreeFile(f);
	durable_rename(KEY_VERSION_FILE ".tmp", KEY_VERSION_FILE, ERROR);
}

/* Store a key in a free (or the same version's) slot.  Caller holds the lock. */
static void
store_key(int32 version, const uint8 *key)
{
	int			i,
				victim = -1;

	for (i = 0; i < KEY_SLOTS; i++)
		if (store->slots[i].version == version || store->slots[i].version == 0)
		{
			victim = i;
			break;
		}
	if (victim < 0)
	{
		/* Drop the oldest version that is not current. */
		int32		oldest = PG_INT32_MAX;

		for (i = 0; i < KEY_SLOTS; i++)
			if (store->slots[i].version != store->current_version &&
				store->slots[i].version < oldest)
			{
				oldest = store->slots[i].version;
				victim = i;
			}
	}
	store->slots[victim].version = version;
	memcpy(store->slots[victim].key, key, MASTER_KEY_LEN);
}

static void
keys_wipe(int code, Datum arg)
{
	if (store)
		OPENSSL_cleanse(store->slots, sizeof(store->slots));
}

void
keys_shmem_startup(void)
{
	bool		found;
	char	   *raw;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	raw = ShmemInitStruct("pg_vms key store", sizeof(KeyStore) + 2 * KEY_PAGE, &found);
	store = (KeyStore *) TYPEALIGN(KEY_PAGE, raw);
	if (!found)
	{
		memset(store, 0, sizeof(KeyStore));
		store->lock = &(GetNamedLWLockTranche("pg_vms_keys"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);

	if (IsUnderPostmaster)
		return;

	/* Postmaster: keep the page out of core dumps and swap, then load. */
#ifdef MADV_DONTDUMP
	if (madvise(store, KEY_PAGE, MADV_DONTDUMP) != 0)
		ereport(LOG, (errmsg("pg_vms: could not exclude the key store from core dumps: %m")));
#endif
	if (mlock(store, KEY_PAGE) != 0)
		ereport(LOG, (errmsg("pg_vms: could not lock the key store in memory: %m")));
	on_shmem_exit(keys_wipe, (Datum) 0);

	if (vms_key_file[0] == '\0' && vms_key_command[0] == '\0')
	{
		strlcpy(store->status, "no key source is set (vms.key_file or vms.key_command)", KEY_STATUS_LEN);
		ereport(LOG,
				(errmsg("pg_vms: no master key: %s", store->status),
				 errhint("Encrypted data (camera credentials, personal data) cannot be used until a key source is set and the server restarted.")));
		return;
	}
	{
		uint8		key[MASTER_KEY_LEN];
		int32		version = read_version_file();

		if (read_key_source(version, key, store->status, KEY_STATUS_LEN))
		{
			store_key(version, key);
			store->current_version = version;
			store->status[0] = '\0';
			ereport(LOG, (errmsg("pg_vms: master key version %d loaded", version)));
			/* The previous version, for a rotation cut short by a crash. */
			if (version > 1)
			{
				char		why[KEY_STATUS_LEN];

				if (read_key_source(version - 1, key, why, sizeof(why)))
					store_key(version - 1, key);
				else
					ereport(LOG,
							(errmsg("pg_vms: previous master key version %d not loaded: %s", version - 1, why),
							 errhint("It is loaded on demand if a data key still needs it.")));
			}
		}
		else
			ereport(LOG,
					(errmsg("pg_vms: no master key: %s", store->status),
					 errhint("Functions that need the key will fail until this is fixed and the server restarted.")));
		OPENSSL_cleanse(key, sizeof(key));
	}
}

void
keys_require(void)
{
	char		why[KEY_STATUS_LEN];
	int32		v;

	LWLockAcquire(store->lock, LW_SHARED);
	v = store->current_version;
	strlcpy(why, store->status, sizeof(why));
	LWLockRelease(store->lock);
	if (v == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_vms has no master key"),
				 errdetail_log("%s.", why),
				 errhint("Set vms.key_file or vms.key_command in postgresql.conf and restart the server; see docs/keys.md.")));
}

int32
keys_current_version(void)
{
	int32		v;

	keys_require();
	LWLockAcquire(store->lock, LW_SHARED);
	v = store->current_version;
	LWLockRelease(store->lock);
	return v;
}

/*
 * Make sure a version is in the store, loading it from the key source if
 * needed (after a restore, a failover, or a lost version file).
 */
void
keys_ensure_version(int32 version)
{
	uint8		key[MASTER_KEY_LEN];
	bool		have;

	keys_require();
	have = keys_get(version, key);
	OPENSSL_cleanse(key, sizeof(key));
	if (!have)
		keys_load_version(version);
}

bool
keys_get(int32 version, uint8 *out)
{
	int			i;
	bool		found = false;

	LWLockAcquire(store->lock, LW_SHARED);
	for (i = 0; i < KEY_SLOTS; i++)
		if (store->slots[i].version == version && version != 0)
		{
			memcpy(out, store->slots[i].key, MASTER_KEY_LEN);
			found = true;
			break;
		}
	LWLockRelease(store->lock);
	return found;
}

void
keys_load_version(int32 version)
{
	uint8		key[MASTER_KEY_LEN];
	char		why[KEY_STATUS_LEN];

	if (!read_key_source(version, key, why, sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not load master key version %d", version),
				 errdetail_log("%s.", why),
				 errhint("The key source must provide the new version (\"%%v\" in vms.key_file or vms.key_command).")));
	LWLockAcquire(store->lock, LW_EXCLUSIVE);
	store_key(version, key);
	LWLockRelease(store->lock);
	OPENSSL_cleanse(key, sizeof(key));
}

static void
keys_xact_callback(XactEvent event, void *arg)
{
	if (pending_current == 0)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* Before commit: a crash after it leaves both versions loadable. */
			write_version_file(pending_current);
			break;
		case XACT_EVENT_COMMIT:
			LWLockAcquire(store->lock, LW_EXCLUSIVE);
			store->current_version = pending_current;
			LWLockRelease(store->lock);
			pending_current = 0;
			break;
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that rotated the master key")));
			break;
		case XACT_EVENT_ABORT:
			pending_current = 0;
			break;
		default:
			break;
	}
}

static void
keys_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	/* A rotation rolled back to a savepoint did not happen. */
	if (event == SUBXACT_EVENT_ABORT_SUB && pending_current != 0 &&
		pending_nest_level >= GetCurrentTransactionNestLevel())
		pending_current = 0;
}

void
keys_set_current(int32 version)
{
	static bool registered = false;

	if (!registered)
	{
		RegisterXactCallback(keys_xact_callback, NULL);
		RegisterSubXactCallback(keys_subxact_callback, NULL);
		registered = true;
	}
	{
		uint8		probe[MASTER_KEY_LEN];
		bool		have = keys_get(version, probe);

		OPENSSL_cleanse(probe, sizeof(probe));
		if (!have)
			elog(ERROR, "master key version %d is not loaded", version);
	}
	pending_current = version;
	pending_nest_level = GetCurrentTransactionNestLevel();
}
