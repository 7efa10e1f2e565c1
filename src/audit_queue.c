/*-------------------------------------------------------------------------
 * audit_queue.c
 *	  Shared-memory ring buffer of audit entries that must outlive the
 *	  transaction which produced them.  Any backend may push; only the audit
 *	  worker consumes, and it removes entries only after the transaction that
 *	  stored them has committed, so a failing worker loses nothing.
 *
 *	  The postmaster writes what is still queued to a file when it shuts
 *	  down and also when it reinitialises shared memory after a child crash,
 *	  and reads it back at the next start: only the loss of the postmaster
 *	  itself (kill -9, power loss) loses queued entries.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "pg_vms.h"
#include "audit_queue.h"
#include "audit_chain.h"

#define AUDIT_QUEUE_FILE		"pg_vms_audit_queue.dat"
#define AUDIT_QUEUE_FILE_TMP	AUDIT_QUEUE_FILE ".tmp"
#define AUDIT_QUEUE_MAGIC		0x564d5351	/* "VMSQ" */
#define AUDIT_QUEUE_VERSION		1

typedef struct AuditQueueShared
{
	LWLock	   *lock;
	int			capacity;
	uint64		head;			/* next slot to write (monotonic) */
	uint64		tail;			/* next slot to read (monotonic) */
	uint64		dropped;		/* entries refused because the queue was full */
	Latch	   *worker_latch;
	bool		sealed_known;
	Oid			sealed_extension;	/* pg_vms instance the head belongs to */
	int64		sealed_seq;
	uint8		sealed_hash[AUDIT_HASH_LEN];
	AuditQueueEntry entries[FLEXIBLE_ARRAY_MEMBER];
} AuditQueueShared;

typedef struct AuditQueueFileHeader
{
	uint32		magic;
	uint32		version;
	uint32		entry_size;
	uint32		count;
	uint64		dropped;
	pg_crc32c	crc;			/* over the entries */
} AuditQueueFileHeader;

static AuditQueueShared *queue = NULL;

static Size
audit_queue_size(void)
{
	return add_size(offsetof(AuditQueueShared, entries),
					mul_size(vms_audit_queue_size, sizeof(AuditQueueEntry)));
}

void
audit_queue_shmem_request(void)
{
	RequestAddinShmemSpace(audit_queue_size());
	RequestNamedLWLockTranche("pg_vms_audit_queue", 1);
}

static void audit_queue_save(int code, Datum arg);
static void audit_queue_load(void);

void
audit_queue_shmem_startup(void)
{
	bool		found;

	queue = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	queue = ShmemInitStruct("pg_vms audit queue", audit_queue_size(), &found);
	if (!found)
	{
		queue->lock = &(GetNamedLWLockTranche("pg_vms_audit_queue"))->lock;
		queue->capacity = vms_audit_queue_size;
		queue->head = 0;
		queue->tail = 0;
		queue->dropped = 0;
		queue->worker_latch = NULL;
		queue->sealed_known = false;
		queue->sealed_seq = 0;
		memset(queue->sealed_hash, 0, AUDIT_HASH_LEN);
	}
	LWLockRelease(AddinShmemInitLock);

	/* Only the postmaster restores and saves the queue. */
	if (!IsUnderPostmaster)
	{
		audit_queue_load();
		on_shmem_exit(audit_queue_save, (Datum) 0);
	}
}

/* Never trust an entry's termination: it may come from a crashed process. */
static void
terminate_fields(AuditQueueEntry *e)
{
	e->actor[AUDIT_ACTOR_LEN - 1] = '\0';
	e->session_user[AUDIT_ACTOR_LEN - 1] = '\0';
	e->client_addr[AUDIT_ADDR_LEN - 1] = '\0';
	e->action[AUDIT_ACTION_LEN - 1] = '\0';
	e->outcome[AUDIT_OUTCOME_LEN - 1] = '\0';
	e->target[AUDIT_TARGET_LEN - 1] = '\0';
	e->details[AUDIT_DETAILS_LEN - 1] = '\0';
}

