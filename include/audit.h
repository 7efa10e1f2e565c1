/*-------------------------------------------------------------------------
 * audit.h
 *	  Building audit entries in a backend.
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_H
#define AUDIT_H

#include "audit_queue.h"

extern void audit_entry_init(AuditQueueEntry *entry, Oid actor,
							 const char *action, const char *outcome);
extern void audit_client_addr(char *buf, size_t size);
extern void audit_copy_text(char *dst, const char *src, size_t size);

#endif							/* AUDIT_H */
