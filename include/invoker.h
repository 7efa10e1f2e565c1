/*-------------------------------------------------------------------------
 * invoker.h
 *	  Who called a pg_vms API function: the SECURITY INVOKER trampoline
 *	  (vms_api_call) records the caller at call time, and the SECURITY
 *	  DEFINER body reads it back.
 *-------------------------------------------------------------------------
 */
#ifndef INVOKER_H
#define INVOKER_H

extern void invoker_install_hooks(void);
extern Oid	invoker_current(void);

#endif							/* INVOKER_H */
