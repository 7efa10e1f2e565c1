/*
 * pgutil.c: libpq helpers for the pg_vms tools (see pgutil.h).
 */
#include <stddef.h>

#include "pgutil.h"

/*
 * Connects with the standard libpq settings (PG* environment variables, the
 * service file, ~/.pgpass).  dbname (NULL: libpq's default) may be a
 * connection string; client_encoding may be NULL; appname is only a fallback,
 * so that PGAPPNAME still wins.  As PQconnectdbParams: NULL when out of
 * memory, else a connection whose PQstatus() the caller checks.
 */
PGconn *
pgutil_connect(const char *dbname, const char *client_encoding, const char *appname)
{
	const char *keywords[4];
	const char *values[4];
	int			n = 0;

	if (dbname != NULL)
	{
		keywords[n] = "dbname";
		values[n++] = dbname;
	}
	if (client_encoding != NULL)
	{
		keywords[n] = "client_encoding";
		values[n++] = client_encoding;
	}
	keywords[n] = "fallback_application_name";
	values[n++] = appname;
	keywords[n] = NULL;
	values[n] = NULL;
	return PQconnectdbParams(keywords, values, 1);
}
