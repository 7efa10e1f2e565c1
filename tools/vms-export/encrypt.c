/*
 * encrypt.c: the output as CMS AuthEnvelopedData chunks (AES-256-GCM), each
 * at most chunk_size bytes of plaintext, for the recipients' certificates
 * (key transport or agreement as OpenSSL chooses for the key type) or for a
 * password (PWRI: PBKDF2 600000 iterations, KEK AES-256-CBC).  Each chunk
 * is its own DER file, so a receiver's `openssl cms -decrypt` holds one
 * chunk, not the whole video, in memory, and so do we: one plaintext chunk
 * plus its CMS structure.  The plaintext is hashed as it is read and removed
 * once every chunk is written.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "export.h"

#define PWRI_ITERATIONS		600000

/* Reads up to len bytes (fewer only at the end of the file); -1 on error. */
static ssize_t
read_full(int fd, unsigned char *buf, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		n = read(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t) n;
	}
	return (ssize_t) done;
}

/* One chunk: CMS over buf[0..len) written DER to c->file; fills c's size and hash. */
static int
encrypt_chunk(int dirfd, Chunk *c, const unsigned char *buf, size_t len, STACK_OF(X509) *recips,
			  const char *password, char *err, size_t errlen)
{
	const unsigned int flags = CMS_BINARY | CMS_PARTIAL;
	CMS_ContentInfo *cms = NULL;
	BIO		   *in = BIO_new_mem_buf(buf, (int) len);
	BIO		   *out = BIO_new(BIO_s_mem());
	unsigned char md[32];
	char		why[256];
	char	   *p;
	long		n;
	int			ret = -1;

	if (in == NULL || out == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	cms = CMS_encrypt(recips, NULL, EVP_aes_256_gcm(), flags);
	if (cms == NULL)
		goto crypto;
	if (password != NULL)
	{
		unsigned char *pw = (unsigned char *) OPENSSL_strdup(password);

		if (pw == NULL)
			goto crypto;
		/* add0 owns pw from here on, also when it fails */
		if (CMS_add0_recipient_password(cms, PWRI_ITERATIONS, NID_undef, NID_undef, pw, -1,
										EVP_aes_256_cbc()) == NULL)
			goto crypto;
	}
	if (CMS_final(cms, in, NULL, flags) != 1 || i2d_CMS_bio(out, cms) != 1)
		goto crypto;
	n = BIO_get_mem_data(out, &p);
	if (EVP_Digest(p, (size_t) n, md, NULL, EVP_sha256(), NULL) != 1)
		goto crypto;
	hex_of(md, 32, c->sha256);
	c->bytes = n;
	ret = write_file_at(dirfd, c->file, p, (size_t) n, 0644, err, errlen);
	goto end;
crypto:
	snprintf(err, errlen, "encrypting %s: %s", c->file, ossl_reason(why, sizeof(why)));
end:
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	return ret;
}

int
encrypt_output(int dirfd, Output *o, long long chunk_size, STACK_OF(X509) *recips,
			   const char *password, Progress *progress, char *err, size_t errlen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = NULL;
	struct stat st;
	long long	offset = 0;
	unsigned int mdlen = 0;
	int			fd = -1, ret = -1, cap = 0;

	fd = openat(dirfd, o->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0)
	{
		snprintf(err, errlen, "could not open \"%s\": %s", o->file, strerror(errno));
		goto end;
	}
	buf = malloc((size_t) (st.st_size < chunk_size ? (st.st_size > 0 ? st.st_size : 1) : chunk_size));
	if (md == NULL || buf == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	progress_begin(progress, "encrypt", st.st_size);
	for (;;)
	{
		ssize_t		n = read_full(fd, buf, (size_t) (st.st_size - offset < chunk_size ?
													  st.st_size - offset : chunk_size));
		Chunk	   *c;

		if (n < 0)
		{
			snprintf(err, errlen, "could not read \"%s\": %s", o->file, strerror(errno));
			goto end;
		}
		if (n == 0 && o->nchunks > 0)
			break;
		if (export_interrupted)
		{
			snprintf(err, errlen, "interrupted");
			goto end;
		}
		if (o->nchunks == cap)
		{
			Chunk	   *nc = realloc(o->chunks, sizeof(Chunk) * (cap ? cap * 2 : 16));

			if (nc == NULL)
			{
				snprintf(err, errlen, "out of memory");
				goto end;
			}
			o->chunks = nc;
			cap = cap ? cap * 2 : 16;
		}
		if (o->nchunks >= 9999)
		{
			snprintf(err, errlen, "more than 9999 chunks: give a larger --chunk-size");
			goto end;
		}
		c = &o->chunks[o->nchunks];
		memset(c, 0, sizeof(*c));
		snprintf(c->file, sizeof(c->file), "%s.%04d.p7m", o->file, o->nchunks + 1);
		c->plain_offset = offset;
		c->plain_bytes = n;
		o->nchunks++;
		if (EVP_DigestUpdate(md, buf, (size_t) n) != 1)
		{
			snprintf(err, errlen, "could not hash \"%s\"", o->file);
			goto end;
		}
		if (encrypt_chunk(dirfd, c, buf, (size_t) n, recips, password, err, errlen) != 0)
			goto end;
		OPENSSL_cleanse(buf, (size_t) n);
		offset += n;
		progress_set(progress, offset);
		if (offset >= st.st_size)
			break;
	}
	if (EVP_DigestFinal_ex(md, o->md, &mdlen) != 1 || mdlen != 32)
	{
		snprintf(err, errlen, "could not hash \"%s\"", o->file);
		goto end;
	}
	hex_of(o->md, 32, o->sha256);
	o->bytes = offset;
	progress_end(progress);
	if (unlinkat(dirfd, o->file, 0) != 0)
	{
		snprintf(err, errlen, "could not remove the plaintext \"%s\": %s", o->file, strerror(errno));
		goto end;
	}
	ret = 0;
end:
	if (fd >= 0)
		close(fd);
	free(buf);
	EVP_MD_CTX_free(md);
	return ret;
}
