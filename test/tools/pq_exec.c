/*
 * pq_exec: run one statement with bind parameters over the extended query
 * protocol (what drivers do), for tests of what the server logs.
 *
 *   pq_exec CONNINFO SQL [PARAM...]      prints the first row, tab-separated
 */
#include <stdio.h>
#include <libpq-fe.h>

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	int			status = 1;
	int			i;

	if (argc < 3)
	{
		fprintf(stderr, "usage: %s CONNINFO SQL [PARAM...]\n", argv[0]);
		return 2;
	}
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		goto done;
	}
	res = PQexecParams(conn, argv[2], argc - 3, NULL,
					   (const char *const *) (argv + 3), NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK)
	{
		for (i = 0; PQntuples(res) > 0 && i < PQnfields(res); i++)
			printf("%s%s", i ? "\t" : "", PQgetvalue(res, 0, i));
		printf("\n");
		status = 0;
	}
	else
		fprintf(stderr, "%s", PQresultErrorMessage(res));
	PQclear(res);
done:
	PQfinish(conn);
	return status;
}
