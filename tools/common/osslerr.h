/*
 * osslerr.h: OpenSSL's last error as one line of text.
 */
#ifndef VMS_TOOLS_OSSLERR_H
#define VMS_TOOLS_OSSLERR_H

#include <stddef.h>

/* "reason" or "reason: data" of the last error into buf (or "unknown error"); empties the queue; returns buf. */
extern const char *ossl_reason(char *buf, size_t len);

#endif							/* VMS_TOOLS_OSSLERR_H */
