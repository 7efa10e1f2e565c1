/*
 * registrar.h: vms-ingest's database thread.  It has its own connection and
 * works through a FIFO of closed segments, gap events and status reports, in
 * order.  When the database goes away it keeps the queue, reconnects with
 * backoff and carries on; the capture thread watches the queued bytes
 * (registrar_backlog_bytes) against --backlog-bytes.  Every purge interval
 * it also removes the files retention released (tools/common/purge.c).
 */
#ifndef VMS_INGEST_REGISTRAR_H
#define VMS_INGEST_REGISTRAR_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "segment.h"

typedef struct RegistrarOptions
{
	const char *dbname;			/* for reconnecting (NULL: libpq's settings) */
	int			insecure_db;
	int			camera;
	int			rootfd;
	int			purge_interval_s;	/* 0: never purge */
	int			backoff_max_s;
} RegistrarOptions;

typedef struct Registrar Registrar;

/* Starts the thread; it takes over conn (may be NULL: it connects itself).  NULL and err on failure. */
extern Registrar *registrar_start(PGconn *conn, const RegistrarOptions *o, char *err, size_t errlen);

/* Queue an item; 0, or -1 when out of memory. */
extern int	registrar_add_segment(Registrar *r, const SegmentInfo *seg);
extern int	registrar_add_gap(Registrar *r, int64_t from_ms, int64_t until_ms, const char *reason);
extern int	registrar_report(Registrar *r, const char *state, const char *detail);

/* Bytes of the segments not registered yet. */
extern int64_t registrar_backlog_bytes(Registrar *r);

/*
 * Lets the queue drain for at most timeout_us, then stops the thread.
 * Returns how many items were left unregistered (their files stay on disk
 * for the next start's recovery).
 */
extern int	registrar_stop(Registrar **r, int64_t timeout_us);

/* The retention purge once, on a connection of the caller's (startup, before recovery). */
extern void registrar_purge(PGconn *conn, int rootfd, int camera);

/* Reconnect delay: 1 s doubling per attempt up to max_s, +-20 % jitter (OpenSSL's CSPRNG). */
extern int64_t backoff_delay_us(int attempt, int max_s);

#endif							/* VMS_INGEST_REGISTRAR_H */
