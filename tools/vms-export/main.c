/*
 * vms-export: the evidence exporter of pg_vms.  Asks the database for an
 * export (vms.begin_export: the checks, the register row, the segments, the
 * masks that apply to the user), re-hashes every segment, writes one MP4 (the
 * H.264 as recorded, or re-encoded with the masks) or a masked PNG snapshot,
 * optionally encrypts it into CMS chunks, writes SHA256SUMS and manifest.json,
 * signs the manifest (detached CMS), optionally timestamps the signature
 * (RFC 3161) and records the export as finished.  The package is written
 * into <out>/export-<id>.partial/ and renamed to export-<id>/ at the end; on
 * any failure it is removed and the export recorded as failed.  See
 * export.h for the parts, tools/README.md and docs/export.md for the use.
 *
 * Exit codes: 0 done; 1 usage (also a key that does not fit the profile);
 * 2 refused by the database, or no database; 3 integrity (a segment differs
 * from the index); 4 other failure (I/O, media, crypto, TSA, interrupted).
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/log.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "export.h"
#include "filehash.h"
#include "numparse.h"
#include "purge.h"
#include "utf8.h"

volatile sig_atomic_t export_interrupted = 0;

typedef struct Options
{
	long		camera;
	const char *from;
	const char *to;
	const char *reason;
	const char *profile;
	const char *root;
	const char *out;
	const char *key;
	const char *passphrase_file;
	const char **recipients;
	int			nrecipients;
	const char *password_file;
	long long	chunk_size;
	const char *snapshot_at;
	const char *tsa_url;
	int			progress;		/* -1 auto, 0 --quiet, 1 --progress */
	const char *dbname;
} Options;

static void
on_signal(int sig)
{
	(void) sig;
	export_interrupted = 1;
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

/* FFmpeg's own messages (errors only), one line each with our prefix. */
static void
av_log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
	static int	print_prefix = 1;	/* FFmpeg's line state: only the log thread touches it */
	char		line[1024];
	size_t		n;

	if (level > av_log_get_level())
		return;
	av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n > 0)
		msg("ffmpeg: %s", line);
}

static int
is_utf8(const char *s)
{
	size_t		left = strlen(s), n;

	for (; left > 0; s += n, left -= n)
		if ((n = utf8_len((const unsigned char *) s, left)) == 0)
			return 0;
	return 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: " PROGNAME " --camera ID --from TIME --to TIME --reason TEXT --profile NAME\n"
			"                  --storage-root DIR --out DIR --key FILE [--passphrase-file FILE]\n"
			"                  [--recipient CERT.pem]... [--password-file FILE|-] [--chunk-size BYTES]\n"
			"                  [--snapshot-at TIME] [--tsa-url URL] [--progress | --quiet]\n"
			"                  [-d CONNINFO | --dbname CONNINFO] [--help] [--version]\n"
			"Writes a signed evidence package <out>/export-<id>/ and prints its path.\n"
			"Secrets come from files (--passphrase-file, --password-file) or the terminal.\n"
			"Exit status: 0 done, 1 usage, 2 refused by the database, 3 a segment differs\n"
			"from the index, 4 other failure.\n");
}

