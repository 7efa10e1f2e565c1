/*
 * sign.c: secrets, the signer key and certificates, the detached CMS
 * signature over manifest.json (SHA-256, binary, CAdES-BES, signer and chain
 * included) and the RFC 3161 timestamp over the signature (TS_REQ over HTTP
 * POST with OSSL_HTTP_transfer; the answer must be granted and carry our
 * imprint and nonce).  OpenSSL 3.0 only.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/ts.h>
#include <openssl/ui.h>

#include "export.h"

#define MAX_SECRET			1024
#define MAX_PEM_FILE		(1024 * 1024)
#define MAX_TSA_RESPONSE	(1024 * 1024)
#define TSA_TIMEOUT_S		30

/* Reads at most max bytes of the file; NUL-terminated malloc'ed copy. */
static char *
read_small_file(const char *file, size_t max, size_t *len, char *err, size_t errlen)
{
	char	   *buf;
	int			fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
	{
		snprintf(err, errlen, "could not open \"%s\": %s", file, strerror(errno));
		return NULL;
	}
	buf = read_fd_bounded(fd, max, len);
	if (buf == NULL && errno == EFBIG)
		snprintf(err, errlen, "\"%s\" is too large (more than %zu bytes)", file, max);
	else if (buf == NULL)
		snprintf(err, errlen, "could not read \"%s\": %s", file, strerror(errno));
	close(fd);
	return buf;
}

char *
read_secret(const char *file, const char *prompt, int confirm, char *err, size_t errlen)
{
	char	   *s;

	if (file != NULL)
	{
		/* the export station's secret: a file only its owner may read */
		return secret_from_file(file, MAX_SECRET, 1, err, errlen);
	}
	else
	{
		int			tty = open("/dev/tty", O_RDWR | O_CLOEXEC);

		if (tty < 0)
		{
			snprintf(err, errlen, "no terminal to ask for the %s; give it in a file", prompt);
			return NULL;
		}
		close(tty);
		s = calloc(1, MAX_SECRET + 1);
		if (s == NULL)
		{
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		{
			char		p[128];

			snprintf(p, sizeof(p), "%s: ", prompt);
			if (EVP_read_pw_string(s, MAX_SECRET, p, confirm) != 0 || s[0] == '\0')
			{
				snprintf(err, errlen, "no %s given", prompt);
				secret_free(s);
				return NULL;
			}
		}
		return s;
	}
}

typedef struct PassCtx
{
	const char *file;
	char	   *secret;
	int			asked;
	int			failed;
	char		err[ERRLEN];
} PassCtx;

static int
pass_cb(char *buf, int size, int rwflag, void *u)
{
	PassCtx    *c = u;
	size_t		len;

	(void) rwflag;
	c->asked = 1;
	if (c->secret == NULL)
		c->secret = read_secret(c->file, "passphrase of the signer key", 0, c->err, sizeof(c->err));
	if (c->secret == NULL)
	{
		c->failed = 1;
		return -1;
	}
	len = strlen(c->secret);
	if (len > (size_t) size)
		return -1;
	memcpy(buf, c->secret, len);
	return (int) len;
}

EVP_PKEY *
load_signer_key(const char *file, const char *passphrase_file, int *was_encrypted,
				char *err, size_t errlen)
{
	PassCtx		c;
	EVP_PKEY   *key = NULL;
	BIO		   *bio = NULL;
	char	   *pem;
	size_t		len;
	char		why[256];

	memset(&c, 0, sizeof(c));
	c.file = passphrase_file;
	pem = read_small_file(file, MAX_PEM_FILE, &len, err, errlen);
	if (pem == NULL)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int) len);
	if (bio != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &c);
	if (key == NULL)
	{
		if (c.failed)
			snprintf(err, errlen, "%s", c.err);
		else
			snprintf(err, errlen, "could not read the signer key \"%s\"%s: %s", file,
					 c.asked ? " (wrong passphrase?)" : "", ossl_reason(why, sizeof(why)));
	}
	*was_encrypted = c.asked;
	BIO_free(bio);
	OPENSSL_cleanse(pem, len);
	free(pem);
	secret_free(c.secret);
	ERR_clear_error();
	return key;
}

X509 *
cert_from_pem(const char *pem, char *err, size_t errlen)
{
	BIO		   *bio = BIO_new_mem_buf(pem, -1);
	X509	   *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	char		why[256];

	if (x == NULL)
		snprintf(err, errlen, "not a PEM certificate: %s", ossl_reason(why, sizeof(why)));
	BIO_free(bio);
	return x;
}

