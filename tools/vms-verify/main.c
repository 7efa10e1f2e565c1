/*
 * vms-verify: checks a pg_vms evidence package (written by vms-export) and
 * says who exported what, when and why.  In order, each failure one line
 * and exit 2:
 *   1. manifest.json, manifest.json.p7s and SHA256SUMS are there; the
 *      manifest is strict JSON of the format pg_vms-evidence/1;
 *   2. the detached CMS signature verifies over manifest.json, its signer's
 *      certificate against --ca-file;
 *   3. manifest.json.p7s.tsr, if there, is an RFC 3161 timestamp over
 *      manifest.json.p7s from a TSA of --tsa-ca-file (default --ca-file);
 *   4. every payload file of the manifest (the output, or its encrypted
 *      chunks) has the listed size and SHA-256, SHA256SUMS lists exactly
 *      those with the same hashes, and the directory holds nothing else;
 *   5. with --key/--cert or --password-file: the chunks decrypt, in order,
 *      into <decrypt-to>.partial, the plaintext has the output's SHA-256, and
 *      the file is renamed to --decrypt-to (default <dir>/<output file>);
 *      on any failure the partial file is removed (exit 3).
 * Then a summary on stdout (nothing with --quiet).
 *
 * Exit codes: 0 verified; 1 usage; 2 verification failed; 3 decryption
 * failed; 4 I/O.  Messages one line on stderr, prefixed "vms-verify: ".
 * The password is read from the first line of --password-file and never
 * printed.  OpenSSL 3.0 only.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "filehash.h"
#include "verify.h"

#define HASH_BUF_SIZE		(1024 * 1024)
#define MAX_PEM_FILE		(1024 * 1024)
#define MAX_SECRET			1024
#define MAX_CHUNK_FILE		(1100LL * 1024 * 1024)	/* vms-export: at most 1 GiB of plaintext a chunk */

static volatile sig_atomic_t interrupted = 0;

typedef struct Options
{
	const char *ca_file;
	const char *tsa_ca_file;
	const char *key_file;
	const char *cert_file;
	const char *password_file;
	const char *decrypt_to;
	int			quiet;
	const char *dir;
} Options;

static void
on_signal(int sig)
{
	(void) sig;
	interrupted = 1;
}

