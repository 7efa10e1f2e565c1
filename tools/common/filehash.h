/*
 * filehash.h: SHA-256 of a file below a directory, through OpenSSL EVP,
 * and SHA-256 values as hex.
 */
#ifndef VMS_TOOLS_FILEHASH_H
#define VMS_TOOLS_FILEHASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Hashes name (relative to dirfd; a symbolic link is refused) in pieces of
 * bufsize bytes read into buf; sets md and, if bytes is not NULL, the size
 * read.  Tells the kernel the file is read once.  0, or -1 and errno.
 */
extern int	sha256_file_at(int dirfd, const char *name, unsigned char *buf, size_t bufsize,
						   unsigned char md[32], int64_t *bytes);

/* The same for an open file, from its current offset to its end; the file stays open. */
extern int	sha256_fd(int fd, unsigned char *buf, size_t bufsize, unsigned char md[32], int64_t *bytes);

/* md as lowercase hex into out (2 * n + 1 bytes). */
extern void hex_of(const unsigned char *md, size_t n, char *out);

/* 1 if s is exactly 64 lowercase hex digits (a SHA-256 as written), else 0. */
extern int	is_sha256_hex(const char *s);

#endif							/* VMS_TOOLS_FILEHASH_H */
