/*-------------------------------------------------------------------------
 * invoker.h
 *	  Who called a pg_vms SECURITY DEFINER function.  Inside such a function
 *	  current_user is the extension owner, so the caller is captured when the
 *	  call is prepared (object access hook) and made current while it runs
 *	  (fmgr hook).
 *-------------------------------------------------------------------------
 */
#ifndef INVOKER_H
#define INVOKER_H

extern void invoker_install_hooks(void);
extern Oid	invoker_current(void);

#endif							/* INVOKER_H */