static void
msg(const char *fmt,...)
{
	va_list		ap;

	fputs(PROGNAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Text from the package for a terminal: control characters (C0, DEL, C1)
 * as '?', so that a manifest cannot move the cursor or hide a line.  The
 * text is UTF-8 (the JSON parser checked it); a C1 control is 0xC2 0x80..0x9F.
 */
static void
put_text(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *) (s ? s : "(null)");

	for (; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			fputc('?', f);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		{
			fputc('?', f);
			p++;
		}
		else
			fputc(*p, f);
	}
}

/* A name from the directory, for a message: anything but [!-~] as \xNN. */
static void
printable_name(const char *in, char *out, size_t outlen)
{
	size_t		o = 0;

	for (; *in && o + 5 < outlen; in++)
	{
		unsigned char c = (unsigned char) *in;

		if (c > 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char) c;
		else
			o += (size_t) snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: " PROGNAME " --ca-file CA.pem [--tsa-ca-file CA.pem]\n"
			"                  [--key KEY.pem --cert CERT.pem | --password-file FILE]\n"
			"                  [--decrypt-to FILE] [--quiet] [--help] [--version] PACKAGE_DIR\n"
			"Checks a pg_vms evidence package: the manifest, its CMS signature (signer\n"
			"certificate against --ca-file), the RFC 3161 timestamp if any (against\n"
			"--tsa-ca-file, default --ca-file), every payload file's size and SHA-256,\n"
			"SHA256SUMS; with a recipient key or the password also decrypts the output\n"
			"(to --decrypt-to, default PACKAGE_DIR/<output file>).  Then says who exported\n"
			"what, when and why.\n"
			"Exit status: 0 verified, 1 usage, 2 verification failed, 3 decryption failed,\n"
			"4 I/O error.\n");
}

static int
parse_options(int argc, char **argv, Options *o)
{
	static const struct option longopts[] = {
		{"ca-file", required_argument, NULL, 'c'},
		{"tsa-ca-file", required_argument, NULL, 't'},
		{"key", required_argument, NULL, 'k'},
		{"cert", required_argument, NULL, 'C'},
		{"password-file", required_argument, NULL, 'W'},
		{"decrypt-to", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	int			c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'c':
				o->ca_file = optarg;
				break;
			case 't':
				o->tsa_ca_file = optarg;
				break;
			case 'k':
				o->key_file = optarg;
				break;
			case 'C':
				o->cert_file = optarg;
				break;
			case 'W':
				o->password_file = optarg;
				break;
			case 'o':
				o->decrypt_to = optarg;
				break;
			case 'q':
				o->quiet = 1;
				break;
			case 'h':
				usage(stdout);
				exit(EXIT_OK);
			case 'V':
				printf(PROGNAME " (pg_vms) " PROGVERSION "\n");
				exit(EXIT_OK);
			default:
				usage(stderr);
				return -1;
		}
	}
	if (optind >= argc)
	{
		msg("a package directory is required (see --help)");
		return -1;
	}
	if (optind + 1 < argc)
	{
		msg("unexpected argument \"%s\" (one package directory expected)", argv[optind + 1]);
		return -1;
	}
	o->dir = argv[optind];
	if (o->ca_file == NULL)
	{
		msg("--ca-file is required (the CA certificates the signer must chain to)");
		return -1;
	}
	if ((o->key_file == NULL) != (o->cert_file == NULL))
	{
		msg("--key and --cert go together (the recipient's key and certificate)");
		return -1;
	}
	if (o->key_file && o->password_file)
	{
		msg("--key/--cert and --password-file exclude each other");
		return -1;
	}
	if (o->decrypt_to && !o->key_file && !o->password_file)
	{
		msg("--decrypt-to needs --key and --cert, or --password-file");
		return -1;
	}
	if (o->decrypt_to && o->decrypt_to[0] == '\0')
	{
		msg("--decrypt-to: an empty file name");
		return -1;
	}
	return 0;
}

/*
 * Reads name below dirfd (no symbolic link, a regular file, at most max
 * bytes) into *buf (malloc'ed, NUL-terminated).  0; or -1 with *code: 2 when
 * it is missing, not a regular file or too large (a verification failure),
 * 4 for an I/O error.  err holds "<name>: <what>".
 */
static int
read_package_file(int dirfd, const char *name, size_t max, char **buf, size_t *len, int *code,
				  char *err, size_t errlen)
{
	struct stat st;
	int			fd;

	*buf = NULL;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
	{
		*code = (errno == ENOENT || errno == ELOOP) ? EXIT_INVALID : EXIT_IO;
		if (errno == ENOENT)
			snprintf(err, errlen, "%s: missing", name);
		else if (errno == ELOOP)
			snprintf(err, errlen, "%s: a symbolic link, not a file", name);
		else
			snprintf(err, errlen, "%s: could not open: %s", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0)
	{
		*code = EXIT_IO;
		snprintf(err, errlen, "%s: could not stat: %s", name, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode))
	{
		*code = EXIT_INVALID;
		snprintf(err, errlen, "%s: not a regular file", name);
		goto fail;
	}
	*buf = read_fd_bounded(fd, max, len);
	if (*buf == NULL)
	{
		*code = errno == EFBIG ? EXIT_INVALID : EXIT_IO;
		if (errno == EFBIG)
			snprintf(err, errlen, "%s: larger than %zu bytes", name, max);
		else
			snprintf(err, errlen, "%s: could not read: %s", name, strerror(errno));
		goto fail;
	}
	close(fd);
	return 0;
fail:
	free(*buf);
	*buf = NULL;
	close(fd);
	return -1;
}

/* A trust store of the PEM certificates of file: NULL with *code 1 or 4. */
static X509_STORE *
load_store(const char *opt, const char *file, int *code)
{
	X509_STORE *store = NULL;
	BIO		   *bio = BIO_new_file(file, "r");
	X509	   *x;
	int			n = 0;
	char		why[512];

	if (bio == NULL)
	{
		ERR_clear_error();
		msg("%s: could not open \"%s\": %s", opt, file, strerror(errno));
		*code = EXIT_IO;
		return NULL;
	}
	store = X509_STORE_new();
	if (store == NULL)
	{
		msg("out of memory");
		*code = EXIT_IO;
		goto fail;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
	{
		if (X509_STORE_add_cert(store, x) != 1)
		{
			X509_free(x);
			ossl_reason(why, sizeof(why));
			msg("%s: \"%s\": %s", opt, file, why);
			*code = EXIT_USAGE;
			goto fail;
		}
		X509_free(x);
		n++;
	}
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
	{
		ossl_reason(why, sizeof(why));
		msg("%s: \"%s\": a bad PEM certificate: %s", opt, file, why);
		*code = EXIT_USAGE;
		goto fail;
	}
	ERR_clear_error();
	if (n == 0)
	{
		msg("%s: \"%s\" holds no PEM certificate", opt, file);
		*code = EXIT_USAGE;
		goto fail;
	}
	BIO_free(bio);
	return store;
fail:
	BIO_free(bio);
	X509_STORE_free(store);
	return NULL;
}

/* Never asks: an encrypted key is refused (the tool does not prompt). */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void) buf;
	(void) size;
	(void) rwflag;
	*(int *) u = 1;
	return -1;
}

static int
load_recipient(const char *key_file, const char *cert_file, EVP_PKEY **key, X509 **cert)
{
	BIO		   *bio;
	int			asked = 0;
	char		why[512];

	bio = BIO_new_file(cert_file, "r");
	if (bio == NULL)
	{
		ERR_clear_error();
		msg("--cert: could not open \"%s\": %s", cert_file, strerror(errno));
		return EXIT_IO;
	}
	*cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (*cert == NULL)
	{
		ossl_reason(why, sizeof(why));
		msg("--cert: \"%s\" is not a PEM certificate: %s", cert_file, why);
		return EXIT_USAGE;
	}
	bio = BIO_new_file(key_file, "r");
	if (bio == NULL)
	{
		ERR_clear_error();
		msg("--key: could not open \"%s\": %s", key_file, strerror(errno));
		return EXIT_IO;
	}
	*key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked);
	BIO_free(bio);
	if (*key == NULL)
	{
		ossl_reason(why, sizeof(why));
		if (asked)
			msg("--key: \"%s\" is encrypted; give the key without a passphrase"
				" (e.g. from openssl pkey into a private file)", key_file);
		else
			msg("--key: \"%s\" is not a PEM private key: %s", key_file, why);
		return EXIT_USAGE;
	}
	if (X509_check_private_key(*cert, *key) != 1)
	{
		ERR_clear_error();
		msg("--key \"%s\" does not belong to --cert \"%s\"", key_file, cert_file);
		return EXIT_USAGE;
	}
	return 0;
}

