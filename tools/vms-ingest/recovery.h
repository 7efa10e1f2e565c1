/*
 * recovery.h: what vms-ingest does at startup with what an earlier run left
 * below <root>/<camera>/: unfinished *.partial files are removed, and closed
 * segments that may not have been registered (those starting at or after
 * vms.ingest_resume_point()) are queued for registration, in start order.
 * Registration is idempotent, so the boundary file is harmless.
 */
#ifndef VMS_INGEST_RECOVERY_H
#define VMS_INGEST_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "registrar.h"

/* vms.ingest_resume_point() in Unix ms (-1: NULL, nothing registered yet); -1 with the server's message. */
extern int	recovery_resume_point(PGconn *conn, int camera, int64_t *resume_ms, char *err, size_t errlen,
								  char sqlstate[6]);

/*
 * Removes the partials and queues the closed files from resume_ms on.
 * *last_end_ms becomes the end of the newest closed segment found (-1 none).
 * 0, or -1 on a storage error (message in err).
 */
extern int	recovery_run(int rootfd, const char *root, int camera, int64_t resume_ms, Registrar *r,
						 int64_t *last_end_ms, char *err, size_t errlen);

/* Parses "YYYYMMDDTHHMMSS.mmmZ_<ms>.ts" strictly; 0 and start/duration, or -1. */
extern int	recovery_parse_name(const char *name, int64_t *start_ms, int64_t *duration_ms);

#endif							/* VMS_INGEST_RECOVERY_H */
