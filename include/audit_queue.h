/*-------------------------------------------------------------------------
 * audit_queue.h
 *	  The shared-memory queue that carries audit entries which must survive
 *	  the rollback of the transaction that produced them (denied and failed
 *	  actions; later, failed logins from the authentication hook).
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_QUEUE_H
#define AUDIT_QUEUE_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"

#define AUDIT_ACTOR_LEN		NAMEDATALEN
#define AUDIT_ADDR_LEN		64
#define AUDIT_ACTION_LEN	64
#define AUDIT_OUTCOME_LEN	16
#define AUDIT_TARGET_LEN	256
#define AUDIT_DETAILS_LEN	1024

typedef struct AuditQueueEntry
{
	TimestampTz logged_at;
	Oid			database_id;
	bool		has_camera;
	int32		camera_id;
	char		actor[AUDIT_ACTOR_LEN];
	char		session_user[AUDIT_ACTOR_LEN];
	char		client_addr[AUDIT_ADDR_LEN];	/* "" for a Unix socket or none */
	char		action[AUDIT_ACTION_LEN];
	char		outcome[AUDIT_OUTCOME_LEN];
	char		target[AUDIT_TARGET_LEN];
	char		details[AUDIT_DETAILS_LEN];	/* JSON object text, "" for none */
} AuditQueueEntry;

extern void audit_queue_shmem_request(void);
extern void audit_queue_shmem_startup(void);

/* Producers: copy the entry into the queue; never blocks on the worker. */
extern bool audit_queue_push(const AuditQueueEntry *entry);

/* The single consumer (the audit worker). */
extern int	audit_queue_peek(AuditQueueEntry *out, int max, uint64 *dropped);
extern void audit_queue_consume(int n, uint64 dropped_reported);
extern void audit_queue_set_worker_latch(Latch *latch);
extern uint64 audit_queue_length(void);

/* Head of the sealed chain as last committed in this server run. */
extern void audit_queue_set_sealed_head(Oid extension_id, int64 seq, const uint8 *hash);
extern bool audit_queue_get_sealed_head(Oid extension_id, int64 *seq, uint8 *hash);

#endif							/* AUDIT_QUEUE_H */