/* The first line of the file, without its newline (and a CR before it). */
/*
 * A payload file: there, a regular file, of the listed size and SHA-256.
 * 0, or -1 with *code and the message printed.
 */
static int
check_payload(int dirfd, const Payload *p, unsigned char *hashbuf, int *code)
{
	struct stat st;
	unsigned char md[32];
	char		hex[65];
	int64_t		bytes = 0;

	if (fstatat(dirfd, p->file, &st, AT_SYMLINK_NOFOLLOW) != 0)
	{
		if (errno == ENOENT)
		{
			msg("%s: missing (the manifest lists it)", p->file);
			*code = EXIT_INVALID;
		}
		else
		{
			msg("%s: could not stat: %s", p->file, strerror(errno));
			*code = EXIT_IO;
		}
		return -1;
	}
	if (!S_ISREG(st.st_mode))
	{
		msg("%s: not a regular file", p->file);
		*code = EXIT_INVALID;
		return -1;
	}
	if ((long long) st.st_size != p->bytes)
	{
		msg("%s: %lld bytes, the manifest says %lld", p->file, (long long) st.st_size, p->bytes);
		*code = EXIT_INVALID;
		return -1;
	}
	if (sha256_file_at(dirfd, p->file, hashbuf, HASH_BUF_SIZE, md, &bytes) != 0)
	{
		msg("%s: could not read: %s", p->file, strerror(errno));
		*code = EXIT_IO;
		return -1;
	}
	hex_of(md, 32, hex);
	if (bytes != p->bytes || strcmp(hex, p->sha256) != 0)
	{
		msg("%s: SHA-256 differs from the manifest", p->file);
		*code = EXIT_INVALID;
		return -1;
	}
	return 0;
}

