/*
 * config.c: vms-ingest's database connection and camera configuration (see
 * config.h).  The credential is never logged; it is wiped from our memory
 * and from libpq's result when done with.
 */
#define _DEFAULT_SOURCE			/* strdup */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "config.h"
#include "log.h"

void
db_error(const PGresult *res, const PGconn *conn, char *err, size_t errlen, char sqlstate[6])
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char		text[1024];

	if (sqlstate != NULL)
		snprintf(sqlstate, 6, "%s", state ? state : "");
	if (msg != NULL)
		snprintf(text, sizeof(text), "%s", msg);
	else if (conn != NULL && *PQerrorMessage(conn) != '\0')
		snprintf(text, sizeof(text), "%s", PQerrorMessage(conn));
	else
		snprintf(text, sizeof(text), "unexpected answer from the database");
	log_redact(text, err, errlen);
}

PGconn *
db_connect(const char *dbname, int insecure, char *err, size_t errlen)
{
	const char *keywords[10];
	const char *values[10];
	PGconn	   *conn;
	PGresult   *res = NULL;
	const char *host;
	int			n = 0;

	/* Defaults first: what dbname (a connection string) says wins. */
	if (getenv("PGCONNECT_TIMEOUT") == NULL)
	{
		keywords[n] = "connect_timeout";
		values[n++] = "10";
	}
	/* A database that vanishes from the network must not hang a call for minutes. */
	keywords[n] = "keepalives_idle";
	values[n++] = "30";
	keywords[n] = "tcp_user_timeout";
	values[n++] = "30000";
	keywords[n] = "client_encoding";
	values[n++] = "UTF8";
	keywords[n] = "fallback_application_name";
	values[n++] = "vms-ingest";
	if (dbname != NULL)
	{
		keywords[n] = "dbname";
		values[n++] = dbname;
	}
	keywords[n] = NULL;
	values[n] = NULL;
	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL)
	{
		snprintf(err, errlen, "could not connect to the database: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char		msg[1024];

		log_redact(PQerrorMessage(conn), msg, sizeof(msg));
		snprintf(err, errlen, "could not connect to the database: %s", msg);
		goto fail;
	}
	host = PQhost(conn);
	if (!PQsslInUse(conn) && !insecure && host != NULL && host[0] != '/' && host[0] != '@' && host[0] != '\0')
	{
		snprintf(err, errlen, "refusing the database connection to %s: TCP without TLS "
				 "(set sslmode=verify-full, or pass --insecure-db)", host);
		goto fail;
	}
	res = PQexec(conn, "SET TIME ZONE 'UTC'");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		char		msg[1024];

		db_error(res, conn, msg, sizeof(msg), NULL);
		snprintf(err, errlen, "could not set up the database session: %s", msg);
		goto fail;
	}
	PQclear(res);
	return conn;

fail:
	PQclear(res);
	PQfinish(conn);
	return NULL;
}

static int
dup_value(const PGresult *res, int row, int col, char **out)
{
	*out = NULL;
	if (PQgetisnull(res, row, col))
		return 0;
	*out = strdup(PQgetvalue(res, row, col));
	return *out == NULL ? -1 : 0;
}

/* A whole number or a number with a fraction, nothing else, finite, in [lo, hi]. */
static int
parse_double(const char *s, double lo, double hi, double *out)
{
	char	   *end;
	double		v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The zones as rows (zone, fill, point, x, y): SQL unpacks the JSON, C checks it. */
static int
load_zones(PGconn *conn, const char *cam, IngestConfig *cfg, char *err, size_t errlen, char sqlstate[6])
{
	const char *params[1] = {cam};
	PGresult   *res;
	long		last = -1;
	int			i;
	int			ret = -1;

	res = PQexecParams(conn,
					   "SELECT z.n, z.zone OPERATOR(pg_catalog.->>) 'fill', p.n, "
					   "(p.pt OPERATOR(pg_catalog.->>) 0)::float8, (p.pt OPERATOR(pg_catalog.->>) 1)::float8 "
					   "FROM vms.ingest_config($1::integer) c, "
					   "pg_catalog.jsonb_array_elements(c.privacy_zones) WITH ORDINALITY z(zone, n), "
					   "pg_catalog.jsonb_array_elements(z.zone OPERATOR(pg_catalog.->) 'points') WITH ORDINALITY p(pt, n) "
					   "ORDER BY 1, 3", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 5)
	{
		char		msg[512];

		db_error(res, conn, msg, sizeof(msg), sqlstate);
		snprintf(err, errlen, "could not read the privacy zones: %s", msg);
		goto end;
	}
	if (PQntuples(res) > 0 && (cfg->zones = calloc(MAX_ZONES, sizeof(PrivacyZone))) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		long		zn = strtol(PQgetvalue(res, i, 0), NULL, 10);
		const char *fill = PQgetvalue(res, i, 1);
		PrivacyZone *z;
		double		x;
		double		y;

		if (zn != last)
		{
			if (cfg->nzones >= MAX_ZONES)
			{
				snprintf(err, errlen, "more than %d privacy zones", MAX_ZONES);
				goto end;
			}
			last = zn;
			z = &cfg->zones[cfg->nzones++];
			if (strcmp(fill, "black") == 0)
				z->blur = 0;
			else if (strcmp(fill, "blur") == 0)
				z->blur = 1;
			else
			{
				snprintf(err, errlen, "privacy zone %d: fill must be black or blur", cfg->nzones);
				goto end;
			}
		}
		z = &cfg->zones[cfg->nzones - 1];
		if (z->npoints >= 64 ||
			parse_double(PQgetvalue(res, i, 3), 0.0, 1.0, &x) != 0 ||
			parse_double(PQgetvalue(res, i, 4), 0.0, 1.0, &y) != 0)
		{
			snprintf(err, errlen, "privacy zone %d: at most 64 points, each [x, y] in 0..1", cfg->nzones);
			goto end;
		}
		z->x[z->npoints] = x;
		z->y[z->npoints] = y;
		z->npoints++;
	}
	for (i = 0; i < cfg->nzones; i++)
		if (cfg->zones[i].npoints < 3)
		{
			snprintf(err, errlen, "privacy zone %d has fewer than 3 points", i + 1);
			goto end;
		}
	ret = 0;

end:
	PQclear(res);
	return ret;
}

/* The credential, wiped from libpq's result before it is freed. */
static int
load_credential(PGconn *conn, const char *cam, IngestConfig *cfg, char *err, size_t errlen, char sqlstate[6])
{
	const char *params[1] = {cam};
	PGresult   *res;
	int			ret = -1;

	res = PQexecParams(conn, "SELECT username, password FROM vms.camera_credential($1::integer)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		char		msg[512];

		if (state != NULL && strcmp(state, "P0002") == 0)
		{
			ret = 0;			/* no credential: open the stream without one */
			goto end;
		}
		db_error(res, conn, msg, sizeof(msg), sqlstate);
		snprintf(err, errlen, "could not read the camera credential: %s", msg);
		goto end;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 2)
	{
		snprintf(err, errlen, "could not read the camera credential: unexpected answer");
		goto end;
	}
	if (!PQgetisnull(res, 0, 0) && !PQgetisnull(res, 0, 1))
	{
		if (dup_value(res, 0, 0, &cfg->username) != 0 || dup_value(res, 0, 1, &cfg->password) != 0)
		{
			snprintf(err, errlen, "out of memory");
			goto end;
		}
	}
	ret = 0;

end:
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 2)
	{
		char	   *u = PQgetvalue(res, 0, 0);
		char	   *p = PQgetvalue(res, 0, 1);

		OPENSSL_cleanse(u, strlen(u));
		OPENSSL_cleanse(p, strlen(p));
	}
	PQclear(res);
	return ret;
}

