/*
 * log.h: vms-ingest's log lines, "vms-ingest[camera=ID]: LEVEL: message" on
 * stderr, one per event, and FFmpeg's own log routed into the same format.
 * Every line, ours and FFmpeg's, goes through the redaction: URL userinfo
 * ("scheme://user:pass@") and the camera's password (plain, percent-encoded,
 * and as "user:password") become "***".
 */
#ifndef VMS_INGEST_LOG_H
#define VMS_INGEST_LOG_H

#include <stddef.h>

#define LOG_ERROR	0
#define LOG_WARNING	1
#define LOG_INFO	2
#define LOG_DEBUG	3

/* Sets the camera id and the level; installs the av_log callback (FFmpeg at warning, or info when verbose). */
extern void log_init(int camera, int verbose);

/* The credential to redact (copied; the previous copy is wiped).  NULLs clear it. */
extern int	log_set_secret(const char *username, const char *password);

extern void log_msg(int level, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#define log_error(...)		log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)		log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)		log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * A URL's userinfo part: everything but RFC 3986's unreserved characters
 * percent-encoded (malloc'd; NULL when out of memory).  source.c builds the
 * camera URL with it, so the redaction knows the exact form.
 */
extern char *log_percent_encode(const char *in);

/* in, redacted and flattened to one line of printable ASCII, into out. */
extern void log_redact(const char *in, char *out, size_t outsize);

/* How many FFmpeg messages so far said "401 Unauthorized" (a camera refusing the credentials). */
extern unsigned long log_unauthorized_count(void);

#endif							/* VMS_INGEST_LOG_H */