static int
is_known_file(const Manifest *m, const char *name, int output_present)
{
	static const char *const own[] = {"manifest.json", "manifest.json.p7s", "manifest.json.p7s.tsr", "SHA256SUMS", NULL};
	size_t		i;

	for (i = 0; own[i]; i++)
		if (strcmp(name, own[i]) == 0)
			return 1;
	if (strcmp(name, m->output.file) == 0)
		return !m->encrypted || output_present;
	for (i = 0; i < m->nchunks; i++)
		if (strcmp(name, m->chunks[i].file) == 0)
			return 1;
	return 0;
}

/* No entry in the directory that the package does not account for. */
static int
check_extra_files(int dirfd, const Manifest *m, int output_present, int *code)
{
	int			fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR		   *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	char	   *first = NULL;
	char		shown[1200];

	if (d == NULL)
	{
		msg("could not read the package directory: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		*code = EXIT_IO;
		return -1;
	}
	while ((e = readdir(d)) != NULL)
	{
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
			is_known_file(m, e->d_name, output_present))
			continue;
		/* Report the first in byte order, whatever order readdir gives. */
		if (first == NULL || strcmp(e->d_name, first) < 0)
		{
			free(first);
			first = strdup(e->d_name);
			if (first == NULL)
			{
				closedir(d);
				msg("out of memory");
				*code = EXIT_IO;
				return -1;
			}
		}
	}
	closedir(d);
	if (first != NULL)
	{
		printable_name(first, shown, sizeof(shown));
		msg("%s: not in the manifest (an extra file in the package)", shown);
		free(first);
		*code = EXIT_INVALID;
		return -1;
	}
	return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0)
	{
		ssize_t		w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t) w;
	}
	return 0;
}

/* Whether a RecipientInfo of cms is for cert (key transport or agreement). */
static int
has_recipient(CMS_ContentInfo *cms, X509 *cert)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	int			i, j;

	for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++)
	{
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		int			type = CMS_RecipientInfo_type(ri);

		if (type == CMS_RECIPINFO_TRANS && CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
			return 1;
		if (type == CMS_RECIPINFO_AGREE)
		{
			STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

			for (j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks); j++)
				if (CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, j), cert) == 0)
					return 1;
		}
	}
	ERR_clear_error();
	return 0;
}

static int
has_password_recipient(CMS_ContentInfo *cms)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	int			i;

	for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++)
		if (CMS_RecipientInfo_type(sk_CMS_RecipientInfo_value(ris, i)) == CMS_RECIPINFO_PASS)
			return 1;
	return 0;
}

/*
 * One chunk: read (again: it is hashed once more, so what is decrypted is
 * what was checked), decrypt, append to fd and to the running hash.
 */
