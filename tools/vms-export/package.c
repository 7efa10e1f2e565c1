/*
 * package.c: the package's text files.  manifest.json: keys in the order of
 * the package format (tools/README.md), two-space indent, strings escaped per
 * RFC 8259 (", \ and every control character as \u00XX; the text is UTF-8 as
 * the database gave it), lowercase hex, a trailing newline.  SHA256SUMS:
 * `sha256sum -c` lines for the payload files.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "export.h"

void
utc_now_iso(char out[32])
{
	struct timeval tv;
	struct tm	tm;
	char		buf[96];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (tv.tv_usec / 1000));
	snprintf(out, 32, "%.24s", buf);
}

int
write_file_at(int dirfd, const char *name, const char *data, size_t len, int mode,
			  char *err, size_t errlen)
{
	size_t		done = 0;
	int			fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd < 0)
	{
		snprintf(err, errlen, "could not create \"%s\": %s", name, strerror(errno));
		return -1;
	}
	while (done < len)
	{
		ssize_t		n = write(fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			snprintf(err, errlen, "could not write \"%s\": %s", name, strerror(errno));
			close(fd);
			return -1;
		}
		done += (size_t) n;
	}
	if (fsync(fd) != 0 || close(fd) != 0)
	{
		snprintf(err, errlen, "could not write \"%s\": %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static void
addf(Buf *b, const char *fmt,...)
{
	char		tmp[256];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t) n >= sizeof(tmp))
		b->oom = 1;				/* only short numeric items pass through here */
	else
		buf_add(b, tmp, (size_t) n);
}

/* A JSON string (RFC 8259); NULL is null. */
static void
add_str(Buf *b, const char *s)
{
	const unsigned char *p;
	const unsigned char *run;

	if (s == NULL)
	{
		buf_puts(b, "null");
		return;
	}
	buf_add(b, "\"", 1);
	for (p = run = (const unsigned char *) s; *p; p++)
	{
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		buf_add(b, (const char *) run, (size_t) (p - run));
		if (*p == '"')
			buf_puts(b, "\\\"");
		else if (*p == '\\')
			buf_puts(b, "\\\\");
		else
			addf(b, "\\u%04x", *p);
		run = p + 1;
	}
	buf_add(b, (const char *) run, (size_t) (p - run));
	buf_add(b, "\"", 1);
}

/* "key": "value" with the separator before it. */
static void
kv_str(Buf *b, const char *key, const char *value, int first)
{
	if (!first)
		buf_puts(b, ", ");
	add_str(b, key);
	buf_puts(b, ": ");
	add_str(b, value);
}

static void
kv_int(Buf *b, const char *key, long long value, int first)
{
	if (!first)
		buf_puts(b, ", ");
	add_str(b, key);
	addf(b, ": %lld", value);
}

/* Top-level member: two-space indent; the comma comes from the next one. */
static void
top(Buf *b, const char *key)
{
	buf_puts(b, b->len > 2 ? ",\n  " : "  ");
	add_str(b, key);
	buf_puts(b, ": ");
}

/* Opens an array of one-line objects: "[" ... each at four spaces ... "]". */
static void
item_sep(Buf *b, int i, int n)
{
	(void) n;
	buf_puts(b, i == 0 ? "[\n    " : ",\n    ");
}

static void
array_end(Buf *b, int n)
{
	buf_puts(b, n == 0 ? "[]" : "\n  ]");
}

