/*-------------------------------------------------------------------------
 * authorize.h
 *	  The permission decision point and its per-backend cache.
 *-------------------------------------------------------------------------
 */
#ifndef AUTHORIZE_H
#define AUTHORIZE_H

#include "datatype/timestamp.h"

extern void authorize_install_callbacks(void);
extern bool authorize_role(Oid roleid, const char *permission, int32 camera_id,
						   TimestampTz at);

#endif							/* AUTHORIZE_H */
