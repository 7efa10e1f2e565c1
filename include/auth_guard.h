/*-------------------------------------------------------------------------
 * auth_guard.h
 *	  Login lockout: the ClientAuthentication_hook and the shared-memory
 *	  table of failed attempts and locks.
 *-------------------------------------------------------------------------
 */
#ifndef AUTH_GUARD_H
#define AUTH_GUARD_H

#include "postgres.h"

extern void auth_guard_define_settings(void);
extern void auth_guard_shmem_request(void);
extern void auth_guard_shmem_startup(void);
extern void auth_guard_install_hook(void);

/*
 * For second-factor checks in a running session: is the role (from this
 * client address) locked, and count one failure against it.  source names
 * what failed ("totp") in the audit entry.
 */
extern bool lockout_is_locked(const char *role, const char *client_addr);
extern void lockout_note_failure(const char *role, const char *client_addr,
								 const char *source);
extern void lockout_note_success(const char *role, const char *client_addr);

#endif							/* AUTH_GUARD_H */