static int
decrypt_chunk(int dirfd, const Payload *c, EVP_PKEY *key, X509 *cert, const char *password,
			  int fd, EVP_MD_CTX *md, int *code)
{
	CMS_ContentInfo *cms = NULL;
	BIO		   *out = NULL;
	char	   *der = NULL, *plain;
	const unsigned char *p;
	unsigned char digest[32];
	char		hex[65], err[ERRLEN], why[512];
	size_t		len = 0;
	long		n;
	int			ret = -1;

	*code = EXIT_DECRYPT;
	if (read_package_file(dirfd, c->file, (size_t) MAX_CHUNK_FILE, &der, &len, code, err, sizeof(err)) != 0)
	{
		msg("decrypt: %s", err);
		if (*code == EXIT_INVALID)
			*code = EXIT_DECRYPT;
		goto end;
	}
	*code = EXIT_DECRYPT;
	if (EVP_Digest(der, len, digest, NULL, EVP_sha256(), NULL) != 1)
	{
		msg("decrypt: %s: could not hash", c->file);
		goto end;
	}
	hex_of(digest, 32, hex);
	if ((long long) len != c->bytes || strcmp(hex, c->sha256) != 0)
	{
		msg("decrypt: %s changed after it was checked", c->file);
		goto end;
	}
	p = (const unsigned char *) der;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
	if (cms == NULL || p != (const unsigned char *) der + len)
	{
		ERR_clear_error();
		msg("decrypt: %s is not a CMS structure", c->file);
		goto end;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_id_smime_ct_authEnvelopedData)
	{
		msg("decrypt: %s is not CMS AuthEnvelopedData", c->file);
		goto end;
	}
	if (key != NULL)
	{
		if (!has_recipient(cms, cert))
		{
			msg("decrypt: no recipient in the package matches this key");
			goto end;
		}
		if (CMS_decrypt_set1_pkey_and_peer(cms, key, cert, NULL) != 1)
		{
			ossl_reason(why, sizeof(why));
			msg("decrypt: %s: the key does not open it: %s", c->file, why);
			goto end;
		}
	}
	else
	{
		if (!has_password_recipient(cms))
		{
			msg("decrypt: the package is not encrypted for a password");
			goto end;
		}
		if (CMS_decrypt_set1_password(cms, (unsigned char *) password, (ossl_ssize_t) strlen(password)) != 1)
		{
			ERR_clear_error();
			msg("decrypt: the password does not open %s (a wrong password?)", c->file);
			goto end;
		}
	}
	out = BIO_new(BIO_s_mem());
	if (out == NULL)
	{
		msg("out of memory");
		*code = EXIT_IO;
		goto end;
	}
	if (CMS_decrypt(cms, NULL, NULL, NULL, out, CMS_BINARY) != 1)
	{
		ossl_reason(why, sizeof(why));
		msg("decrypt: %s does not decrypt (wrong key or altered): %s", c->file, why);
		goto end;
	}
	n = BIO_get_mem_data(out, &plain);
	if ((long long) n != c->plain_bytes)
	{
		msg("decrypt: %s holds %ld bytes of plaintext, the manifest says %lld", c->file, n, c->plain_bytes);
		goto end;
	}
	if (EVP_DigestUpdate(md, plain, (size_t) n) != 1)
	{
		msg("decrypt: could not hash the plaintext");
		goto end;
	}
	if (write_all(fd, plain, (size_t) n) != 0)
	{
		msg("decrypt: could not write the plaintext: %s", strerror(errno));
		*code = EXIT_IO;
		goto end;
	}
	ret = 0;
end:
	ERR_clear_error();
	BIO_free(out);
	CMS_ContentInfo_free(cms);
	free(der);
	return ret;
}

