/*
 * readfile.c: a small file read whole into memory, with a bound (see readfile.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "readfile.h"

char *
read_fd_bounded(int fd, size_t max, size_t *len)
{
	size_t		cap = max + 1 < 65536 ? max + 1 : 65536,	/* grows as the file does */
				n = 0;
	char	   *buf = malloc(cap + 1);
	int			save;

	if (buf == NULL)
	{
		errno = ENOMEM;
		return NULL;
	}
	/* max + 1 bytes at most: one past max tells a longer file */
	for (;;)
	{
		ssize_t		r;

		if (n == cap)
		{
			size_t		bigger = cap > (max + 1) / 2 ? max + 1 : cap * 2;
			char	   *p;

			if (bigger == cap)
				break;
			if ((p = malloc(bigger + 1)) == NULL)
			{
				errno = ENOMEM;
				goto fail;
			}
			memcpy(p, buf, n);
			OPENSSL_cleanse(buf, cap + 1);
			free(buf);
			buf = p;
			cap = bigger;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		n += (size_t) r;
	}
	if (n > max)
	{
		errno = EFBIG;
		goto fail;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	save = errno;
	OPENSSL_cleanse(buf, cap + 1);
	free(buf);
	errno = save;
	return NULL;
}
