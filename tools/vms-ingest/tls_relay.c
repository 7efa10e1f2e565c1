/*
 * tls_relay.c: plain loopback connections in, verified TLS to the camera out.
 * See tls_relay.h.  Everything is non-blocking and driven by one poll() loop
 * in the relay thread; each pair goes CONNECTING -> HANDSHAKE -> RELAY.
 * Only the name lookup (getaddrinfo, once per accepted connection) blocks.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls_relay.h"

#define RELAY_BUF_SIZE		16384	/* one TLS record of plaintext */
#define DEFAULT_TIMEOUT_MS	5000

enum PairState
{
	PAIR_CONNECTING,
	PAIR_HANDSHAKE,
	PAIR_RELAY
};

typedef struct RelayPair
{
	int			plain_fd;		/* accepted from libavformat */
	int			tls_fd;			/* to the camera, -1 until a socket exists */
	SSL		   *ssl;
	enum PairState state;
	struct addrinfo *addrs;		/* getaddrinfo result, freed with the pair */
	struct addrinfo *next_addr; /* next address to try */
	int			connect_errno;	/* last connect failure, for the message */
	int64_t		deadline_ms;	/* CONNECTING / HANDSHAKE only */
	short		hs_events;		/* what SSL_connect waits for */
	short		read_events;	/* what SSL_read waits for (POLLIN unless WANT_WRITE) */
	short		write_events;	/* what SSL_write waits for (POLLOUT unless WANT_READ) */
	int			plain_eof;
	int			tls_eof;
	int			first_chunk;	/* nothing read from libavformat yet */
	/* plain -> camera; refilled only when empty, so an SSL_write retry sees the same bytes */
	unsigned char up[RELAY_BUF_SIZE];
	size_t		up_off, up_len;
	size_t		up_split;		/* end of the first TLS record to send, 0 = none */
	/* camera -> plain */
	unsigned char down[RELAY_BUF_SIZE];
	size_t		down_off, down_len;
} RelayPair;

struct TlsRelay
{
	char	   *host;			/* without brackets */
	char		port_str[8];
	int			port;
	char	   *verify_name;	/* without brackets */
	int			verify_is_ip;
	unsigned char pin[32];
	int			has_pin;
	int			connect_timeout_ms;
	int			handshake_timeout_ms;

	SSL_CTX    *ctx;
	int			listen_fd;
	int			wake_fd[2];		/* self-pipe: tls_relay_stop writes a byte */
	pthread_t	thread;
	int			thread_started;

	RelayPair  *pairs[TLS_RELAY_MAX_PAIRS];