/* Step 5: every chunk in order into target.partial, checked, then renamed. */
static int
decrypt_package(int dirfd, const Manifest *m, EVP_PKEY *key, X509 *cert, const char *password,
				const char *target)
{
	struct stat st;
	EVP_MD_CTX *md = NULL;
	char	   *partial = NULL;
	unsigned char digest[32];
	unsigned int mdlen = 0;
	char		hex[65];
	size_t		i;
	int			fd = -1, code = EXIT_DECRYPT;

	if (lstat(target, &st) == 0)
	{
		msg("decrypt: \"%s\" already exists; not overwriting it", target);
		return EXIT_DECRYPT;
	}
	partial = malloc(strlen(target) + sizeof(".partial"));
	md = EVP_MD_CTX_new();
	if (partial == NULL || md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
	{
		msg("out of memory");
		code = EXIT_IO;
		goto fail;
	}
	sprintf(partial, "%s.partial", target);
	/* A file of that name (another run's, a link) is never truncated, written or removed. */
	fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		if (errno == EEXIST)
		{
			/* refused like an existing target: exit 3 */
			msg("decrypt: \"%s\" already exists (another run?); not touching it", partial);
		}
		else
		{
			msg("decrypt: could not create \"%s\": %s", partial, strerror(errno));
			code = EXIT_IO;
		}
		free(partial);
		partial = NULL;			/* not ours: nothing to remove */
		goto fail;
	}
	for (i = 0; i < m->nchunks; i++)
	{
		if (interrupted)
		{
			msg("decrypt: interrupted");
			goto fail;
		}
		if (decrypt_chunk(dirfd, &m->chunks[i], key, cert, password, fd, md, &code) != 0)
			goto fail;
	}
	if (EVP_DigestFinal_ex(md, digest, &mdlen) != 1 || mdlen != 32)
	{
		msg("decrypt: could not hash the plaintext");
		goto fail;
	}
	hex_of(digest, 32, hex);
	if (strcmp(hex, m->output.sha256) != 0)
	{
		msg("decrypt: the decrypted %s differs from the manifest's SHA-256", m->output.file);
		goto fail;
	}
	if (fsync(fd) != 0 || close(fd) != 0)
	{
		fd = -1;
		msg("decrypt: could not write \"%s\": %s", partial, strerror(errno));
		code = EXIT_IO;
		goto fail;
	}
	fd = -1;
	if (interrupted)
	{
		msg("decrypt: interrupted");
		goto fail;
	}
	if (renameat2(AT_FDCWD, partial, AT_FDCWD, target, RENAME_NOREPLACE) != 0)
	{
		msg("decrypt: could not rename \"%s\" to \"%s\": %s", partial, target, strerror(errno));
		code = EXIT_IO;
		goto fail;
	}
	free(partial);
	EVP_MD_CTX_free(md);
	return EXIT_OK;
fail:
	if (fd >= 0)
		close(fd);
	if (partial != NULL)
		(void) unlink(partial);
	free(partial);
	EVP_MD_CTX_free(md);
	return code;
}

static void
summary(const char *dir, const Manifest *m, const SignInfo *si, const StampInfo *ts, int stamped,
		const char *decrypted)
{
	size_t		i;

	printf("%s: verified ", PROGNAME);
	put_text(stdout, dir);
	printf("\n  export:       %lld (", m->export_id);
	put_text(stdout, m->kind);
	printf(")\n  camera:       %lld ", m->camera_id);
	put_text(stdout, m->camera_name ? m->camera_name : "(no name)");
	printf("\n  range:        ");
	put_text(stdout, m->from);
	printf(" to ");
	put_text(stdout, m->to);
	printf("\n  exported by:  ");
	put_text(stdout, m->exported_by);
	printf(" (session user ");
	put_text(stdout, m->session_user);
	printf(")\n  reason:       ");
	put_text(stdout, m->reason);
	printf("\n  profile:      ");
	put_text(stdout, m->profile);
	printf("\n  created:      ");
	put_text(stdout, m->created_at);
	printf(" by ");
	put_text(stdout, m->tool_name);
	printf(" ");
	put_text(stdout, m->tool_version);
	printf("\n  signed by:    ");
	put_text(stdout, si->signer);
	if (si->signing_time[0])
		printf(" at %s", si->signing_time);
	if (stamped)
	{
		printf("\n  timestamp:    %s", ts->gen_time[0] ? ts->gen_time : "(no time)");
		if (ts->tsa)
		{
			printf(" by ");
			put_text(stdout, ts->tsa);
		}
	}
	else
		printf("\n  timestamp:    none");
	printf("\n  segments:     %zu\n  masks:        %zu\n  lifts:        %zu\n  holds:        %zu",
		   m->nsegments, m->nmasks, m->nlifts, m->nholds);
	printf("\n  output:       %s, %lld bytes, SHA-256 %s", m->output.file, m->output.bytes, m->output.sha256);
	if (!m->encrypted)
		printf("\n  encryption:   none\n");
	else
	{
		printf("\n  encryption:   AES-256-GCM (CMS AuthEnvelopedData), %zu chunk%s, for ", m->nchunks,
			   m->nchunks == 1 ? "" : "s");
		if (m->password)
			printf("a password");
		else
			for (i = 0; i < m->nrecipients; i++)
			{
				if (i > 0)
					printf("; ");
				put_text(stdout, m->recipients[i]);
			}
		printf("\n");
		if (decrypted)
		{
			printf("  decrypted to: ");
			put_text(stdout, decrypted);
			printf(" (SHA-256 as in the manifest)\n");
		}
	}
}