STACK_OF(X509) *
certs_from_pem(const char *pem, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO		   *bio = BIO_new_mem_buf(pem, -1);
	X509	   *x;

	if (sk == NULL || bio == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x))
		{
			X509_free(x);
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
	{
		char		why[256];

		snprintf(err, errlen, "bad PEM certificate: %s", ossl_reason(why, sizeof(why)));
		goto fail;
	}
	ERR_clear_error();
	BIO_free(bio);
	return sk;
fail:
	BIO_free(bio);
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

STACK_OF(X509) *
certs_from_file(const char *file, char *err, size_t errlen)
{
	size_t		len;
	char	   *pem = read_small_file(file, MAX_PEM_FILE, &len, err, errlen);
	STACK_OF(X509) *sk;
	char		e[ERRLEN - 64];

	if (pem == NULL)
		return NULL;
	sk = certs_from_pem(pem, e, sizeof(e));
	free(pem);
	if (sk == NULL)
		snprintf(err, errlen, "\"%s\": %s", file, e);
	else if (sk_X509_num(sk) == 0)
	{
		snprintf(err, errlen, "\"%s\" holds no PEM certificate", file);
		sk_X509_free(sk);
		sk = NULL;
	}
	return sk;
}

int
cert_sha256_hex(X509 *cert, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32)
		return -1;
	hex_of(md, 32, out);
	return 0;
}

char *
cert_subject(X509 *cert)
{
	return name_oneline(X509_get_subject_name(cert));
}

/* Writes the DER in a memory BIO as name below dirfd; the bytes stay in *der. */
static int
write_bio(int dirfd, const char *name, BIO *mem, char *err, size_t errlen)
{
	char	   *p;
	long		n = BIO_get_mem_data(mem, &p);

	return write_file_at(dirfd, name, p, (size_t) n, 0644, err, errlen);
}

