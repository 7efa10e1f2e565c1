/*
 * pgutil.h: libpq helpers for the pg_vms tools.  They print nothing: each
 * tool reports failures in its own words.
 */
#ifndef VMS_TOOLS_PGUTIL_H
#define VMS_TOOLS_PGUTIL_H

#include <libpq-fe.h>

extern PGconn *pgutil_connect(const char *dbname, const char *client_encoding,
							  const char *appname);

#endif							/* VMS_TOOLS_PGUTIL_H */