bool
audit_queue_push(const AuditQueueEntry *entry)
{
	Latch	   *latch;
	bool		stored = false;

	if (queue == NULL)
		return false;

	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	if (queue->head - queue->tail < (uint64) queue->capacity)
	{
		AuditQueueEntry *slot = &queue->entries[queue->head % queue->capacity];

		memcpy(slot, entry, sizeof(AuditQueueEntry));
		terminate_fields(slot);
		queue->head++;
		stored = true;
	}
	else
		queue->dropped++;
	latch = queue->worker_latch;
	LWLockRelease(queue->lock);

	if (latch)
		SetLatch(latch);
	return stored;
}

int
audit_queue_peek(AuditQueueEntry *out, int max, uint64 *dropped)
{
	int			n = 0;

	LWLockAcquire(queue->lock, LW_SHARED);
	while (n < max && queue->tail + n < queue->head)
	{
		memcpy(&out[n], &queue->entries[(queue->tail + n) % queue->capacity],
			   sizeof(AuditQueueEntry));
		terminate_fields(&out[n]);
		n++;
	}
	*dropped = queue->dropped;
	LWLockRelease(queue->lock);
	return n;
}

void
audit_queue_consume(int n, uint64 dropped_reported)
{
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	Assert(queue->tail + n <= queue->head);
	queue->tail += n;
	queue->dropped -= Min(dropped_reported, queue->dropped);
	LWLockRelease(queue->lock);
}

void
audit_queue_set_worker_latch(Latch *latch)
{
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	queue->worker_latch = latch;
	LWLockRelease(queue->lock);
}

uint64
audit_queue_length(void)
{
	uint64		len;

	if (queue == NULL)
		return 0;
	LWLockAcquire(queue->lock, LW_SHARED);
	len = queue->head - queue->tail;
	LWLockRelease(queue->lock);
	return len;
}

void
audit_queue_set_sealed_head(Oid extension_id, int64 seq, const uint8 *hash)
{
	if (queue == NULL)
		return;
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	if (!queue->sealed_known || queue->sealed_extension != extension_id ||
		seq >= queue->sealed_seq)
	{
		queue->sealed_known = true;
		queue->sealed_extension = extension_id;
		queue->sealed_seq = seq;
		memcpy(queue->sealed_hash, hash, AUDIT_HASH_LEN);
	}
	LWLockRelease(queue->lock);
}

bool
audit_queue_get_sealed_head(Oid extension_id, int64 *seq, uint8 *hash)
{
	bool		known;

	if (queue == NULL)
		return false;
	LWLockAcquire(queue->lock, LW_SHARED);
	known = queue->sealed_known && queue->sealed_extension == extension_id;
	*seq = queue->sealed_seq;
	memcpy(hash, queue->sealed_hash, AUDIT_HASH_LEN);
	LWLockRelease(queue->lock);
	return known;
}

/*
 * on_shmem_exit callback in the postmaster.  Runs at shutdown (code 0) and
 * before shared memory is reinitialised after a child crashed (code 1).  No
 * other process is attached at that point, so no lock is taken; the
 * counters are checked instead, since a crashing child may have scribbled.
 */