	pthread_mutex_t lock;		/* guards last_code/last_msg */
	int			lock_ready;
	int			last_code;
	char		last_msg[512];
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
set_nonblock_cloexec(int fd)
{
	int			fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

/* The first queued OpenSSL error as text, or fallback when the queue is empty. */
static void
ssl_error_text(char *buf, size_t len, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "%s", fallback);
	ERR_clear_error();
}

static void
set_last_error(TlsRelay *r, int code, const char *fmt,...)
{
	va_list		ap;

	pthread_mutex_lock(&r->lock);
	r->last_code = code;
	va_start(ap, fmt);
	vsnprintf(r->last_msg, sizeof(r->last_msg), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&r->lock);
}

/* Copies s; strips the brackets of an IPv6 literal ("[::1]" -> "::1"). */
static char *
copy_host(const char *s)
{
	size_t		n = strlen(s);
	char	   *c;

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
	{
		s++;
		n -= 2;
	}
	c = malloc(n + 1);
	if (!c)
		return NULL;
	memcpy(c, s, n);
	c[n] = '\0';
	return c;
}

static int
is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Adds every certificate of a PEM bundle to the context's trust store. */
static int
load_ca_pem(SSL_CTX *ctx, const char *pem, char *err, size_t errlen)
{
	BIO		   *bio = NULL;
	STACK_OF(X509_INFO) *infos = NULL;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	int			i, n = 0, ret = -1;
	char		ebuf[256];

	ERR_clear_error();
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	if (!infos)
	{
		ssl_error_text(ebuf, sizeof(ebuf), "unreadable PEM");
		snprintf(err, errlen, "camera CA certificates (tls_ca_pem) unreadable: %s", ebuf);
		goto end;
	}
	for (i = 0; i < sk_X509_INFO_num(infos); i++)
	{
		X509_INFO  *xi = sk_X509_INFO_value(infos, i);

		if (!xi->x509)
			continue;
		if (!X509_STORE_add_cert(store, xi->x509))
		{
			ssl_error_text(ebuf, sizeof(ebuf), "X509_STORE_add_cert failed");
			snprintf(err, errlen, "camera CA certificates (tls_ca_pem): %s", ebuf);
			goto end;
		}
		n++;
	}
	if (n == 0)
	{
		snprintf(err, errlen, "camera CA certificates (tls_ca_pem) hold no certificate");
		goto end;
	}
	/* Explicit per-camera anchors: a pinned leaf or intermediate is enough. */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	ret = 0;
end:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	return ret;
}

static SSL_CTX *
make_ctx(const TlsRelayConfig *cfg, char *err, size_t errlen)
{
	SSL_CTX    *ctx = NULL;
	char		ebuf[256];

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
	{
		ssl_error_text(ebuf, sizeof(ebuf), "SSL_CTX_new failed");
		snprintf(err, errlen, "TLS setup: %s", ebuf);
		goto fail;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
	{
		snprintf(err, errlen, "TLS setup: cannot require TLS 1.2");
		goto fail;
	}
	/* An unexpected EOF just ends the stream, like a TCP close would. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
						SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

	if (cfg->ca_pem)
	{
		if (load_ca_pem(ctx, cfg->ca_pem, err, errlen) < 0)
			goto fail;
	}
	else if (cfg->ca_file)
	{
		if (!SSL_CTX_load_verify_file(ctx, cfg->ca_file))
		{
			ssl_error_text(ebuf, sizeof(ebuf), "no certificate found");
			snprintf(err, errlen, "camera CA file %s: %s", cfg->ca_file, ebuf);
			goto fail;
		}
	}
	else if (!SSL_CTX_set_default_verify_paths(ctx))
	{
		ssl_error_text(ebuf, sizeof(ebuf), "failed");
		snprintf(err, errlen, "loading OpenSSL's default trust store: %s", ebuf);
		goto fail;
	}
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void
pair_free(RelayPair *p)
{
	if (!p)
		return;
	SSL_free(p->ssl);
	if (p->tls_fd >= 0)
		close(p->tls_fd);
	if (p->plain_fd >= 0)
		close(p->plain_fd);
	if (p->addrs)
		freeaddrinfo(p->addrs);
	free(p);
}

static void
close_slot(TlsRelay *r, int slot)
{
	pair_free(r->pairs[slot]);
	r->pairs[slot] = NULL;
}

static int	pair_try_next_address(TlsRelay *r, RelayPair *p);

/* Upstream setup failed: record why, drop both sides (libavformat sees EOF). */
static int
pair_fail(TlsRelay *r, int slot, int code, const char *fmt,...)
{
	va_list		ap;
	char		msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_last_error(r, code, "%s", msg);
	close_slot(r, slot);
	return -1;
}

static int
pair_check_pin(TlsRelay *r, RelayPair *p)
{
	X509	   *cert = SSL_get0_peer_certificate(p->ssl);
	X509_PUBKEY *pk;
	unsigned char *der = NULL, *q;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int			len, ret = -1;

	if (!cert || !(pk = X509_get_X509_PUBKEY(cert)))
		goto end;
	len = i2d_X509_PUBKEY(pk, NULL);
	if (len <= 0 || !(der = OPENSSL_malloc(len)))
		goto end;
	q = der;
	if (i2d_X509_PUBKEY(pk, &q) != len)
		goto end;
	if (!EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		goto end;
	if (CRYPTO_memcmp(md, r->pin, 32) == 0)
		ret = 0;
end:
	OPENSSL_free(der);
	ERR_clear_error();
	return ret;
}

static int	pair_pump(TlsRelay *r, int slot);

/*
 * Where the HTTP request head ends in the first chunk of a connection, or 0.
 * The RTSP-over-HTTP POST sends its head and the first base64 RTSP request
 * in two writes, which may reach us as one chunk while the handshake runs.
 * gst-rtsp-server (and perhaps cameras) lose the body when it shares a TLS
 * record with the head, as it never does when libavformat does TLS itself,
 * so the head goes in a record of its own.
 */
static size_t
http_head_end(const unsigned char *buf, size_t len)
{
	size_t		i;

	if (len < 4 || buf[0] < 'A' || buf[0] > 'Z')
		return 0;
	for (i = 0; i + 4 <= len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return i + 4 < len ? i + 4 : 0;
	return 0;
}

static int
pair_handshake(TlsRelay *r, int slot)
{
	RelayPair  *p = r->pairs[slot];
	int			rc, e, saved_errno;
	long		vr;
	char		ebuf[256];

	ERR_clear_error();
	errno = 0;
	rc = SSL_connect(p->ssl);
	saved_errno = errno;
	if (rc == 1)
	{
		if (r->has_pin && pair_check_pin(r, p) < 0)
			return pair_fail(r, slot, TLS_RELAY_UNTRUSTED, "certificate pin mismatch");
		p->state = PAIR_RELAY;
		set_last_error(r, TLS_RELAY_OK, "%s", "");
		return pair_pump(r, slot);
	}
	e = SSL_get_error(p->ssl, rc);
	if (e == SSL_ERROR_WANT_READ)
	{
		p->hs_events = POLLIN;
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE)
	{
		p->hs_events = POLLOUT;
		return 0;
	}
	vr = SSL_get_verify_result(p->ssl);
	if (vr != X509_V_OK)
	{
		ERR_clear_error();
		return pair_fail(r, slot, TLS_RELAY_UNTRUSTED, "camera certificate not trusted: %s",
						 X509_verify_cert_error_string(vr));
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
		snprintf(ebuf, sizeof(ebuf), "%s", rc == 0 || !saved_errno ?
				 "connection closed by the camera" : strerror(saved_errno));
	else
		ssl_error_text(ebuf, sizeof(ebuf), "handshake failed");
	return pair_fail(r, slot, TLS_RELAY_CONNECT, "TLS handshake with camera %s:%d failed: %s",
					 r->host, r->port, ebuf);
}

static int
pair_start_tls(TlsRelay *r, int slot)
{
	RelayPair  *p = r->pairs[slot];
	char		ebuf[256];

	ERR_clear_error();
	p->ssl = SSL_new(r->ctx);
	if (!p->ssl || !SSL_set_fd(p->ssl, p->tls_fd))
		goto fail;
	SSL_set_hostflags(p->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (r->verify_is_ip)
	{
		/* IP literal: match an iPAddress SAN; no SNI (RFC 6066 forbids it). */
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), r->verify_name))
			goto fail;
	}
	else
	{
		if (!SSL_set1_host(p->ssl, r->verify_name) ||
			!SSL_set_tlsext_host_name(p->ssl, r->verify_name))
			goto fail;
	}
	SSL_set_connect_state(p->ssl);
	p->state = PAIR_HANDSHAKE;
	p->deadline_ms = now_ms() + r->handshake_timeout_ms;
	p->hs_events = POLLOUT;
	return pair_handshake(r, slot);

fail:
	ssl_error_text(ebuf, sizeof(ebuf), "out of memory");
	return pair_fail(r, slot, TLS_RELAY_CONNECT, "TLS setup for camera %s:%d: %s",
					 r->host, r->port, ebuf);
}

/*
 * Starts a non-blocking connect to the next address.  Returns 0 while one is
 * in progress (or TLS started), -1 when the pair was closed.
 */
static int
pair_try_next_address(TlsRelay *r, RelayPair *p)
{
	int			slot;

	for (slot = 0; slot < TLS_RELAY_MAX_PAIRS; slot++)
		if (r->pairs[slot] == p)
			break;

	while (p->next_addr)
	{
		struct addrinfo *ai = p->next_addr;
		int			one = 1;

		p->next_addr = ai->ai_next;
		if (p->tls_fd >= 0)
		{
			close(p->tls_fd);
			p->tls_fd = -1;
		}
		p->tls_fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (p->tls_fd < 0)
		{
			p->connect_errno = errno;
			continue;
		}
		if (set_nonblock_cloexec(p->tls_fd) < 0)
		{
			p->connect_errno = errno;
			continue;
		}
		/* RTSP interleaved packets are small; don't let Nagle hold them. */
		setsockopt(p->tls_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(p->tls_fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return pair_start_tls(r, slot);
		if (errno == EINPROGRESS || errno == EINTR)
		{
			p->state = PAIR_CONNECTING;
			p->deadline_ms = now_ms() + r->connect_timeout_ms;
			return 0;
		}
		p->connect_errno = errno;
	}
	return pair_fail(r, slot, TLS_RELAY_CONNECT, "cannot connect to camera %s:%d: %s",
					 r->host, r->port,
					 p->connect_errno ? strerror(p->connect_errno) : "no address");
}

static int
pair_connected(TlsRelay *r, int slot)
{
	RelayPair  *p = r->pairs[slot];
	int			soerr = 0;
	socklen_t	sl = sizeof(soerr);

	if (getsockopt(p->tls_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr == EINPROGRESS || soerr == EALREADY)
		return 0;
	if (soerr)
	{
		p->connect_errno = soerr;
		return pair_try_next_address(r, p);
	}
	return pair_start_tls(r, slot);
}

/*
 * Moves whatever can move without blocking, in both directions, until
 * nothing does.  Returns the number of steps that made progress, or -1 when
 * the pair was closed (EOF on either side once flushed, or an error).
 */
static int
pair_pump(TlsRelay *r, int slot)
{
	RelayPair  *p = r->pairs[slot];
	int			total = 0;

	for (;;)
	{
		int			progress = 0;
		ssize_t		n;
		int			rc, e;

		/* libavformat -> buffer */
		if (!p->plain_eof && p->up_len == 0)
		{
			n = recv(p->plain_fd, p->up, sizeof(p->up), 0);
			if (n > 0)
			{
				p->up_off = 0;
				p->up_len = (size_t) n;
				p->up_split = p->first_chunk ? http_head_end(p->up, p->up_len) : 0;
				p->first_chunk = 0;
				progress++;
			}
			else if (n == 0)
			{
				p->plain_eof = 1;
				progress++;
			}
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				goto close;
		}

		/* buffer -> camera */
		if (p->up_off < p->up_len)
		{
			size_t		end = p->up_split > p->up_off ? p->up_split : p->up_len;

			ERR_clear_error();
			rc = SSL_write(p->ssl, p->up + p->up_off, (int) (end - p->up_off));
			if (rc > 0)
			{
				p->up_off += (size_t) rc;
				if (p->up_off == p->up_len)
					p->up_off = p->up_len = 0;
				p->write_events = POLLOUT;
				progress++;
			}
			else
			{
				e = SSL_get_error(p->ssl, rc);
				if (e == SSL_ERROR_WANT_READ)
					p->write_events = POLLIN;
				else if (e == SSL_ERROR_WANT_WRITE)
					p->write_events = POLLOUT;
				else
					goto close;
			}
		}

		/* camera -> buffer; loops while SSL_pending() holds a decrypted record */
		if (!p->tls_eof && p->down_len == 0)
		{
			ERR_clear_error();
			rc = SSL_read(p->ssl, p->down, sizeof(p->down));
			if (rc > 0)
			{
				p->down_off = 0;
				p->down_len = (size_t) rc;
				p->read_events = POLLIN;
				progress++;
			}
			else
			{
				e = SSL_get_error(p->ssl, rc);
				if (e == SSL_ERROR_WANT_READ)
					p->read_events = POLLIN;
				else if (e == SSL_ERROR_WANT_WRITE)
					p->read_events = POLLOUT;
				else if (e == SSL_ERROR_ZERO_RETURN)
				{
					p->tls_eof = 1;
					progress++;
				}
				else
					goto close;
			}
		}

		/* buffer -> libavformat */
		if (p->down_off < p->down_len)
		{
			n = send(p->plain_fd, p->down + p->down_off, p->down_len - p->down_off,
					 MSG_NOSIGNAL);
			if (n > 0)
			{
				p->down_off += (size_t) n;
				if (p->down_off == p->down_len)
					p->down_off = p->down_len = 0;
				progress++;
			}
			else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				goto close;
		}

		if (!progress)
			break;
		total += progress;
	}

	/* Half-close ends the pair once what was received has been passed on. */
	if (p->tls_eof && p->down_len == 0)
		goto close;
	if (p->plain_eof && p->up_len == 0)
	{
		ERR_clear_error();
		SSL_shutdown(p->ssl);	/* best effort close_notify, never waited for */
		goto close;
	}
	return total;

close:
	ERR_clear_error();
	close_slot(r, slot);
	return -1;
}

static void
accept_all(TlsRelay *r)
{
	for (;;)
	{
		int			fd = accept(r->listen_fd, NULL, NULL);
		int			slot, rc;
		RelayPair  *p;
		struct addrinfo hints;

		if (fd < 0)
			return;				/* EAGAIN, or an aborted connection */
		for (slot = 0; slot < TLS_RELAY_MAX_PAIRS; slot++)
			if (!r->pairs[slot])
				break;
		if (slot == TLS_RELAY_MAX_PAIRS || set_nonblock_cloexec(fd) < 0)
		{
			close(fd);
			continue;
		}
		p = calloc(1, sizeof(*p));
		if (!p)
		{
			close(fd);
			continue;
		}
		p->plain_fd = fd;
		p->tls_fd = -1;
		p->read_events = POLLIN;
		p->write_events = POLLOUT;
		p->first_chunk = 1;
		r->pairs[slot] = p;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		rc = getaddrinfo(r->host, r->port_str, &hints, &p->addrs);
		if (rc != 0)
		{
			p->addrs = NULL;
			pair_fail(r, slot, TLS_RELAY_CONNECT, "cannot resolve camera host %s: %s",
					  r->host, gai_strerror(rc));
			continue;
		}
		p->next_addr = p->addrs;
		pair_try_next_address(r, p);
	}
}

/* Poll events a pair waits for on each side. */
static void
pair_events(const RelayPair *p, short *plain_ev, short *tls_ev)
{
	*plain_ev = 0;
	*tls_ev = 0;
	switch (p->state)
	{
		case PAIR_CONNECTING:
			*tls_ev = POLLOUT;
			break;
		case PAIR_HANDSHAKE:
			*tls_ev = p->hs_events;
			break;
		case PAIR_RELAY:
			if (!p->plain_eof && p->up_len == 0)
				*plain_ev |= POLLIN;
			if (p->down_off < p->down_len)
				*plain_ev |= POLLOUT;
			if (p->up_off < p->up_len)
				*tls_ev |= p->write_events;
			if (!p->tls_eof && p->down_len == 0)
				*tls_ev |= p->read_events;
			break;
	}
}

static void
service_slot(TlsRelay *r, int slot, short plain_rev, short tls_rev)
{
	RelayPair  *p = r->pairs[slot];
	int			rc;

	/* libavformat gave up (reset) while we were still setting up. */
	if (p->state != PAIR_RELAY && (plain_rev & (POLLERR | POLLHUP | POLLNVAL)))
	{
		close_slot(r, slot);
		return;
	}
	switch (p->state)
	{
		case PAIR_CONNECTING:
			if (tls_rev)
				pair_connected(r, slot);
			break;
		case PAIR_HANDSHAKE:
			if (tls_rev)
				pair_handshake(r, slot);
			break;
		case PAIR_RELAY:
			rc = pair_pump(r, slot);
			/* A hang-up that moves nothing would make poll() spin: close. */
			if (rc == 0 && ((plain_rev | tls_rev) & (POLLERR | POLLHUP | POLLNVAL)))
				close_slot(r, slot);
			break;
	}
}

static void
check_deadlines(TlsRelay *r, int64_t now)
{
	int			slot;

	for (slot = 0; slot < TLS_RELAY_MAX_PAIRS; slot++)
	{
		RelayPair  *p = r->pairs[slot];

		if (!p || p->state == PAIR_RELAY || now < p->deadline_ms)
			continue;
		if (p->state == PAIR_CONNECTING)
		{
			p->connect_errno = ETIMEDOUT;
			pair_try_next_address(r, p);
		}
		else
			pair_fail(r, slot, TLS_RELAY_CONNECT,
					  "TLS handshake with camera %s:%d timed out", r->host, r->port);
	}
}

static void *
relay_thread(void *arg)
{
	TlsRelay   *r = arg;
	struct pollfd pfd[2 + 2 * TLS_RELAY_MAX_PAIRS];
	int			idx_plain[TLS_RELAY_MAX_PAIRS], idx_tls[TLS_RELAY_MAX_PAIRS];
	sigset_t	set;
	int			slot;

	/* Belt and braces: SSL_write() must not kill the worker. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	for (;;)
	{
		int			n = 0, rc, timeout = -1;
		int64_t		now = now_ms();

		pfd[n].fd = r->wake_fd[0];
		pfd[n++].events = POLLIN;
		pfd[n].fd = r->listen_fd;
		pfd[n++].events = POLLIN;
		for (slot = 0; slot < TLS_RELAY_MAX_PAIRS; slot++)
		{
			RelayPair  *p = r->pairs[slot];
			short		pe, te;

			idx_plain[slot] = idx_tls[slot] = -1;
			if (!p)
				continue;
			pair_events(p, &pe, &te);
			/* Always listed, so that hang-ups are seen even with no events. */
			idx_plain[slot] = n;
			pfd[n].fd = p->plain_fd;
			pfd[n++].events = pe;
			if (p->tls_fd >= 0)
			{
				idx_tls[slot] = n;
				pfd[n].fd = p->tls_fd;
				pfd[n++].events = te;
			}
			if (p->state != PAIR_RELAY)
			{
				int64_t		left = p->deadline_ms - now;
				int			t = left < 0 ? 0 : (left > 60000 ? 60000 : (int) left);

				if (timeout < 0 || t < timeout)
					timeout = t;
			}
		}

		rc = poll(pfd, n, timeout);
		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			set_last_error(r, TLS_RELAY_CONNECT, "TLS relay stopped: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			break;				/* tls_relay_stop */

		for (slot = 0; slot < TLS_RELAY_MAX_PAIRS; slot++)
		{
			short		prev = 0, trev = 0;

			if (!r->pairs[slot])
				continue;
			if (idx_plain[slot] >= 0)
				prev = pfd[idx_plain[slot]].revents;
			if (idx_tls[slot] >= 0)
				trev = pfd[idx_tls[slot]].revents;
			if (prev || trev)
				service_slot(r, slot, prev, trev);
		}
		check_deadlines(r, now_ms());
		if (pfd[1].revents & POLLIN)
			accept_all(r);
	}

	for (slot = 0; slot < TLS_RELAY_MAX_PAIRS; slot++)
		close_slot(r, slot);
	/* No more accepts: later connection attempts are refused at once. */
	close(r->listen_fd);
	r->listen_fd = -1;
	return NULL;
}

static void
relay_free(TlsRelay *r)
{
	if (!r)
		return;
	if (r->listen_fd >= 0)
		close(r->listen_fd);
	if (r->wake_fd[0] >= 0)
		close(r->wake_fd[0]);
	if (r->wake_fd[1] >= 0)
		close(r->wake_fd[1]);
	SSL_CTX_free(r->ctx);
	if (r->lock_ready)
		pthread_mutex_destroy(&r->lock);
	free(r->host);
	free(r->verify_name);
	free(r);
}

int
tls_relay_start(const TlsRelayConfig *cfg, TlsRelay **out, int *local_port,
				char *err, size_t errlen)
{
	TlsRelay   *r = NULL;
	struct sockaddr_in sa;
	socklen_t	sl = sizeof(sa);
	int			i, rc;

	*out = NULL;
	if (!cfg->host || !*cfg->host || cfg->port <= 0 || cfg->port > 65535)
	{
		snprintf(err, errlen, "TLS relay: camera host and port (1..65535) are required");
		goto fail;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
	{
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r->listen_fd = r->wake_fd[0] = r->wake_fd[1] = -1;
	if (pthread_mutex_init(&r->lock, NULL) != 0)
	{
		snprintf(err, errlen, "TLS relay: cannot create a mutex");
		goto fail;
	}
	r->lock_ready = 1;

	r->host = copy_host(cfg->host);
	r->verify_name = copy_host(cfg->server_name && *cfg->server_name ? cfg->server_name : cfg->host);
	if (!r->host || !r->verify_name)
	{
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r->port = cfg->port;
	snprintf(r->port_str, sizeof(r->port_str), "%d", cfg->port);
	r->verify_is_ip = is_ip_literal(r->verify_name);
	if (cfg->pin_sha256)
	{
		memcpy(r->pin, cfg->pin_sha256, 32);
		r->has_pin = 1;
	}
	r->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
	r->handshake_timeout_ms = cfg->io_timeout_ms > 0 ? cfg->io_timeout_ms : r->connect_timeout_ms;

	r->ctx = make_ctx(cfg, err, errlen);
	if (!r->ctx)
		goto fail;

	if (pipe(r->wake_fd) < 0)
	{
		snprintf(err, errlen, "TLS relay: pipe: %s", strerror(errno));
		goto fail;
	}
	for (i = 0; i < 2; i++)
		if (set_nonblock_cloexec(r->wake_fd[i]) < 0)
		{
			snprintf(err, errlen, "TLS relay: fcntl: %s", strerror(errno));
			goto fail;
		}

	r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->listen_fd < 0 || set_nonblock_cloexec(r->listen_fd) < 0)
	{
		snprintf(err, errlen, "TLS relay: socket: %s", strerror(errno));
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	if (bind(r->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
		listen(r->listen_fd, TLS_RELAY_MAX_PAIRS) < 0 ||
		getsockname(r->listen_fd, (struct sockaddr *) &sa, &sl) < 0)
	{
		snprintf(err, errlen, "TLS relay: cannot listen on 127.0.0.1: %s", strerror(errno));
		goto fail;
	}

	rc = pthread_create(&r->thread, NULL, relay_thread, r);
	if (rc != 0)
	{
		snprintf(err, errlen, "TLS relay: cannot start thread: %s", strerror(rc));
		goto fail;
	}
	r->thread_started = 1;
	*local_port = ntohs(sa.sin_port);
	*out = r;
	return 0;

fail:
	relay_free(r);
	return -1;
}

int
tls_relay_last_error(TlsRelay *r, char *buf, size_t len)
{
	int			code;

	pthread_mutex_lock(&r->lock);
	code = r->last_code;
	if (buf && len)
		snprintf(buf, len, "%s", code ? r->last_msg : "");
	pthread_mutex_unlock(&r->lock);
	return code;
}

void
tls_relay_stop(TlsRelay **rp)
{
	TlsRelay   *r = rp ? *rp : NULL;
	char		c = 1;

	if (!r)
		return;
	if (r->thread_started)
	{
		while (write(r->wake_fd[1], &c, 1) < 0 && errno == EINTR)
			;
		pthread_join(r->thread, NULL);
	}
	relay_free(r);
	*rp = NULL;
}
