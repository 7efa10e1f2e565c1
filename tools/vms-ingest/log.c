/*
 * log.c: vms-ingest's log lines and FFmpeg's, redacted (see log.h).
 *
 * av_log_set_callback() takes no context pointer, so what the callback needs
 * (camera id, level, the secret to redact) lives in this file's one static
 * struct, behind a mutex: FFmpeg logs from the capture thread, the registrar
 * logs from its own.
 */
#define _DEFAULT_SOURCE			/* strncasecmp */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libavutil/log.h>
#include <openssl/crypto.h>

#include "log.h"

#define LINE_MAX_BYTES	4096
#define NSECRETS		4

static struct
{
	pthread_mutex_t lock;
	int			camera;
	int			level;
	char	   *secret[NSECRETS];	/* longest first; NULL-terminated */
	unsigned long unauthorized;
}			logstate = {PTHREAD_MUTEX_INITIALIZER, 0, LOG_INFO, {NULL}, 0};

static const char *const level_names[] = {"error", "warning", "info", "debug"};

char *
log_percent_encode(const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		n = strlen(in);
	char	   *out = malloc(3 * n + 1);
	char	   *o = out;

	if (out == NULL)
		return NULL;
	for (; *in; in++)
	{
		unsigned char c = (unsigned char) *in;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~')
			*o++ = (char) c;
		else
		{
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static char *
join_colon(const char *a, const char *b)
{
	size_t		na = strlen(a);
	size_t		nb = strlen(b);
	char	   *s = malloc(na + nb + 2);

	if (s == NULL)
		return NULL;
	memcpy(s, a, na);
	s[na] = ':';
	memcpy(s + na + 1, b, nb + 1);
	return s;
}

static void
free_secret(char **s)
{
	if (*s != NULL)
	{
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static int
cmp_len_desc(const void *a, const void *b)
{
	const char *x = *(char *const *) a;
	const char *y = *(char *const *) b;
	size_t		nx = x ? strlen(x) : 0;
	size_t		ny = y ? strlen(y) : 0;

	return (nx < ny) - (nx > ny);
}

int
log_set_secret(const char *username, const char *password)
{
	char	   *s[NSECRETS] = {NULL};
	char	   *euser = NULL;
	int			i;
	int			ret = -1;

	if (password != NULL && *password != '\0')
	{
		s[0] = strdup(password);
		s[1] = log_percent_encode(password);
		if (s[0] == NULL || s[1] == NULL)
			goto end;
		if (username != NULL)
		{
			euser = log_percent_encode(username);
			s[2] = join_colon(username, password);
			s[3] = euser ? join_colon(euser, s[1]) : NULL;
			if (s[2] == NULL || s[3] == NULL)
				goto end;
		}
		qsort(s, NSECRETS, sizeof(char *), cmp_len_desc);
	}
	ret = 0;

end:
	pthread_mutex_lock(&logstate.lock);
	for (i = 0; i < NSECRETS; i++)
	{
		free_secret(&logstate.secret[i]);
		if (ret == 0)
			logstate.secret[i] = s[i];
		else
			free_secret(&s[i]);
	}
	pthread_mutex_unlock(&logstate.lock);
	free(euser);
	return ret;
}

/* Secrets, then URL userinfo, replaced by "***"; one line of printable ASCII.  Lock held. */
static void
redact_locked(const char *in, char *out, size_t outsize)
{
	char		tmp[LINE_MAX_BYTES];
	size_t		n = 0;
	size_t		k;
	const char *p = in;
	char	   *s;

	if (outsize == 0)
		return;
	while (*p && n + 4 < sizeof(tmp))
	{
		int			hit = 0;
		int			i;

		for (i = 0; i < NSECRETS && logstate.secret[i] != NULL; i++)
		{
			size_t		len = strlen(logstate.secret[i]);

			if (len > 0 && strncasecmp(p, logstate.secret[i], len) == 0)
			{
				memcpy(tmp + n, "***", 3);
				n += 3;
				p += len;
				hit = 1;
				break;
			}
		}
		if (!hit)
			tmp[n++] = *p++;
	}
	tmp[n] = '\0';

	/* scheme://userinfo@host: the userinfo goes, whatever it holds. */
	k = 0;
	s = tmp;
	while (*s && k + 1 < outsize)
	{
		if (s[0] == ':' && s[1] == '/' && s[2] == '/')
		{
			const char *a = s + 3;
			const char *end = a + strcspn(a, "/?# \t\r\n\"'<>");
			const char *at = NULL;
			const char *c;

			for (c = a; c < end; c++)
				if (*c == '@')
					at = c;
			if (at != NULL && k + 7 < outsize)
			{
				memcpy(out + k, "://***", 6);
				k += 6;
				s = (char *) at;
				continue;
			}
		}
		out[k++] = *s++;
	}
	out[k] = '\0';

	/* One line, printable ASCII: nothing can forge a second log line. */
	for (k = 0; out[k]; k++)
	{
		unsigned char c = (unsigned char) out[k];

		if (c == '\n' || c == '\r' || c == '\t')
			out[k] = ' ';
		else if (c < 0x20 || c >= 0x7f)
			out[k] = '?';
	}
	while (k > 0 && out[k - 1] == ' ')
		out[--k] = '\0';
}

void
log_redact(const char *in, char *out, size_t outsize)
{
	pthread_mutex_lock(&logstate.lock);
	redact_locked(in, out, outsize);
	pthread_mutex_unlock(&logstate.lock);
}

static void
emit(int level, const char *prefix, const char *text)
{
	char		line[LINE_MAX_BYTES];

	pthread_mutex_lock(&logstate.lock);
	if (level <= logstate.level)
	{
		redact_locked(text, line, sizeof(line));
		if (line[0] != '\0')
			fprintf(stderr, "vms-ingest[camera=%d]: %s: %s%s\n", logstate.camera, level_names[level],
					prefix, line);
	}
	pthread_mutex_unlock(&logstate.lock);
}

void
log_msg(int level, const char *fmt,...)
{
	char		text[LINE_MAX_BYTES];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	emit(level, "", text);
}

/* FFmpeg's messages, each call one line ("[rtsp @ 0x...] ..."). */
static void
av_callback(void *avcl, int level, const char *fmt, va_list vl)
{
	char		text[LINE_MAX_BYTES];
	int			print_prefix = 1;
	int			ours;

	if (level > av_log_get_level())
		return;
	av_log_format_line2(avcl, level, fmt, vl, text, sizeof(text), &print_prefix);
	if (strstr(text, "401 Unauthorized") != NULL)
	{
		pthread_mutex_lock(&logstate.lock);
		logstate.unauthorized++;
		pthread_mutex_unlock(&logstate.lock);
	}
	if (level <= AV_LOG_ERROR)
		ours = LOG_ERROR;
	else if (level <= AV_LOG_WARNING)
		ours = LOG_WARNING;
	else if (level <= AV_LOG_INFO)
		ours = LOG_INFO;
	else
		ours = LOG_DEBUG;
	emit(ours, "ffmpeg: ", text);
}

void
log_init(int camera, int verbose)
{
	pthread_mutex_lock(&logstate.lock);
	logstate.camera = camera;
	logstate.level = verbose ? LOG_DEBUG : LOG_INFO;
	pthread_mutex_unlock(&logstate.lock);
	av_log_set_level(verbose ? AV_LOG_INFO : AV_LOG_WARNING);
	av_log_set_callback(av_callback);
}

unsigned long
log_unauthorized_count(void)
{
	unsigned long n;

	pthread_mutex_lock(&logstate.lock);
	n = logstate.unauthorized;
	pthread_mutex_unlock(&logstate.lock);
	return n;
}
