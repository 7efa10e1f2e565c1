/*-------------------------------------------------------------------------
 * audit_worker.h
 *	  The background worker that drains the audit queue, seals the audit
 *	  chain and keeps time partitions created ahead.
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_WORKER_H
#define AUDIT_WORKER_H

extern void audit_worker_register(void);
extern PGDLLEXPORT void vms_audit_worker_main(Datum main_arg);

#endif							/* AUDIT_WORKER_H */