static int
parse_options(int argc, char **argv, Options *o)
{
	static const struct option longopts[] = {
		{"camera", required_argument, NULL, 'c'},
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{"reason", required_argument, NULL, 'r'},
		{"profile", required_argument, NULL, 'p'},
		{"storage-root", required_argument, NULL, 'R'},
		{"out", required_argument, NULL, 'o'},
		{"key", required_argument, NULL, 'k'},
		{"passphrase-file", required_argument, NULL, 'P'},
		{"recipient", required_argument, NULL, 'e'},
		{"password-file", required_argument, NULL, 'W'},
		{"chunk-size", required_argument, NULL, 'C'},
		{"snapshot-at", required_argument, NULL, 's'},
		{"tsa-url", required_argument, NULL, 'T'},
		{"progress", no_argument, NULL, 'g'},
		{"quiet", no_argument, NULL, 'q'},
		{"dbname", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	int			c;

	o->progress = -1;
	o->chunk_size = DEFAULT_CHUNK_SIZE;
	o->recipients = calloc((size_t) argc, sizeof(char *));
	if (o->recipients == NULL)
	{
		msg("out of memory");
		return -1;
	}
	while ((c = getopt_long(argc, argv, "d:", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'c':
				if (parse_long(optarg, 1, 2147483647L, &o->camera) != 0)
				{
					msg("--camera: a camera id (a positive integer) expected, got \"%s\"", optarg);
					return -1;
				}
				break;
			case 'f':
				o->from = optarg;
				break;
			case 't':
				o->to = optarg;
				break;
			case 'r':
				o->reason = optarg;
				break;
			case 'p':
				o->profile = optarg;
				break;
			case 'R':
				o->root = optarg;
				break;
			case 'o':
				o->out = optarg;
				break;
			case 'k':
				o->key = optarg;
				break;
			case 'P':
				o->passphrase_file = optarg;
				break;
			case 'e':
				o->recipients[o->nrecipients++] = optarg;
				break;
			case 'W':
				o->password_file = optarg;
				break;
			case 'C':
				if (parse_int64(optarg, 1, MAX_CHUNK_SIZE, &o->chunk_size) != 0)
				{
					msg("--chunk-size: a number of bytes from 1 to %lld expected, got \"%s\"",
						(long long) MAX_CHUNK_SIZE, optarg);
					return -1;
				}
				break;
			case 's':
				o->snapshot_at = optarg;
				break;
			case 'T':
				o->tsa_url = optarg;
				break;
			case 'g':
				o->progress = 1;
				break;
			case 'q':
				o->progress = 0;
				break;
			case 'd':
				o->dbname = optarg;
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
	if (optind < argc)
	{
		msg("unexpected argument \"%s\"", argv[optind]);
		return -1;
	}
#define REQUIRE(v, name) \
	if (!(v)) { msg("%s is required (see --help)", name); return -1; }
	REQUIRE(o->camera, "--camera");
	REQUIRE(o->from, "--from");
	REQUIRE(o->to, "--to");
	REQUIRE(o->reason, "--reason");
	REQUIRE(o->profile, "--profile");
	REQUIRE(o->root, "--storage-root");
	REQUIRE(o->out, "--out");
	REQUIRE(o->key, "--key (every package is signed)");
#undef REQUIRE
	if (o->reason[0] == '\0' || !is_utf8(o->reason))
	{
		msg("--reason must be non-empty UTF-8 text");
		return -1;
	}
	if (o->nrecipients > 0 && o->password_file)
	{
		msg("--recipient and --password-file exclude each other");
		return -1;
	}
	if (o->dbname && strstr(o->dbname, "password"))
	{
		msg("--dbname must not hold a password (the command line is visible to other users);"
			" use ~/.pgpass or a service file");
		return -1;
	}
	return 0;
}

/* Removes <out>/name and what it holds (our own flat package directory). */
static void
remove_dir(int outfd, const char *name)
{
	int			fd = openat(outfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR		   *d;
	struct dirent *e;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL)
	{
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(void) unlinkat(fd, e->d_name, 0);
	closedir(d);
	(void) unlinkat(outfd, name, AT_REMOVEDIR);
	(void) fsync(outfd);
}

/*
 * The signer checks: the key fits the profile's certificate, whose SHA-256
 * is the profile's signer_sha256, and is encrypted when the profile says so.
 */
static int
check_signer(const Profile *p, EVP_PKEY *key, int key_encrypted, X509 **cert, STACK_OF(X509) **chain,
			 char *err, size_t errlen)
{
	char		hex[65], e[ERRLEN - 128];

	X509_free(*cert);
	*cert = NULL;
	sk_X509_pop_free(*chain, X509_free);
	*chain = NULL;
	if (p->key_needs_passphrase && !key_encrypted)
	{
		snprintf(err, errlen, "the profile \"%s\" requires a signer key protected by a passphrase;"
				 " this key file is not encrypted", p->name);
		return -1;
	}
	if ((*cert = cert_from_pem(p->signer_certificate, e, sizeof(e))) == NULL)
	{
		snprintf(err, errlen, "the profile's signer certificate: %s", e);
		return -1;
	}
	if (cert_sha256_hex(*cert, hex) != 0 || strcmp(hex, p->signer_sha256) != 0)
	{
		snprintf(err, errlen, "the profile's signer certificate does not match its signer_sha256");
		return -1;
	}
	if (X509_check_private_key(*cert, key) != 1)
	{
		ERR_clear_error();
		snprintf(err, errlen, "the signer key does not belong to the certificate of the profile \"%s\"",
				 p->name);
		return -1;
	}
	if (p->signer_chain && (*chain = certs_from_pem(p->signer_chain, e, sizeof(e))) == NULL)
	{
		snprintf(err, errlen, "the profile's signer chain: %s", e);
		return -1;
	}
	return 0;
}

static char *
pem_of(X509 *cert)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	char	   *p, *out = NULL;
	long		n;

	if (bio && PEM_write_bio_X509(bio, cert) == 1)
	{
		n = BIO_get_mem_data(bio, &p);
		if ((out = malloc((size_t) n + 1)) != NULL)
		{
			memcpy(out, p, (size_t) n);
			out[n] = '\0';
		}
	}
	BIO_free(bio);
	return out;
}

int
main(int argc, char **argv)
{
	Options		opt;
	Session		s;
	Profile		peek;
	Output		out;
	Progress	pr;
	struct sigaction sa;
	STACK_OF(X509) *recips = NULL, *chain = NULL;
	X509	   *cert = NULL;
	EVP_PKEY   *key = NULL;
	char	   *password = NULL, *manifest = NULL, *sums = NULL, *p7s = NULL, *signer_pem = NULL,
			   *signer_subject = NULL;
	size_t		p7s_len = 0;
	char		err[ERRLEN], e2[ERRLEN / 2], partial[64], final[64], created[32];
	unsigned char manifest_md[32];
	int			rootfd = -1, outfd = -1, pfd = -1, made_partial = 0, key_encrypted = 0, peeked;
	int			i, r, timestamped = 0, rc = EXIT_FAILURE_OTHER;
	int64_t		at_ms = 0;

	memset(&opt, 0, sizeof(opt));
	memset(&s, 0, sizeof(s));
	memset(&peek, 0, sizeof(peek));
	memset(&out, 0, sizeof(out));
	memset(&pr, 0, sizeof(pr));
	err[0] = '\0';

	if (parse_options(argc, argv, &opt) != 0)
	{
		free(opt.recipients);
		return EXIT_USAGE;
	}
	pr.on = opt.progress == 1 || (opt.progress == -1 && isatty(STDERR_FILENO));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	av_log_set_level(AV_LOG_ERROR);
	av_log_set_callback(av_log_cb);

	/* ---- local checks, before anything is recorded ---- */
	rc = EXIT_USAGE;
	rootfd = open(opt.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
	{
		snprintf(err, sizeof(err), "--storage-root \"%s\": %s", opt.root, strerror(errno));
		goto done;
	}
	outfd = open(opt.out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (outfd < 0)
	{
		snprintf(err, sizeof(err), "--out \"%s\": %s", opt.out, strerror(errno));
		goto done;
	}
	if (opt.nrecipients > 0)
	{
		recips = sk_X509_new_null();
		if (recips == NULL)
		{
			snprintf(err, sizeof(err), "out of memory");
			goto done;
		}
		for (i = 0; i < opt.nrecipients; i++)
		{
			STACK_OF(X509) *one = certs_from_file(opt.recipients[i], e2, sizeof(e2));

			if (one == NULL)
			{
				snprintf(err, sizeof(err), "--recipient: %s", e2);
				goto done;
			}
			while (sk_X509_num(one) > 0)
				sk_X509_push(recips, sk_X509_shift(one));
			sk_X509_free(one);
		}
	}
	if (opt.password_file)
	{
		password = read_secret(strcmp(opt.password_file, "-") == 0 ? NULL : opt.password_file,
							   "export password", 1, e2, sizeof(e2));
		if (password == NULL)
		{
			snprintf(err, sizeof(err), "--password-file: %s", e2);
			goto done;
		}
	}
	key = load_signer_key(opt.key, opt.passphrase_file, &key_encrypted, e2, sizeof(e2));
	if (key == NULL)
	{
		/* An unreadable key or a wrong passphrase is a crypto failure, not usage. */
		snprintf(err, sizeof(err), "--key: %s", e2);
		rc = EXIT_FAILURE_OTHER;
		goto done;
	}

	/* ---- the database ---- */
	rc = EXIT_REFUSED;
	if (session_connect(&s, opt.dbname, err, sizeof(err)) != 0)
		goto done;
	peeked = session_peek_profile(&s, opt.profile, &peek, err, sizeof(err));
	if (peeked < 0)
		goto done;
	if (peeked > 0)
	{
		rc = EXIT_USAGE;
		if (check_signer(&peek, key, key_encrypted, &cert, &chain, err, sizeof(err)) != 0)
			goto done;
		if (peek.encryption_required && !recips && !password)
		{
			snprintf(err, sizeof(err), "the profile \"%s\" requires encryption: give --recipient or --password-file",
					 peek.name);
			goto done;
		}
	}
	rc = session_begin(&s, (int) opt.camera, opt.from, opt.to, opt.reason, opt.profile,
					   opt.snapshot_at != NULL, err, sizeof(err));
	if (rc != EXIT_OK)
		goto done;

	/* ---- from here on a failure is recorded with vms.fail_export() ---- */
	rc = EXIT_USAGE;
	if (check_signer(&s.profile, key, key_encrypted, &cert, &chain, err, sizeof(err)) != 0)
		goto done;
	if (s.profile.encryption_required && !recips && !password)
	{
		snprintf(err, sizeof(err), "the profile \"%s\" requires encryption: give --recipient or --password-file",
				 s.profile.name);
		goto done;
	}
	rc = EXIT_FAILURE_OTHER;
	if (session_time_ms(&s, s.from, &s.from_ms, err, sizeof(err)) != 0 ||
		session_time_ms(&s, s.to, &s.to_ms, err, sizeof(err)) != 0)
		goto done;
	if (opt.snapshot_at)
	{
		if (session_time_ms(&s, opt.snapshot_at, &at_ms, err, sizeof(err)) != 0)
		{
			rc = EXIT_USAGE;
			goto done;
		}
		if (at_ms < s.from_ms || at_ms > s.to_ms)
		{
			snprintf(err, sizeof(err), "--snapshot-at is outside --from .. --to");
			rc = EXIT_USAGE;
			goto done;
		}
	}

	snprintf(partial, sizeof(partial), "export-%lld.partial", s.export_id);
	snprintf(final, sizeof(final), "export-%lld", s.export_id);
	if (mkdirat(outfd, partial, 0750) != 0)
	{
		snprintf(err, sizeof(err), "could not create \"%s/%s\": %s", opt.out, partial, strerror(errno));
		goto done;
	}
	made_partial = 1;
	pfd = openat(outfd, partial, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
	{
		snprintf(err, sizeof(err), "could not open \"%s/%s\": %s", opt.out, partial, strerror(errno));
		goto done;
	}

	/* The segments are re-hashed beside the export; a reader waits for each. */
	s.check = segcheck_start(rootfd, &s, err, sizeof(err));
	if (s.check == NULL)
		goto done;

	if (opt.snapshot_at)
	{
		snprintf(out.file, sizeof(out.file), "snapshot.png");
		r = snapshot_export(rootfd, &s, at_ms, pfd, out.file, err, sizeof(err));
	}
	else
	{
		long long	total = 0;

		for (i = 0; i < s.nsegs; i++)
			total += s.segs[i].bytes;
		snprintf(out.file, sizeof(out.file), "video.mp4");
		progress_begin(&pr, s.nmasks ? "encode" : "remux", total);
		if (s.nmasks)
			r = masked_export(rootfd, &s, pfd, out.file, &pr, err, sizeof(err));
		else
			r = remux_segments(rootfd, &s, pfd, out.file, &pr, err, sizeof(err));
		if (r == 0)
			progress_end(&pr);
	}
	/* A segment that differs from the index explains any failure above. */
	{
		char		check_err[512];
		int			cr = segcheck_finish(&s.check, check_err, sizeof(check_err));

		if (cr != EXIT_OK && strcmp(check_err, "interrupted") != 0)
		{
			rc = cr;
			snprintf(err, sizeof(err), "%s", check_err);
			goto done;
		}
	}
	if (r != 0)
		goto done;
	if (export_interrupted)
	{
		snprintf(err, sizeof(err), "interrupted");
		goto done;
	}

	if (recips || password)
	{
		if (encrypt_output(pfd, &out, opt.chunk_size, recips, password, &pr, err, sizeof(err)) != 0)
			goto done;
		out.scheme_kind = recips ? "recipients" : "password";
		if (recips)
		{
			out.nrecipients = sk_X509_num(recips);
			out.recipients = calloc((size_t) out.nrecipients, sizeof(char *));
			for (i = 0; out.recipients && i < out.nrecipients; i++)
				if ((out.recipients[i] = cert_subject(sk_X509_value(recips, i))) == NULL)
					break;
			if (out.recipients == NULL || i < out.nrecipients)
			{
				snprintf(err, sizeof(err), "out of memory");
				goto done;
			}
		}
	}
	else
	{
		unsigned char *buf = malloc(HASH_BUFSIZE);
		int64_t		bytes = 0;

		r = buf ? sha256_file_at(pfd, out.file, buf, HASH_BUFSIZE, out.md, &bytes) : -1;
		free(buf);
		if (r != 0 || fchmodat(pfd, out.file, 0644, 0) != 0)
		{
			snprintf(err, sizeof(err), "could not read \"%s\": %s", out.file, strerror(errno));
			goto done;
		}
		out.bytes = bytes;
		hex_of(out.md, 32, out.sha256);
	}

	utc_now_iso(created);
	sums = sha256sums_build(&out);
	manifest = manifest_build(&s, &out, created);
	if (sums == NULL || manifest == NULL)
	{
		snprintf(err, sizeof(err), "out of memory");
		goto done;
	}
	if (write_file_at(pfd, "SHA256SUMS", sums, strlen(sums), 0644, err, sizeof(err)) != 0 ||
		write_file_at(pfd, "manifest.json", manifest, strlen(manifest), 0644, err, sizeof(err)) != 0)
		goto done;
	if (EVP_Digest(manifest, strlen(manifest), manifest_md, NULL, EVP_sha256(), NULL) != 1)
	{
		snprintf(err, sizeof(err), "could not hash the manifest");
		goto done;
	}
	if (sign_manifest(pfd, manifest, strlen(manifest), cert, key, chain, &p7s, &p7s_len,
					  err, sizeof(err)) != 0)
		goto done;
	{
		const char *tsa = opt.tsa_url ? opt.tsa_url : s.profile.tsa_url;

		if (tsa && tsa[0])
		{
			if (timestamp_signature(pfd, tsa, p7s, p7s_len, err, sizeof(err)) != 0)
				goto done;
			timestamped = 1;
		}
	}
	if (fsync(pfd) != 0)
	{
		snprintf(err, sizeof(err), "could not fsync \"%s/%s\": %s", opt.out, partial, strerror(errno));
		goto done;
	}
	if (export_interrupted)
	{
		snprintf(err, sizeof(err), "interrupted");
		goto done;
	}
	signer_pem = pem_of(cert);
	signer_subject = cert_subject(cert);
	if (signer_pem == NULL || signer_subject == NULL)
	{
		snprintf(err, sizeof(err), "out of memory");
		goto done;
	}
	/* The place must be free before the register says finished (an --out reused across databases). */
	{
		struct stat st;

		if (fstatat(outfd, final, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		{
			snprintf(err, sizeof(err), "\"%s/%s\" already exists; choose another --out", opt.out, final);
			goto done;
		}
	}
	if (session_finish(&s, manifest_md, out.md, signer_pem, signer_subject, timestamped,
					   out.scheme_kind, err, sizeof(err)) != 0)
	{
		rc = EXIT_REFUSED;
		goto done;
	}
	if (renameat2(outfd, partial, outfd, final, RENAME_NOREPLACE) != 0 || fsync(outfd) != 0)
	{
		snprintf(err, sizeof(err), "could not rename \"%s/%s\" to \"%s\": %s (the export is recorded as finished)",
				 opt.out, partial, final, strerror(errno));
		/* finished in the register: nothing to fail any more */
		s.export_id = 0;
		goto done;
	}
	made_partial = 0;
	printf("%s/%s\n", opt.out, final);
	rc = EXIT_OK;

done:
	segcheck_cancel(&s.check);
	progress_abort(&pr);
	if (rc != EXIT_OK)
	{
		msg("%s", err);
		if (made_partial)
			remove_dir(outfd, partial);
		if (s.export_id != 0 && session_fail(&s, err, e2, sizeof(e2)) != 0)
			msg("%s", e2);
	}
	secret_free(password);
	free(manifest);
	free(sums);
	free(p7s);
	free(signer_pem);
	free(signer_subject);
	for (i = 0; out.recipients && i < out.nrecipients; i++)
		free(out.recipients[i]);
	free(out.recipients);
	free(out.chunks);
	EVP_PKEY_free(key);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(recips, X509_free);
	profile_free(&peek);
	session_free(&s);
	if (pfd >= 0)
		close(pfd);
	if (outfd >= 0)
		close(outfd);
	if (rootfd >= 0)
		close(rootfd);
	free(opt.recipients);
	return rc;
}
