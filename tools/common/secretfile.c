/*
 * secretfile.c: a password or passphrase read from a file (see secretfile.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "readfile.h"
#include "secretfile.h"

char *
secret_from_file(const char *file, size_t max, int owner_only, char *err, size_t errlen)
{
	struct stat st;
	char	   *buf = NULL;
	size_t		len = 0;
	int			fd;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		snprintf(err, errlen, "could not open \"%s\": %s", file, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		snprintf(err, errlen, "\"%s\" is not a regular file", file);
	else if (owner_only && (st.st_mode & (S_IRWXG | S_IRWXO)))
		snprintf(err, errlen, "\"%s\" has group or world access; chmod 600 it", file);
	else if ((buf = read_fd_bounded(fd, max + 2, &len)) == NULL)	/* + "\r\n" */
	{
		if (errno == EFBIG)
			snprintf(err, errlen, "\"%s\" is too long (at most %zu bytes)", file, max);
		else
			snprintf(err, errlen, "could not read \"%s\": %s", file, strerror(errno));
	}
	close(fd);
	if (buf == NULL)
		return NULL;
	/* One final line end, as editors and echo leave it. */
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len > max)
		snprintf(err, errlen, "\"%s\" is too long (at most %zu bytes)", file, max);
	else if (len == 0)
		snprintf(err, errlen, "\"%s\" is empty", file);
	else if (memchr(buf, '\0', len) != NULL || strpbrk(buf, "\r\n") != NULL)
		snprintf(err, errlen, "\"%s\" holds more than one line (or a NUL byte)", file);
	else
		return buf;
	OPENSSL_cleanse(buf, len);
	free(buf);
	return NULL;
}

void
secret_free(char *secret)
{
	if (secret != NULL)
	{
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
}