int
main(int argc, char **argv)
{
	Options		opt;
	Manifest	m;
	Sums		sums;
	SignInfo	sinfo;
	StampInfo	stinfo;
	X509_STORE *store = NULL, *tsa_store = NULL;
	EVP_PKEY   *key = NULL;
	X509	   *cert = NULL;
	CMS_ContentInfo *cms = NULL;
	TS_RESP    *tsr = NULL;
	char	   *password = NULL;
	char	   *mtext = NULL, *p7s = NULL, *sumtext = NULL, *tsrtext = NULL;
	char	   *target = NULL;
	unsigned char *hashbuf = NULL;
	size_t		mlen = 0, p7slen = 0, sumlen = 0, tsrlen = 0, i;
	char		err[ERRLEN];
	int			dirfd = -1, code = EXIT_USAGE, stamped = 0, output_present = 0;
	struct sigaction sa;

	memset(&opt, 0, sizeof(opt));
	memset(&m, 0, sizeof(m));
	memset(&sums, 0, sizeof(sums));
	memset(&sinfo, 0, sizeof(sinfo));
	memset(&stinfo, 0, sizeof(stinfo));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	(void) sigaction(SIGINT, &sa, NULL);
	(void) sigaction(SIGTERM, &sa, NULL);
	(void) sigaction(SIGHUP, &sa, NULL);

	if (parse_options(argc, argv, &opt) != 0)
		goto end;				/* EXIT_USAGE */

	/* What the options name, before anything of the package is read. */
	if ((store = load_store("--ca-file", opt.ca_file, &code)) == NULL)
		goto end;
	if ((tsa_store = load_store(opt.tsa_ca_file ? "--tsa-ca-file" : "--ca-file",
								opt.tsa_ca_file ? opt.tsa_ca_file : opt.ca_file, &code)) == NULL)
		goto end;
	if (opt.key_file && (code = load_recipient(opt.key_file, opt.cert_file, &key, &cert)) != 0)
		goto end;
	if (opt.password_file)
	{
		char		why[512];

		/* (the receiver's file may sit on removable media: its mode is not checked) */
		password = secret_from_file(opt.password_file, MAX_SECRET, 0, why, sizeof(why));
		if (password == NULL)
		{
			msg("--password-file: %s", why);
			code = EXIT_USAGE;
			goto end;
		}
	}
	hashbuf = malloc(HASH_BUF_SIZE);
	if (hashbuf == NULL)
	{
		msg("out of memory");
		code = EXIT_IO;
		goto end;
	}
	dirfd = open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
	{
		msg("could not open the package directory \"%s\": %s", opt.dir, strerror(errno));
		code = EXIT_IO;
		goto end;
	}

	/* 1. The files, the manifest's format. */
	if (read_package_file(dirfd, "manifest.json", JSON_MAX_SIZE, &mtext, &mlen, &code, err, sizeof(err)) != 0 ||
		read_package_file(dirfd, "manifest.json.p7s", MAX_P7S_SIZE, &p7s, &p7slen, &code, err, sizeof(err)) != 0 ||
		read_package_file(dirfd, "SHA256SUMS", MAX_SUMS_SIZE, &sumtext, &sumlen, &code, err, sizeof(err)) != 0)
	{
		msg("%s", err);
		goto end;
	}
	code = EXIT_INVALID;
	if (manifest_parse(mtext, mlen, &m, err, sizeof(err)) != 0)
	{
		msg("%s", err);
		goto end;
	}

	/* 2. The signature. */
	if ((cms = signature_parse((const unsigned char *) p7s, p7slen, err, sizeof(err))) == NULL ||
		signature_verify(cms, mtext, mlen, store, &sinfo, err, sizeof(err)) != 0)
	{
		msg("%s", err);
		goto end;
	}

	/* 3. The timestamp, if there is one. */
	{
		struct stat st;

		if (fstatat(dirfd, "manifest.json.p7s.tsr", &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		{
			stamped = 1;
			if (read_package_file(dirfd, "manifest.json.p7s.tsr", MAX_TSR_SIZE, &tsrtext, &tsrlen, &code, err,
								  sizeof(err)) != 0)
			{
				msg("%s", err);
				goto end;
			}
			code = EXIT_INVALID;
			if ((tsr = timestamp_parse((const unsigned char *) tsrtext, tsrlen, err, sizeof(err))) == NULL ||
				timestamp_verify(tsr, (const unsigned char *) p7s, p7slen, tsa_store, &stinfo, err,
								 sizeof(err)) != 0)
			{
				msg("%s", err);
				goto end;
			}
		}
	}
	code = EXIT_INVALID;

	/* 4. The payload files, SHA256SUMS, nothing else. */
	if (!m.encrypted)
	{
		if (check_payload(dirfd, &m.output, hashbuf, &code) != 0)
			goto end;
	}
	else
	{
		struct stat st;

		for (i = 0; i < m.nchunks; i++)
			if (interrupted || check_payload(dirfd, &m.chunks[i], hashbuf, &code) != 0)
			{
				if (interrupted)
				{
					msg("interrupted");
					code = EXIT_IO;
				}
				goto end;
			}
		/* A decrypted copy of the output (the default --decrypt-to) must be the output. */
		if (fstatat(dirfd, m.output.file, &st, AT_SYMLINK_NOFOLLOW) == 0)
		{
			output_present = 1;
			if (check_payload(dirfd, &m.output, hashbuf, &code) != 0)
				goto end;
		}
	}
	if (sums_parse(sumtext, sumlen, &sums, err, sizeof(err)) != 0 ||
		sums_agree(&m, &sums, err, sizeof(err)) != 0)
	{
		msg("%s", err);
		goto end;
	}
	if (check_extra_files(dirfd, &m, output_present, &code) != 0)
		goto end;

	/* 5. Decryption. */
	if (key != NULL || password != NULL)
	{
		if (!m.encrypted)
		{
			msg("decrypt: the package is not encrypted (its output is %s)", m.output.file);
			code = EXIT_DECRYPT;
			goto end;
		}
		if (opt.decrypt_to)
			target = strdup(opt.decrypt_to);
		else if ((target = malloc(strlen(opt.dir) + strlen(m.output.file) + 2)) != NULL)
			sprintf(target, "%s/%s", opt.dir, m.output.file);
		if (target == NULL)
		{
			msg("out of memory");
			code = EXIT_IO;
			goto end;
		}
		if ((code = decrypt_package(dirfd, &m, key, cert, password, target)) != EXIT_OK)
			goto end;
	}

	if (!opt.quiet)
		summary(opt.dir, &m, &sinfo, &stinfo, stamped, target);
	code = EXIT_OK;
end:
	if (fflush(stdout) != 0 && code == EXIT_OK)
		code = EXIT_IO;
	if (dirfd >= 0)
		close(dirfd);
	free(target);
	free(hashbuf);
	free(mtext);
	free(p7s);
	free(sumtext);
	free(tsrtext);
	manifest_free(&m);
	sums_free(&sums);
	sign_info_free(&sinfo);
	stamp_info_free(&stinfo);
	CMS_ContentInfo_free(cms);
	TS_RESP_free(tsr);
	X509_STORE_free(store);
	X509_STORE_free(tsa_store);
	EVP_PKEY_free(key);
	X509_free(cert);
	secret_free(password);
	return code;
}
