/*
 * tls_relay.h: a loopback relay that terminates the camera's TLS in the worker.
 *
 * libavformat 5.1 (Debian 12) opens rtsps:// and the RTSP-over-HTTPS tunnel
 * without verifying the camera certificate, and offers no option to make it
 * do so.  The worker therefore connects libavformat in plain text to
 * rtsp://127.0.0.1:<local_port>/..., and this relay carries every accepted
 * connection over its own verified TLS 1.2+ connection to the camera
 * (chain + host name or IP address, and optionally an SPKI pin).  The HTTP
 * tunnel (-rtsp_transport http) opens two connections (GET and POST); each
 * gets its own TLS connection, and the first HTTP request head of a
 * connection goes in a TLS record of its own (gst-rtsp-server loses a POST
 * body that shares the head's record).  Use -rtsp_transport tcp or http
 * through the relay: with udp only the RTSP requests are protected, the
 * media comes as plain RTP straight from the camera.
 *
 * One thread per relay runs a poll() loop over all connection pairs
 * (at most TLS_RELAY_MAX_PAIRS at once; more are accepted and closed).
 * When the camera cannot be reached or is not trusted, the accepted plain
 * connection is closed at once, so libavformat sees EOF quickly; the caller
 * then asks tls_relay_last_error() why.
 *
 * The caller must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)): OpenSSL writes
 * to sockets with write().  (The relay thread also blocks SIGPIPE for itself.)
 * The listening socket binds 127.0.0.1 only, but any local process can use it
 * while it runs: it gives no more than a direct connection to the camera would.
 */
#ifndef VMS_INGEST_TLS_RELAY_H
#define VMS_INGEST_TLS_RELAY_H

#include <stddef.h>

#define TLS_RELAY_MAX_PAIRS 8

/* Values of tls_relay_last_error(). */
#define TLS_RELAY_OK			0
#define TLS_RELAY_UNTRUSTED		1	/* certificate not trusted, name mismatch, pin mismatch */
#define TLS_RELAY_CONNECT		2	/* could not connect, TLS handshake failed */

typedef struct TlsRelay TlsRelay;

typedef struct TlsRelayConfig {
	const char *host;				/* the camera: DNS name or IP literal ([v6] allowed) */
	int			port;
	const char *server_name;		/* name/IP to verify; NULL = host */
	const char *ca_pem;				/* PEM trust anchors (from the DB) or NULL */
	const char *ca_file;			/* else this file, else OpenSSL's default paths */
	const unsigned char *pin_sha256;	/* 32 bytes: SHA-256 of the cert's SPKI DER, or NULL */
	int			connect_timeout_ms;	/* TCP connect, per address (<= 0: 5000) */
	int			io_timeout_ms;		/* TLS handshake (<= 0: connect_timeout_ms) */
} TlsRelayConfig;

/*
 * Starts the relay: listens on 127.0.0.1:<ephemeral> (*local_port) and
 * starts its thread.  The configuration is copied (the caller may free it).
 * With ca_pem, every certificate in the bundle is a trust anchor, and a
 * non-self-signed one (e.g. the camera's own leaf) is accepted as an anchor
 * too (X509_V_FLAG_PARTIAL_CHAIN).  The pin, when given, is checked in
 * addition to the chain and name.  Returns 0, or -1 with a message in err.
 */
int			tls_relay_start(const TlsRelayConfig *cfg, TlsRelay **out, int *local_port,
							char *err, size_t errlen);

/*
 * Why the last upstream connection failed: TLS_RELAY_OK (0) when it
 * succeeded or none was tried, TLS_RELAY_UNTRUSTED (1), TLS_RELAY_CONNECT (2);
 * the text (no secrets, no URL) goes to buf ("" for 0).  Thread-safe.
 */
int			tls_relay_last_error(TlsRelay *r, char *buf, size_t len);

/* Stops the thread, closes every connection and frees; *r becomes NULL. */
void		tls_relay_stop(TlsRelay **r);

#endif							/* VMS_INGEST_TLS_RELAY_H */
