/*
 * pgutil.c: libpq helpers for the pg_vms tools (see pgutil.h).
 */
#include <stddef.h>
#include <stdio.h>

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

void
pgutil_describe_failure(char *out, size_t outsize, const char *what,
						const PGresult *res, const PGconn *conn)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;

	if (msg == NULL)
		snprintf(out, outsize, "%s failed: %s", what, conn ? PQerrorMessage(conn) : "no answer");
	else
		snprintf(out, outsize, "%s failed: ERROR %s: %s%s%s", what, state ? state : "?????", msg,
				 hint ? " HINT: " : "", hint ? hint : "");
}
