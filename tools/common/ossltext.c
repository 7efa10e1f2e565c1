/*
 * ossltext.c: OpenSSL values as one line of text (see ossltext.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "ossltext.h"

const char *
ossl_reason(char *buf, size_t len)
{
	const char *data = NULL;
	int			flags = 0;
	unsigned long e = ERR_peek_last_error_data(&data, &flags);
	const char *reason;

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else if ((reason = ERR_reason_error_string(e)) == NULL)
		ERR_error_string_n(e, buf, len);
	else if (data != NULL && (flags & ERR_TXT_STRING) && data[0] != '\0')
		snprintf(buf, len, "%s: %s", reason, data);
	else
		snprintf(buf, len, "%s", reason);
	ERR_clear_error();
	return buf;
}

char *
name_oneline(const X509_NAME *name)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	char	   *out = NULL;
	char	   *p;
	long		n;

	if (bio == NULL)
		return NULL;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
	{
		n = BIO_get_mem_data(bio, &p);
		out = malloc((size_t) n + 1);
		if (out)
		{
			memcpy(out, p, (size_t) n);
			out[n] = '\0';
		}
	}
	BIO_free(bio);
	return out;
}
