/*
 * ossltext.h: OpenSSL values as one line of text: the last error, a name.
 */
#ifndef VMS_TOOLS_OSSLTEXT_H
#define VMS_TOOLS_OSSLTEXT_H

#include <stddef.h>

#include <openssl/x509.h>

/* "reason" or "reason: data" of the last error into buf (or "unknown error"); empties the queue; returns buf. */
extern const char *ossl_reason(char *buf, size_t len);

/* A name (subject, issuer) in RFC 2253 form, UTF-8 kept; malloc'ed, NULL if out of memory. */
extern char *name_oneline(const X509_NAME *name);

#endif							/* VMS_TOOLS_OSSLTEXT_H */
