/*-------------------------------------------------------------------------
 * totp.h
 *	  TOTP second factor (RFC 6238) and the session elevation it grants.
 *-------------------------------------------------------------------------
 */
#ifndef TOTP_H
#define TOTP_H

#include "postgres.h"

extern void totp_define_settings(void);
extern void totp_install_callbacks(void);

/* Has this role confirmed a second factor in this session, and is it still valid? */
extern bool totp_session_elevated(Oid roleid);

#endif							/* TOTP_H */
