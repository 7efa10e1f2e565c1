/*
 * config.h: the database side of vms-ingest's setup: the connection (TLS
 * unless told otherwise) and the camera's configuration, credential and
 * privacy zones, read through the extension's API.
 */
#ifndef VMS_INGEST_CONFIG_H
#define VMS_INGEST_CONFIG_H

#include <stddef.h>

#include <libpq-fe.h>

#include "burnin.h"

#define MAX_ZONES	32

typedef struct IngestConfig
{
	char	   *camera_name;
	char	   *stream_url;
	int			enabled;
	char		transport[8];	/* tcp, udp, http or https */
	int			segment_seconds;
	char	   *tls_ca_pem;		/* NULL: --ca-file, else OpenSSL's default store */
	unsigned char tls_pin[32];
	int			has_pin;
	char	   *tls_server_name;	/* NULL: the URL's host */
	int			burn_in;
	PrivacyZone *zones;
	int			nzones;
	char	   *username;		/* NULL: the camera has no credential */
	char	   *password;		/* wiped by config_free() */
} IngestConfig;

/*
 * Connects with the standard libpq settings (dbname may be a connection
 * string).  A TCP connection without TLS is refused unless insecure.  NULL
 * and a message in err on failure.
 */
extern PGconn *db_connect(const char *dbname, int insecure, char *err, size_t errlen);

/*
 * Reads vms.ingest_config(), the zones and vms.camera_credential() into cfg
 * (zeroed first).  0, or -1 with the server's message in err and its
 * SQLSTATE in sqlstate ("" when not from the server).
 */
extern int	config_load(PGconn *conn, int camera, IngestConfig *cfg, char *err, size_t errlen,
						char sqlstate[6]);

/* Frees cfg, wiping the credential (OPENSSL_cleanse). */
extern void config_free(IngestConfig *cfg);

/* The message of a failed libpq call: the server's, else the connection's, on one line. */
extern void db_error(const PGresult *res, const PGconn *conn, char *err, size_t errlen, char sqlstate[6]);

#endif							/* VMS_INGEST_CONFIG_H */
