/*
 * filehash.c: SHA-256 of a file (see filehash.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "filehash.h"

int
sha256_fd(int fd, unsigned char *buf, size_t bufsize, unsigned char md[32], int64_t *bytes)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int mdlen = 0;
	int64_t		total = 0;
	ssize_t		n;
	int			ret = -1;
	int			save = EIO;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
	{
		save = ENOMEM;
		goto end;
	}
	while ((n = read(fd, buf, bufsize)) != 0)
	{
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			save = errno;
			goto end;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t) n) != 1)
			goto end;
		total += n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto end;
	if (bytes != NULL)
		*bytes = total;
	ret = 0;
end:
	EVP_MD_CTX_free(ctx);
	if (ret != 0)
		errno = save;
	return ret;
}

int
sha256_file_at(int dirfd, const char *name, unsigned char *buf, size_t bufsize,
			   unsigned char md[32], int64_t *bytes)
{
	int			fd, ret, save;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	ret = sha256_fd(fd, buf, bufsize, md, bytes);
	save = errno;
	/* Recordings are read once here: keep them out of the page cache. */
	if (ret == 0)
		(void) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	errno = save;
	return ret;
}

void
hex_of(const unsigned char *md, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t		i;

	for (i = 0; i < n; i++)
	{
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

int
is_sha256_hex(const char *s)
{
	size_t		i;

	if (s == NULL || strlen(s) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}