int
sign_manifest(int dirfd, const char *manifest, size_t len, X509 *cert, EVP_PKEY *key,
			  STACK_OF(X509) *chain, char **p7s, size_t *p7s_len, char *err, size_t errlen)
{
	const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = NULL;
	BIO		   *in = BIO_new_mem_buf(manifest, (int) len);
	BIO		   *out = BIO_new(BIO_s_mem());
	char		why[256];
	char	   *p;
	long		n;
	int			ret = -1;

	if (in == NULL || out == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	cms = CMS_sign(NULL, NULL, chain, NULL, flags | CMS_PARTIAL);
	if (cms == NULL || CMS_add1_signer(cms, cert, key, EVP_sha256(), flags | CMS_CADES) == NULL ||
		CMS_final(cms, in, NULL, flags) != 1 || i2d_CMS_bio(out, cms) != 1)
	{
		snprintf(err, errlen, "signing the manifest: %s", ossl_reason(why, sizeof(why)));
		goto end;
	}
	if (write_bio(dirfd, "manifest.json.p7s", out, err, errlen) != 0)
		goto end;
	n = BIO_get_mem_data(out, &p);
	*p7s = malloc((size_t) n);
	if (*p7s == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	memcpy(*p7s, p, (size_t) n);
	*p7s_len = (size_t) n;
	ret = 0;
end:
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	return ret;
}

/* TLS for https:// TSAs (after OpenSSL's apps/lib/apps.c app_http_tls_cb). */
typedef struct TlsArg
{
	SSL_CTX    *ctx;
	const char *host;
} TlsArg;

static BIO *
tls_cb(BIO *bio, void *arg, int connect, int detail)
{
	TlsArg	   *t = arg;

	if (connect && detail)
	{
		BIO		   *sbio = BIO_new_ssl(t->ctx, 1);
		SSL		   *ssl = NULL;

		if (sbio == NULL)
			return NULL;
		BIO_get_ssl(sbio, &ssl);
		if (ssl == NULL || SSL_set_tlsext_host_name(ssl, t->host) != 1 || SSL_set1_host(ssl, t->host) != 1)
		{
			BIO_free(sbio);
			return NULL;
		}
		return BIO_push(sbio, bio);
	}
	if (!connect)
	{
		BIO		   *cbio;

		(void) ERR_set_mark();
		BIO_ssl_shutdown(bio);
		cbio = BIO_pop(bio);
		BIO_free(bio);
		(void) ERR_pop_to_mark();
		return cbio;
	}
	return bio;
}

int
timestamp_signature(int dirfd, const char *url, const char *p7s, size_t p7s_len,
					char *err, size_t errlen)
{
	unsigned char md[32];
	TS_REQ	   *req = NULL;
	TS_MSG_IMPRINT *mi = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_INTEGER *nonce = NULL;
	BIGNUM	   *bn = NULL;
	BIO		   *reqbio = NULL, *rsp = NULL, *mem = NULL;
	TS_RESP    *resp = NULL;
	TS_VERIFY_CTX *vctx = NULL;
	SSL_CTX    *sslctx = NULL;
	TlsArg		tls;
	char	   *host = NULL, *port = NULL, *path = NULL;
	int			use_ssl = 0, ret = -1;
	char		why[256], buf[16384];
	const unsigned char *der;
	char	   *p;
	long		n;

	if (OSSL_HTTP_parse_url(url, &use_ssl, NULL, &host, &port, NULL, &path, NULL, NULL) != 1)
	{
		snprintf(err, errlen, "timestamp: bad TSA URL \"%s\"", url);
		goto end;
	}
	if (EVP_Digest(p7s, p7s_len, md, NULL, EVP_sha256(), NULL) != 1)
		goto crypto;
	req = TS_REQ_new();
	mi = TS_MSG_IMPRINT_new();
	alg = X509_ALGOR_new();
	bn = BN_new();
	if (!req || !mi || !alg || !bn || TS_REQ_set_version(req, 1) != 1 ||
		X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) != 1 ||
		TS_MSG_IMPRINT_set_algo(mi, alg) != 1 || TS_MSG_IMPRINT_set_msg(mi, md, 32) != 1 ||
		TS_REQ_set_msg_imprint(req, mi) != 1 || BN_rand(bn, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
		(nonce = BN_to_ASN1_INTEGER(bn, NULL)) == NULL || TS_REQ_set_nonce(req, nonce) != 1 ||
		TS_REQ_set_cert_req(req, 1) != 1)
		goto crypto;
	reqbio = BIO_new(BIO_s_mem());
	if (reqbio == NULL || i2d_TS_REQ_bio(reqbio, req) != 1)
		goto crypto;
	if (use_ssl)
	{
		sslctx = SSL_CTX_new(TLS_client_method());
		if (sslctx == NULL || SSL_CTX_set_default_verify_paths(sslctx) != 1 ||
			SSL_CTX_set_min_proto_version(sslctx, TLS1_2_VERSION) != 1)
			goto crypto;
		SSL_CTX_set_verify(sslctx, SSL_VERIFY_PEER, NULL);
		tls.ctx = sslctx;
		tls.host = host;
	}
	rsp = OSSL_HTTP_transfer(NULL, host, port, path, use_ssl, NULL, NULL, NULL, NULL,
							 use_ssl ? tls_cb : NULL, use_ssl ? &tls : NULL, 0, NULL,
							 "application/timestamp-query", reqbio, "application/timestamp-reply",
							 0, MAX_TSA_RESPONSE, TSA_TIMEOUT_S, 0);
	if (rsp == NULL)
	{
		snprintf(err, errlen, "timestamp: no answer from %s: %s", url, ossl_reason(why, sizeof(why)));
		goto end;
	}
	/* Keep the bytes as the TSA sent them. */
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		goto crypto;
	while ((n = BIO_read(rsp, buf, sizeof(buf))) > 0)
		if (BIO_write(mem, buf, (int) n) != n)
			goto crypto;
	n = BIO_get_mem_data(mem, &p);
	der = (const unsigned char *) p;
	resp = d2i_TS_RESP(NULL, &der, n);
	if (resp == NULL || der != (const unsigned char *) p + n)
	{
		snprintf(err, errlen, "timestamp: the answer of %s is not a TimeStampResp", url);
		goto end;
	}
	/* Status granted, version, our imprint and nonce; the TSA's signature is the receiver's to check. */
	vctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL);
	if (vctx == NULL)
		goto crypto;
	TS_VERIFY_CTX_set_flags(vctx, TS_VFY_VERSION | TS_VFY_IMPRINT | TS_VFY_NONCE);
	if (TS_RESP_verify_response(vctx, resp) != 1)
	{
		snprintf(err, errlen, "timestamp: the answer of %s is not for this request or not granted: %s",
				 url, ossl_reason(why, sizeof(why)));
		goto end;
	}
	if (write_file_at(dirfd, "manifest.json.p7s.tsr", p, (size_t) n, 0644, err, errlen) != 0)
		goto end;
	ret = 0;
	goto end;
crypto:
	snprintf(err, errlen, "timestamp: %s", ossl_reason(why, sizeof(why)));
end:
	TS_VERIFY_CTX_free(vctx);
	TS_RESP_free(resp);
	BIO_free(mem);
	BIO_free_all(rsp);
	BIO_free(reqbio);
	SSL_CTX_free(sslctx);
	TS_REQ_free(req);
	TS_MSG_IMPRINT_free(mi);
	X509_ALGOR_free(alg);
	ASN1_INTEGER_free(nonce);
	BN_free(bn);
	OPENSSL_free(host);
	OPENSSL_free(port);
	OPENSSL_free(path);
	return ret;
}