char *
manifest_build(const Session *s, const Output *o, const char *created_at)
{
	Buf			b = {NULL, 0, 0, 0};
	int			i;

	buf_puts(&b, "{\n");
	top(&b, "format");
	add_str(&b, "pg_vms-evidence/1");
	top(&b, "export_id");
	addf(&b, "%lld", s->export_id);
	top(&b, "kind");
	add_str(&b, s->kind);
	top(&b, "camera");
	buf_puts(&b, "{");
	kv_int(&b, "id", s->camera_id, 1);
	kv_str(&b, "name", s->camera_name, 0);
	buf_puts(&b, "}");
	top(&b, "from");
	add_str(&b, s->from);
	top(&b, "to");
	add_str(&b, s->to);
	top(&b, "exported_by");
	add_str(&b, s->exported_by);
	top(&b, "session_user");
	add_str(&b, s->session_user);
	top(&b, "reason");
	add_str(&b, s->reason);
	top(&b, "profile");
	add_str(&b, s->profile.name);
	top(&b, "created_at");
	add_str(&b, created_at);
	top(&b, "tool");
	buf_puts(&b, "{");
	kv_str(&b, "name", PROGNAME, 1);
	kv_str(&b, "version", PROGVERSION, 0);
	buf_puts(&b, "}");

	top(&b, "segments");
	for (i = 0; i < s->nsegs; i++)
	{
		const Segment *g = &s->segs[i];

		item_sep(&b, i, s->nsegs);
		buf_puts(&b, "{");
		kv_int(&b, "id", g->id, 1);
		kv_str(&b, "start", g->start, 0);
		kv_str(&b, "end", g->end, 0);
		kv_int(&b, "bytes", g->bytes, 0);
		kv_str(&b, "sha256", g->sha256, 0);
		buf_puts(&b, "}");
	}
	array_end(&b, s->nsegs);

	top(&b, "masks");
	for (i = 0; i < s->nmasks; i++)
	{
		const Mask *m = &s->masks[i];

		item_sep(&b, i, s->nmasks);
		buf_puts(&b, "{");
		kv_int(&b, "zone_id", m->zone_id, 1);
		kv_str(&b, "name", m->name, 0);
		buf_puts(&b, ", \"liftable\": ");
		buf_puts(&b, m->liftable ? "true" : "false");
		kv_str(&b, "fill", m->fill, 0);
		buf_puts(&b, ", \"points\": ");
		buf_puts(&b, m->points);	/* jsonb text: numbers and brackets only */
		buf_puts(&b, "}");
	}
	array_end(&b, s->nmasks);

	top(&b, "lifts");
	for (i = 0; i < s->nlifts; i++)
	{
		const Lift *l = &s->lifts[i];

		item_sep(&b, i, s->nlifts);
		buf_puts(&b, "{");
		kv_int(&b, "lift_id", l->lift_id, 1);
		buf_puts(&b, ", \"zone_id\": ");
		buf_puts(&b, l->zone_id ? l->zone_id : "null");	/* digits, checked server-side (bigint) */
		kv_str(&b, "reason", l->reason, 0);
		kv_str(&b, "requested_by", l->requested_by, 0);
		kv_str(&b, "approved_by", l->approved_by, 0);
		kv_str(&b, "starts_at", l->starts_at, 0);
		kv_str(&b, "ends_at", l->ends_at, 0);
		buf_puts(&b, "}");
	}
	array_end(&b, s->nlifts);

	top(&b, "holds");
	for (i = 0; i < s->nholds; i++)
	{
		const Hold *h = &s->holds[i];

		item_sep(&b, i, s->nholds);
		buf_puts(&b, "{");
		kv_int(&b, "hold_id", h->hold_id, 1);
		kv_str(&b, "reason", h->reason, 0);
		kv_str(&b, "from", h->from, 0);
		kv_str(&b, "to", h->to, 0);
		buf_puts(&b, "}");
	}
	array_end(&b, s->nholds);

	top(&b, "output");
	buf_puts(&b, "{");
	kv_str(&b, "file", o->file, 1);
	kv_int(&b, "bytes", o->bytes, 0);
	kv_str(&b, "sha256", o->sha256, 0);
	buf_puts(&b, "}");

	top(&b, "encryption");
	if (o->scheme_kind == NULL)
		buf_puts(&b, "null");
	else
	{
		buf_puts(&b, "{\n    \"scheme\": \"cms-authenveloped-aes-256-gcm\",\n    \"recipients\": ");
		if (o->recipients == NULL)
			add_str(&b, "password");
		else
		{
			buf_puts(&b, "[");
			for (i = 0; i < o->nrecipients; i++)
			{
				if (i > 0)
					buf_puts(&b, ", ");
				add_str(&b, o->recipients[i]);
			}
			buf_puts(&b, "]");
		}
		buf_puts(&b, ",\n    \"chunks\": [");
		for (i = 0; i < o->nchunks; i++)
		{
			const Chunk *c = &o->chunks[i];

			buf_puts(&b, i == 0 ? "\n      {" : ",\n      {");
			kv_str(&b, "file", c->file, 1);
			kv_int(&b, "bytes", c->bytes, 0);
			kv_str(&b, "sha256", c->sha256, 0);
			kv_int(&b, "plain_offset", c->plain_offset, 0);
			kv_int(&b, "plain_bytes", c->plain_bytes, 0);
			buf_puts(&b, "}");
		}
		buf_puts(&b, o->nchunks ? "\n    ]\n  }" : "]\n  }");
	}
	buf_puts(&b, "\n}\n");
	if (b.oom)
	{
		free(b.data);
		return NULL;
	}
	return b.data;
}

char *
sha256sums_build(const Output *o)
{
	Buf			b = {NULL, 0, 0, 0};
	int			i;

	if (o->scheme_kind == NULL)
		addf(&b, "%s  %s\n", o->sha256, o->file);
	else
		for (i = 0; i < o->nchunks; i++)
			addf(&b, "%s  %s\n", o->chunks[i].sha256, o->chunks[i].file);
	if (b.oom)
	{
		free(b.data);
		return NULL;
	}
	return b.data;
}