static void
audit_queue_save(int code, Datum arg)
{
	AuditQueueFileHeader hdr;
	FILE	   *file;
	uint64		count;
	uint64		i;

	if (queue == NULL)
		return;
	count = queue->head - queue->tail;
	if (queue->head < queue->tail || count > (uint64) queue->capacity)
	{
		ereport(LOG,
				(errmsg("pg_vms: audit queue counters are inconsistent; %llu queued audit entries cannot be saved",
						(unsigned long long) (queue->head - queue->tail))));
		return;
	}
	if (count == 0 && queue->dropped == 0)
	{
		unlink(AUDIT_QUEUE_FILE);
		return;
	}

	hdr.magic = AUDIT_QUEUE_MAGIC;
	hdr.version = AUDIT_QUEUE_VERSION;
	hdr.entry_size = sizeof(AuditQueueEntry);
	hdr.count = (uint32) count;
	hdr.dropped = queue->dropped;
	INIT_CRC32C(hdr.crc);
	for (i = 0; i < count; i++)
		COMP_CRC32C(hdr.crc, &queue->entries[(queue->tail + i) % queue->capacity],
					sizeof(AuditQueueEntry));
	FIN_CRC32C(hdr.crc);

	file = AllocateFile(AUDIT_QUEUE_FILE_TMP, PG_BINARY_W);
	if (file == NULL)
		goto error;
	if (fwrite(&hdr, sizeof(hdr), 1, file) != 1)
		goto error;
	for (i = 0; i < count; i++)
		if (fwrite(&queue->entries[(queue->tail + i) % queue->capacity],
				   sizeof(AuditQueueEntry), 1, file) != 1)
			goto error;
	if (fflush(file) != 0 || pg_fsync(fileno(file)) != 0)
		goto error;
	if (FreeFile(file))
	{
		file = NULL;
		goto error;
	}
	file = NULL;
	(void) durable_rename(AUDIT_QUEUE_FILE_TMP, AUDIT_QUEUE_FILE, LOG);
	ereport(LOG,
			(errmsg("pg_vms: saved %llu queued audit entries to \"%s\"",
					(unsigned long long) count, AUDIT_QUEUE_FILE)));
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("pg_vms: could not write audit queue file \"%s\": %m",
					AUDIT_QUEUE_FILE_TMP)));
	if (file)
		FreeFile(file);
	unlink(AUDIT_QUEUE_FILE_TMP);
}

/* Restore entries saved by audit_queue_save, then remove the file. */
static void
audit_queue_load(void)
{
	AuditQueueFileHeader hdr;
	FILE	   *file;
	pg_crc32c	crc;
	uint32		i;
	AuditQueueEntry *buf = NULL;

	file = AllocateFile(AUDIT_QUEUE_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("pg_vms: could not read audit queue file \"%s\": %m",
							AUDIT_QUEUE_FILE)));
		return;
	}
	if (fread(&hdr, sizeof(hdr), 1, file) != 1 ||
		hdr.magic != AUDIT_QUEUE_MAGIC ||
		hdr.version != AUDIT_QUEUE_VERSION ||
		hdr.entry_size != sizeof(AuditQueueEntry))
		goto bad;

	buf = malloc(sizeof(AuditQueueEntry) * Max(hdr.count, 1));
	if (buf == NULL)
		goto bad;
	if (hdr.count > 0 && fread(buf, sizeof(AuditQueueEntry), hdr.count, file) != hdr.count)
		goto bad;
	INIT_CRC32C(crc);
	for (i = 0; i < hdr.count; i++)
		COMP_CRC32C(crc, &buf[i], sizeof(AuditQueueEntry));
	FIN_CRC32C(crc);
	if (!EQ_CRC32C(crc, hdr.crc))
		goto bad;

	for (i = 0; i < hdr.count; i++)
	{
		if (queue->head - queue->tail >= (uint64) queue->capacity)
		{
			queue->dropped++;
			continue;
		}
		terminate_fields(&buf[i]);
		memcpy(&queue->entries[queue->head % queue->capacity], &buf[i],
			   sizeof(AuditQueueEntry));
		queue->head++;
	}
	queue->dropped += hdr.dropped;
	free(buf);
	FreeFile(file);
	unlink(AUDIT_QUEUE_FILE);
	ereport(LOG,
			(errmsg("pg_vms: restored %u queued audit entries from \"%s\"",
					hdr.count, AUDIT_QUEUE_FILE)));
	return;

bad:
	if (buf)
		free(buf);
	FreeFile(file);
	/* Keep the file for inspection; a new save would overwrite it. */
	(void) durable_rename(AUDIT_QUEUE_FILE, AUDIT_QUEUE_FILE ".corrupt", LOG);
	ereport(LOG,
			(errmsg("pg_vms: audit queue file \"%s\" is corrupt; moved aside as \"%s.corrupt\"",
					AUDIT_QUEUE_FILE, AUDIT_QUEUE_FILE)));
}
