/*
 * osslerr.c: OpenSSL's last error as one line of text (see osslerr.h).
 */
#include <stdio.h>

#include <openssl/err.h>

#include "osslerr.h"

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
