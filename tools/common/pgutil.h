/*
 * pgutil.h: libpq helpers for the pg_vms tools.  They print nothing: each
 * tool reports failures in its own words.
 */
#ifndef VMS_TOOLS_PGUTIL_H
#define VMS_TOOLS_PGUTIL_H

#include <libpq-fe.h>

extern PGconn *pgutil_connect(const char *dbname, const char *client_encoding,
							  const char *appname);

/*
 * A failed libpq call on one line, for the tool to print: "WHAT failed:
 * ERROR SQLSTATE: message HINT: hint", or libpq's own message when the
 * server sent none.
 */
extern void pgutil_describe_failure(char *out, size_t outsize, const char *what,
									const PGresult *res, const PGconn *conn);

#endif							/* VMS_TOOLS_PGUTIL_H */