int
config_load(PGconn *conn, int camera, IngestConfig *cfg, char *err, size_t errlen, char sqlstate[6])
{
	const char *params[1];
	PGresult   *res = NULL;
	char		cam[16];
	const char *v;
	char		msg[768];
	int			i;
	int			ret = -1;

	memset(cfg, 0, sizeof(*cfg));
	sqlstate[0] = '\0';
	snprintf(cam, sizeof(cam), "%d", camera);
	params[0] = cam;
	res = PQexecParams(conn,
					   "SELECT camera_name, stream_url, enabled, transport, segment_seconds, tls_ca_pem, "
					   "pg_catalog.encode(tls_pin_sha256, 'hex'), tls_server_name, burn_in_privacy "
					   "FROM vms.ingest_config($1::integer)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		db_error(res, conn, err, errlen, sqlstate);
		goto end;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 9)
	{
		snprintf(err, errlen, "vms.ingest_config(%d) gave an unexpected answer", camera);
		goto end;
	}
	if (dup_value(res, 0, 0, &cfg->camera_name) != 0 || dup_value(res, 0, 1, &cfg->stream_url) != 0 ||
		dup_value(res, 0, 5, &cfg->tls_ca_pem) != 0 || dup_value(res, 0, 7, &cfg->tls_server_name) != 0)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	cfg->enabled = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	cfg->burn_in = strcmp(PQgetvalue(res, 0, 8), "t") == 0;
	v = PQgetvalue(res, 0, 3);
	if (strcmp(v, "tcp") != 0 && strcmp(v, "udp") != 0 && strcmp(v, "http") != 0 && strcmp(v, "https") != 0)
	{
		snprintf(err, errlen, "unknown transport in the camera settings");
		goto end;
	}
	snprintf(cfg->transport, sizeof(cfg->transport), "%s", v);
	cfg->segment_seconds = (int) strtol(PQgetvalue(res, 0, 4), NULL, 10);
	if (cfg->segment_seconds < 1 || cfg->segment_seconds > 600)
	{
		snprintf(err, errlen, "segment_seconds out of range (1..600)");
		goto end;
	}
	if (!PQgetisnull(res, 0, 6))
	{
		v = PQgetvalue(res, 0, 6);
		if (strlen(v) != 64)
		{
			snprintf(err, errlen, "tls_pin_sha256 is not 32 bytes");
			goto end;
		}
		for (i = 0; i < 32; i++)
		{
			int			hi = hex_value(v[2 * i]);
			int			lo = hex_value(v[2 * i + 1]);

			if (hi < 0 || lo < 0)
			{
				snprintf(err, errlen, "tls_pin_sha256 is not hexadecimal");
				goto end;
			}
			cfg->tls_pin[i] = (unsigned char) (hi << 4 | lo);
		}
		cfg->has_pin = 1;
	}
	PQclear(res);
	res = NULL;

	if (cfg->burn_in && load_zones(conn, cam, cfg, err, errlen, sqlstate) != 0)
		goto end;
	if (load_credential(conn, cam, cfg, msg, sizeof(msg), sqlstate) != 0)
	{
		snprintf(err, errlen, "%s", msg);
		goto end;
	}
	ret = 0;

end:
	PQclear(res);
	if (ret != 0)
		config_free(cfg);
	return ret;
}

static void
free_wiped(char **s)
{
	if (*s != NULL)
	{
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
config_free(IngestConfig *cfg)
{
	free(cfg->camera_name);
	free(cfg->stream_url);
	free(cfg->tls_ca_pem);
	free(cfg->tls_server_name);
	free(cfg->zones);
	free_wiped(&cfg->username);
	free_wiped(&cfg->password);
	memset(cfg, 0, sizeof(*cfg));
}
