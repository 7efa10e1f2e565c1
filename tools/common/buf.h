/*
 * buf.h: a growing string for the pg_vms tools.
 *
 * oom is sticky: once an append fails, later ones do nothing, so a caller
 * builds the whole string and checks oom once.  Start from {NULL, 0, 0, 0};
 * free(data) when done.
 */
#ifndef VMS_TOOLS_BUF_H
#define VMS_TOOLS_BUF_H

#include <stddef.h>

typedef struct Buf
{
	char	   *data;			/* NUL-terminated once anything was added */
	size_t		len;
	size_t		cap;
	int			oom;
} Buf;

extern void buf_add(Buf *b, const char *s, size_t n);
extern void buf_puts(Buf *b, const char *s);

#endif							/* VMS_TOOLS_BUF_H */
