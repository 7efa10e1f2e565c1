/*
 * vms-storage: the file side of pg_vms retention, run by a recording server.
 *
 * The database never deletes a recording file.  vms.apply_retention() removes
 * expired index rows and releases their files to the recorder that wrote
 * them; this program, connected as that recorder, does the rest:
 *
 *   purge  claims the released files (vms.purge_claim), unlinks them, fsyncs
 *          their directories and only then confirms them (vms.purge_confirm);
 *          tools/common/purge.c, shared with vms-ingest.
 *          A file already gone counts as removed, so a run that died half way
 *          is simply repeated.
 *   check  compares the storage with the index (vms.storage_manifest): orphan
 *          files (not in the index), missing files (indexed, not on disk) and
 *          mismatched files (size, or with --verify-hashes SHA-256, differs),
 *          and reports them (vms.storage_check_report).  Read-only unless
 *          --repair: then orphans older than --grace are removed and the rows
 *          whose file is missing are forgotten (vms.storage_forget_missing).
 *          A mismatched file is evidence and is never touched.
 *
 * Storage layout: <root>/<camera_id>/<YYYY-MM-DD>/<file>, index paths relative
 * to the root; files being written end in ".partial".  Symbolic links are never
 * followed below the root, and an index path that is absolute or has a ".."
 * component is refused.
 *
 * Exit codes: 0 clean, 1 findings, 2 usage error, 3 connection or database
 * error, 4 I/O error, 5 interrupted.  See tools/README.md.
 */
#define _DEFAULT_SOURCE			/* openat, fdopendir, fstatat, posix_fadvise */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "filehash.h"
#include "lists.h"
#include "numparse.h"
#include "pgutil.h"
#include "purge.h"
#include "utf8.h"

#define PROGNAME "vms-storage"
#define PROGVERSION "1.3"

/* Ordered by severity: a run exits with the worst it met. */
#define EXIT_CLEAN			0
#define EXIT_FINDINGS		1
#define EXIT_USAGE			2
#define EXIT_DB				3
#define EXIT_IO				4
#define EXIT_INTERRUPTED	5

#define MAX_CLAIM			PURGE_MAX_CLAIM
#define MAX_REPORT_ORPHANS	10000	/* vms.storage_check_report() limits */
#define MAX_REPORT_IDS		100000
#define MAX_DEPTH			16		/* directory levels below <root>/<camera_id> */
#define HASH_BUFSIZE		(256 * 1024)
#define DEFAULT_MAX_FILES	1000
#define DEFAULT_GRACE		3600

static volatile sig_atomic_t interrupted = 0;

typedef struct Options
{
	const char *command;
	const char *root;
	const char *dbname;
	int		   *cameras;
	int			ncameras;
	long		max_files;
	long		grace;
	int			verify_hashes;
	int			repair;
	int			quiet;
} Options;

/* One file of vms.storage_manifest(). */
typedef struct Entry
{
	char	   *path;			/* normalised; NULL if the index path is unsafe */
	long long	id;
	long long	bytes;
	char		sha256[65];		/* lower-case hex */
	int			recorded;		/* 'recorded' (an index row), else 'released' */
} Entry;

typedef struct Check
{
	const Options *o;
	int			camera;
	time_t		now;
	unsigned char *hashbuf;
	Entry	   *entries;
	size_t		nentries;
	StrList		orphans;
	IdList		missing;
	IdList		mismatched;
	long long	files_checked;
	long long	orphans_removed;
	long long	forgotten;
	int			bad_paths;
	int			io_errors;
	int			oom;
} Check;

static void
on_signal(int signo)
{
	(void) signo;
	interrupted = 1;
}

/* One line on stderr, prefixed with the program name; line ends flattened. */
static void
complain(const char *fmt,...)
{
	char		line[8192];
	size_t		len;
	size_t		i;
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	len = strlen(line);
	for (i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r' || line[i] == '\t')
			line[i] = ' ';
	while (len > 0 && line[len - 1] == ' ')
		line[--len] = '\0';
	fprintf(stderr, "%s: %s\n", PROGNAME, line);
}

/* A failed libpq call: the server's message with its SQLSTATE, on one line. */
static void
complain_result(const char *what, const PGresult *res, const PGconn *conn)
{
	char		line[2048];

	pgutil_describe_failure(line, sizeof(line), what, res, conn);
	complain("%s", line);
}

/*
 * A file name as text the database and a terminal accept: well-formed UTF-8
 * is kept, control characters, backslashes and bytes that are no UTF-8 become
 * \xNN.
 */
static void
buf_escaped(Buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		left = strlen(s);

	while (left > 0)
	{
		size_t		n = utf8_len(p, left);

		if (n == 0 || *p < 0x20 || *p == 0x7f || *p == '\\')
		{
			char		esc[5];

			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			buf_add(b, esc, 4);
			n = 1;
		}
		else
			buf_add(b, (const char *) p, n);
		p += n;
		left -= n;
	}
}

/* Prints a path as buf_escaped() writes it. */
static void
print_path(FILE *out, const char *path)
{
	Buf			b = {NULL, 0, 0, 0};

	buf_escaped(&b, path);
	fputs(b.oom ? "(out of memory)" : b.data ? b.data : "", out);
	free(b.data);
}

/* A PostgreSQL array literal of bigints. */
static void
buf_id_array(Buf *b, const IdList *l, size_t max)
{
	size_t		i;
	char		num[32];

	buf_puts(b, "{");
	for (i = 0; i < l->n && i < max; i++)
	{
		snprintf(num, sizeof(num), "%s%lld", i ? "," : "", l->v[i]);
		buf_puts(b, num);
	}
	buf_puts(b, "}");
}

/* A PostgreSQL array literal of texts: each element quoted, " and \ escaped. */
static void
buf_text_array(Buf *b, const StrList *l, size_t max)
{
	size_t		i;

	buf_puts(b, "{");
	for (i = 0; i < l->n && i < max; i++)
	{
		Buf			e = {NULL, 0, 0, 0};
		const char *c;

		buf_escaped(&e, l->v[i]);
		if (e.oom)
			b->oom = 1;
		buf_puts(b, i ? ",\"" : "\"");
		for (c = e.data ? e.data : ""; *c; c++)
		{
			if (*c == '"' || *c == '\\')
				buf_add(b, "\\", 1);
			buf_add(b, c, 1);
		}
		buf_puts(b, "\"");
		free(e.data);
	}
	buf_puts(b, "}");
}

/* 1234567 -> "1.2 MB" (decimal units). */
static void
format_bytes(long long bytes, char *out, size_t outsize)
{
	static const char *const units[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
	double		v = (double) bytes;
	int			u = -1;

	if (bytes < 1000)
	{
		snprintf(out, outsize, "%lld B", bytes);
		return;
	}
	while (v >= 1000.0 && u < 5)
	{
		v /= 1000.0;
		u++;
	}
	snprintf(out, outsize, "%.1f %s", v, units[u]);
}

/* purge_camera()'s messages, as ours. */
static void
report_line(void *arg, const char *message)
{
	(void) arg;
	complain("%s", message);
}

/* purge, one camera (tools/common/purge.c), and its summary line. */
static int
purge_one(PGconn *conn, const Options *o, int rootfd, int camera)
{
	PurgeResult r;
	char		size[32];
	int			status;

	memset(&r, 0, sizeof(r));
	status = purge_camera(conn, rootfd, camera, o->max_files, &interrupted, report_line, NULL, &r);
	if (!o->quiet)
	{
		format_bytes(r.bytes, size, sizeof(size));
		printf("camera %d: removed %lld files (%s), %lld errors\n", camera, r.files, size, r.errors);
		fflush(stdout);
	}
	return status;
}

/* SHA-256 of a file, in hex.  0, or -1 and errno. */
static int
hash_file(int dirfd, const char *name, unsigned char *buf, char hex[65])
{
	unsigned char md[32];
	int			i;

	if (sha256_file_at(dirfd, name, buf, HASH_BUFSIZE, md, NULL) != 0)
		return -1;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int
cmp_entry(const void *a, const void *b)
{
	const Entry *x = a;
	const Entry *y = b;

	if (x->path == NULL || y->path == NULL)
		return (x->path == NULL) - (y->path == NULL);
	return strcmp(x->path, y->path);
}

static const Entry *
find_entry(const Check *c, const char *path)
{
	Entry		key;

	memset(&key, 0, sizeof(key));
	key.path = (char *) path;
	return bsearch(&key, c->entries, c->nentries, sizeof(Entry), cmp_entry);
}

static void
finding(const Check *c, const char *what, long long id, const char *path, const char *detail)
{
	if (c->o->quiet)
		return;
	printf("camera %d: %s", c->camera, what);
	if (id > 0)
		printf(" segment %lld", id);
	putchar(' ');
	print_path(stdout, path);
	if (detail != NULL)
		printf(" (%s)", detail);
	putchar('\n');
}

/* Compares one file of the manifest with the disk. */
static void
check_entry(Check *c, DirCache *dc, const Entry *e)
{
	char		path[PATH_MAX];
	char		hex[65];
	char		detail[96];
	const char *dir;
	const char *name;
	struct stat st;
	int			fd;
	int			absent = 0;

	snprintf(path, sizeof(path), "%s", e->path);
	name = storage_split_path(path, &dir);
	fd = dircache_get(dc, dir);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		absent = 1;
	else if (fd < 0 && errno == ELOOP)
	{
		/* Whatever is behind the link is not what was recorded here: evidence, left alone. */
		if (e->recorded)
		{
			finding(c, "mismatched", e->id, e->path, "a directory on its path is a symbolic link, not followed");
			c->oom |= idlist_add(&c->mismatched, e->id) != 0;
		}
		return;
	}
	else if (fd < 0)
	{
		complain("camera %d: could not open directory \"%s\" of segment %lld: %s", c->camera, dir, e->id,
				 strerror(errno));
		c->io_errors++;
		return;
	}
	else if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
	{
		if (errno != ENOENT)
		{
			complain("camera %d: could not stat \"%s\": %s", c->camera, e->path, strerror(errno));
			c->io_errors++;
			return;
		}
		absent = 1;
	}
	if (absent)
	{
		/* A released file may be gone already: only index rows need theirs. */
		if (e->recorded)
		{
			finding(c, "missing", e->id, e->path, NULL);
			c->oom |= idlist_add(&c->missing, e->id) != 0;
		}
		return;
	}
	c->files_checked++;
	if (!e->recorded)
		return;
	detail[0] = '\0';
	if (!S_ISREG(st.st_mode))
		snprintf(detail, sizeof(detail), "not a regular file");
	else if ((long long) st.st_size != e->bytes)
		snprintf(detail, sizeof(detail), "%lld bytes, the index says %lld", (long long) st.st_size, e->bytes);
	else if (c->o->verify_hashes)
	{
		if (hash_file(fd, name, c->hashbuf, hex) != 0)
		{
			complain("camera %d: could not read \"%s\": %s", c->camera, e->path, strerror(errno));
			c->io_errors++;
			return;
		}
		if (strcmp(hex, e->sha256) != 0)
			snprintf(detail, sizeof(detail), "SHA-256 differs from the index");
	}
	if (detail[0] != '\0')
	{
		finding(c, "mismatched", e->id, e->path, detail);
		c->oom |= idlist_add(&c->mismatched, e->id) != 0;
	}
}

/*
 * Walks a directory (fd, owned) whose path relative to the root is in rel
 * (length len, a PATH_MAX buffer), collecting regular files that are not in
 * the manifest.  Symbolic links are not followed.
 */
static void
walk_dir(Check *c, int fd, char *rel, size_t len, int depth)
{
	DIR		   *d = fdopendir(fd);
	struct dirent *de;

	if (d == NULL)
	{
		complain("camera %d: could not read directory \"%s\": %s", c->camera, rel, strerror(errno));
		c->io_errors++;
		close(fd);
		return;
	}
	for (;;)
	{
		struct stat st;
		size_t		n;

		errno = 0;
		de = readdir(d);
		if (de == NULL)
		{
			if (errno != 0)
			{
				complain("camera %d: could not read directory \"%s\": %s", c->camera, rel, strerror(errno));
				c->io_errors++;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (interrupted || c->oom)
			break;
		n = strlen(de->d_name);
		if (len + 1 + n >= PATH_MAX)
		{
			complain("camera %d: path too long below \"%s\"; skipped", c->camera, rel);
			c->io_errors++;
			continue;
		}
		rel[len] = '/';
		memcpy(rel + len + 1, de->d_name, n + 1);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			if (errno != ENOENT)	/* gone meanwhile: nothing to check */
			{
				complain("camera %d: could not stat \"%s\": %s", c->camera, rel, strerror(errno));
				c->io_errors++;
			}
		}
		else if (S_ISDIR(st.st_mode))
		{
			int			sub;

			if (depth >= MAX_DEPTH)
			{
				complain("camera %d: \"%s\" is nested more than %d levels deep; not checked", c->camera, rel, MAX_DEPTH);
				c->io_errors++;
			}
			else if ((sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			{
				complain("camera %d: could not open directory \"%s\": %s", c->camera, rel, strerror(errno));
				c->io_errors++;
			}
			else
				walk_dir(c, sub, rel, len + 1 + n, depth + 1);
		}
		else if (!S_ISREG(st.st_mode))
			complain("camera %d: warning: \"%s\" is not a regular file or directory; not checked", c->camera, rel);
		else if (find_entry(c, rel) == NULL)
		{
			c->files_checked++;
			/* A .partial file younger than the grace period is being written. */
			if (!storage_is_partial(de->d_name) || c->now - st.st_mtime >= c->o->grace)
				c->oom |= strlist_add(&c->orphans, strdup(rel)) != 0;
		}
		rel[len] = '\0';
	}
	closedir(d);
}

/* --repair: removes the orphans older than --grace (age checked again now). */
static int
remove_orphans(Check *c, int rootfd)
{
	DirCache	dc;
	size_t		i;
	int			status = EXIT_CLEAN;

	dircache_init(&dc, rootfd);
	for (i = 0; i < c->orphans.n && !interrupted; i++)
	{
		char		path[PATH_MAX];
		const char *dir;
		const char *name;
		struct stat st;
		int			fd;

		snprintf(path, sizeof(path), "%s", c->orphans.v[i]);
		name = storage_split_path(path, &dir);
		if ((dc.fd < 0 || strcmp(dc.dir, dir) != 0) && dircache_sync(&dc) != 0)
		{
			complain("could not fsync directory \"%s\": %s", dc.dir, strerror(errno));
			status = EXIT_IO;
		}
		fd = dircache_get(&dc, dir);
		if (fd < 0 || fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;			/* gone meanwhile */
		if (!S_ISREG(st.st_mode) || c->now - st.st_mtime < c->o->grace)
		{
			finding(c, "kept orphan", 0, c->orphans.v[i], "younger than --grace");
			continue;
		}
		if (unlinkat(fd, name, 0) != 0)
		{
			if (errno == ENOENT)
				continue;
			complain("camera %d: could not remove orphan \"%s\": %s", c->camera, c->orphans.v[i], strerror(errno));
			status = EXIT_IO;
			continue;
		}
		dc.dirty = 1;
		c->orphans_removed++;
		finding(c, "removed orphan", 0, c->orphans.v[i], NULL);
	}
	if (dircache_sync(&dc) != 0)
	{
		complain("could not fsync directory \"%s\": %s", dc.dir, strerror(errno));
		status = EXIT_IO;
	}
	dircache_close(&dc);
	return status;
}

/*
 * check, one camera: the manifest against the disk, reported; with --repair,
 * orphans removed and missing rows forgotten.
 */
static int
check_camera(PGconn *conn, const Options *o, int rootfd, int camera, unsigned char *hashbuf)
{
	Check		c;
	DirCache	dc;
	PGresult   *res = NULL;
	Buf			orphans = {NULL, 0, 0, 0};
	Buf			missing = {NULL, 0, 0, 0};
	Buf			mismatched = {NULL, 0, 0, 0};
	char		cam[16];
	char		checked[32];
	char		removed[32];
	char		rel[PATH_MAX];
	char		check_id[32] = "-";
	char		what[64];
	const char *params[7];
	size_t		i;
	int			status = EXIT_CLEAN;
	int			fd;

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.camera = camera;
	c.now = time(NULL);
	c.hashbuf = hashbuf;
	dircache_init(&dc, rootfd);
	snprintf(cam, sizeof(cam), "%d", camera);

	/* What this recorder should hold for the camera. */
	params[0] = cam;
	res = PQexecParams(conn, "SELECT segment_id, path, bytes, pg_catalog.encode(sha256, 'hex'), state "
					   "FROM vms.storage_manifest($1::integer)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(what, sizeof(what), "vms.storage_manifest(%d)", camera);
		complain_result(what, res, conn);
		status = EXIT_DB;
		goto cleanup;
	}
	c.nentries = (size_t) PQntuples(res);
	c.entries = calloc(c.nentries ? c.nentries : 1, sizeof(Entry));
	if (c.entries == NULL)
	{
		c.oom = 1;
		goto cleanup;
	}
	for (i = 0; i < c.nentries; i++)
	{
		Entry	   *e = &c.entries[i];
		char		path[PATH_MAX];

		e->id = strtoll(PQgetvalue(res, (int) i, 0), NULL, 10);
		e->bytes = strtoll(PQgetvalue(res, (int) i, 2), NULL, 10);
		snprintf(e->sha256, sizeof(e->sha256), "%s", PQgetvalue(res, (int) i, 3));
		e->recorded = strcmp(PQgetvalue(res, (int) i, 4), "recorded") == 0;
		if (storage_normalize_path(PQgetvalue(res, (int) i, 1), path, sizeof(path)) != 0)
		{
			complain("camera %d: segment %lld has a path that is absolute or has a \"..\" component; not checked",
					 camera, e->id);
			c.bad_paths++;
			continue;
		}
		if ((e->path = strdup(path)) == NULL)
		{
			c.oom = 1;
			goto cleanup;
		}
	}
	PQclear(res);
	res = NULL;
	qsort(c.entries, c.nentries, sizeof(Entry), cmp_entry);

	/* Each indexed file, wherever it is below the root. */
	for (i = 0; i < c.nentries && c.entries[i].path != NULL && !interrupted && !c.oom; i++)
		check_entry(&c, &dc, &c.entries[i]);
	dircache_close(&dc);

	/* Everything below <root>/<camera_id>/: what is not indexed is an orphan. */
	fd = storage_open_dir(rootfd, cam);
	if (fd >= 0)
	{
		snprintf(rel, sizeof(rel), "%s", cam);
		walk_dir(&c, fd, rel, strlen(rel), 0);
	}
	else if (errno != ENOENT)
	{
		complain("camera %d: could not open directory \"%s\": %s", camera, cam,
				 errno == ELOOP ? "it is a symbolic link (not followed)" : strerror(errno));
		c.io_errors++;
	}
	if (c.oom)
		goto cleanup;
	if (interrupted)
	{
		status = EXIT_INTERRUPTED;
		goto cleanup;
	}
	if (c.io_errors > 0)
	{
		/* An incomplete look is not reported as the state of the storage. */
		complain("camera %d: %d I/O errors; nothing reported, nothing repaired", camera, c.io_errors);
		status = EXIT_IO;
		goto cleanup;
	}
	strlist_sort(&c.orphans, 0);
	for (i = 0; i < c.orphans.n; i++)
		finding(&c, "orphan", 0, c.orphans.v[i], NULL);
	idlist_sort(&c.missing);
	idlist_sort(&c.mismatched);

	if (o->repair)
		status = remove_orphans(&c, rootfd);

	if (c.orphans.n > MAX_REPORT_ORPHANS || c.missing.n > MAX_REPORT_IDS || c.mismatched.n > MAX_REPORT_IDS)
		complain("camera %d: warning: too many findings for one report; the first %d orphans and %d missing "
				 "and mismatched files are reported", camera, MAX_REPORT_ORPHANS, MAX_REPORT_IDS);
	buf_text_array(&orphans, &c.orphans, MAX_REPORT_ORPHANS);
	buf_id_array(&missing, &c.missing, MAX_REPORT_IDS);
	buf_id_array(&mismatched, &c.mismatched, MAX_REPORT_IDS);
	if (orphans.oom || missing.oom || mismatched.oom)
	{
		c.oom = 1;
		goto cleanup;
	}
	snprintf(checked, sizeof(checked), "%lld", c.files_checked);
	snprintf(removed, sizeof(removed), "%lld", c.orphans_removed > INT_MAX ? (long long) INT_MAX : c.orphans_removed);
	params[0] = cam;
	params[1] = checked;
	params[2] = o->verify_hashes ? "true" : "false";
	params[3] = orphans.data;
	params[4] = missing.data;
	params[5] = mismatched.data;
	params[6] = removed;
	res = PQexecParams(conn, "SELECT vms.storage_check_report($1::integer, $2::bigint, $3::boolean, $4::text[], "
					   "$5::bigint[], $6::bigint[], $7::integer)", 7, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		snprintf(what, sizeof(what), "vms.storage_check_report(%d)", camera);
		complain_result(what, res, conn);
		status = EXIT_DB;
		goto cleanup;
	}
	snprintf(check_id, sizeof(check_id), "%s", PQgetvalue(res, 0, 0));

	if (o->repair && c.missing.n > 0)
	{
		PQclear(res);
		params[1] = missing.data;
		res = PQexecParams(conn, "SELECT vms.storage_forget_missing($1::integer, $2::bigint[])",
						   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		{
			snprintf(what, sizeof(what), "vms.storage_forget_missing(%d)", camera);
			complain_result(what, res, conn);
			status = EXIT_DB;
		}
		else
			c.forgotten = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	}
	if (status == EXIT_CLEAN && (c.orphans.n > 0 || c.missing.n > 0 || c.mismatched.n > 0 || c.bad_paths > 0))
		status = EXIT_FINDINGS;
	if (!o->quiet)
	{
		printf("camera %d: checked %lld files (%s), %zu orphans, %zu missing, %zu mismatched",
			   camera, c.files_checked, o->verify_hashes ? "sizes and SHA-256" : "sizes only",
			   c.orphans.n, c.missing.n, c.mismatched.n);
		if (c.bad_paths > 0)
			printf(", %d unsafe index paths", c.bad_paths);
		if (o->repair)
			printf("; repaired: %lld orphans removed, %lld missing rows forgotten", c.orphans_removed, c.forgotten);
		printf(" (check %s)\n", check_id);
		fflush(stdout);
	}

cleanup:
	if (c.oom)
	{
		complain("out of memory");
		status = EXIT_IO;
	}
	dircache_close(&dc);
	PQclear(res);
	for (i = 0; i < c.nentries; i++)
		free(c.entries[i].path);
	free(c.entries);
	strlist_free(&c.orphans);
	idlist_free(&c.missing);
	idlist_free(&c.mismatched);
	free(orphans.data);
	free(missing.data);
	free(mismatched.data);
	return status;
}

static void
usage(FILE *out)
{
	fprintf(out,
			"%s removes the recording files pg_vms retention released, and checks a\n"
			"recording server's storage against the recordings index (see tools/README.md).\n"
			"\n"
			"Usage: %s [OPTION]... {purge|check}\n"
			"\n"
			"Commands:\n"
			"  purge                  remove the files vms.apply_retention() released\n"
			"                         (vms.purge_claim), fsync, confirm (vms.purge_confirm)\n"
			"  check                  compare the storage with the index: orphan files, missing\n"
			"                         files, size or SHA-256 mismatches; report them\n"
			"                         (vms.storage_check_report); read-only unless --repair\n"
			"\n"
			"Options:\n"
			"  -r, --root=DIR         the storage root; index paths are relative to it (required)\n"
			"  -c, --camera=ID        this camera only (repeatable; default: every camera\n"
			"                         assigned to the connected recorder)\n"
			"  -d, --dbname=CONNINFO  database name or connection string, without a password\n"
			"                         (use ~/.pgpass, PGPASSFILE or PGPASSWORD)\n"
			"  -n, --max-files=N      purge: files claimed at a time (1-100000, default %d)\n"
			"      --verify-hashes    check: compare each file's SHA-256, not only its size\n"
			"      --repair           check: remove orphans older than --grace and forget the\n"
			"                         rows whose file is missing; mismatched files are evidence\n"
			"                         and never touched\n"
			"      --grace=SECONDS    check: unindexed \".partial\" files younger than this are\n"
			"                         in progress, not orphans; --repair removes no orphan\n"
			"                         younger than this (default %d)\n"
			"  -q, --quiet            print errors only (no finding or summary lines)\n"
			"  -h, --help             show this help and exit\n"
			"  -V, --version          show the version and exit\n"
			"\n"
			"Layout: <root>/<camera_id>/<YYYY-MM-DD>/<file>; files being written end in\n"
			"\".partial\".  Symbolic links below the root are never followed; an index path\n"
			"that is absolute or has a \"..\" component is refused.\n"
			"Database: libpq; PG* environment variables and service files apply.  Connect as\n"
			"the recording server (a member of vms_recorder).\n"
			"Output: one line per finding and a summary line per camera on stdout.\n"
			"Exit status: 0 clean (check) or every released file removed (purge);\n"
			"1 findings: orphan, missing or mismatched files (check), files refused (purge);\n"
			"2 usage error (also a --camera not assigned to this recorder);\n"
			"3 connection or database error; 4 I/O error; 5 interrupted.\n",
			PROGNAME, PROGNAME, DEFAULT_MAX_FILES, DEFAULT_GRACE);
}

/* The connection string holds a password (it would show in the process list). */
static int
conninfo_has_password(const char *dbname, char **errmsg)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	int			found = 0;

	*errmsg = NULL;
	if (strchr(dbname, '=') == NULL && strncmp(dbname, "postgresql://", 13) != 0 &&
		strncmp(dbname, "postgres://", 11) != 0)
		return 0;				/* a plain database name */
	opts = PQconninfoParse(dbname, errmsg);
	if (opts == NULL)
		return -1;
	for (opt = opts; opt->keyword != NULL; opt++)
		if (strcmp(opt->keyword, "password") == 0 && opt->val != NULL && opt->val[0] != '\0')
			found = 1;
	PQconninfoFree(opts);
	return found;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"root", required_argument, NULL, 'r'},
		{"camera", required_argument, NULL, 'c'},
		{"dbname", required_argument, NULL, 'd'},
		{"max-files", required_argument, NULL, 'n'},
		{"verify-hashes", no_argument, NULL, 1},
		{"repair", no_argument, NULL, 2},
		{"grace", required_argument, NULL, 3},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	Options		o;
	struct sigaction sa;
	PGconn	   *conn = NULL;
	PGresult   *res = NULL;
	unsigned char *hashbuf = NULL;
	int		   *cameras = NULL;
	int			ncameras = 0;
	int			rootfd = -1;
	int			status = EXIT_CLEAN;
	int			purge;
	int			c;
	int			i;
	int			j;

	memset(&o, 0, sizeof(o));
	o.max_files = DEFAULT_MAX_FILES;
	o.grace = DEFAULT_GRACE;
	o.cameras = calloc((size_t) argc, sizeof(int));
	if (o.cameras == NULL)
	{
		complain("out of memory");
		return EXIT_IO;
	}

	opterr = 0;					/* option errors are reported below, in our format */
	while ((c = getopt_long(argc, argv, ":r:c:d:n:qhV", longopts, NULL)) != -1)
	{
		long		v;

		switch (c)
		{
			case 'r':
				o.root = optarg;
				break;
			case 'c':
				if (parse_long(optarg, 1, INT_MAX, &v) != 0)
				{
					complain("invalid camera id \"%s\": a camera id is a positive whole number", optarg);
					status = EXIT_USAGE;
					goto cleanup;
				}
				o.cameras[o.ncameras++] = (int) v;
				break;
			case 'd':
				o.dbname = optarg;
				break;
			case 'n':
				if (parse_long(optarg, 1, MAX_CLAIM, &o.max_files) != 0)
				{
					complain("invalid --max-files \"%s\": a whole number from 1 to %d", optarg, MAX_CLAIM);
					status = EXIT_USAGE;
					goto cleanup;
				}
				break;
			case 1:
				o.verify_hashes = 1;
				break;
			case 2:
				o.repair = 1;
				break;
			case 3:
				if (parse_long(optarg, 0, 315360000L, &o.grace) != 0)
				{
					complain("invalid --grace \"%s\": a number of seconds from 0 to 315360000", optarg);
					status = EXIT_USAGE;
					goto cleanup;
				}
				break;
			case 'q':
				o.quiet = 1;
				break;
			case 'h':
				usage(stdout);
				goto cleanup;
			case 'V':
				printf("%s %s\n", PROGNAME, PROGVERSION);
				goto cleanup;
			case ':':
				complain("option \"%s\" needs a value (try \"%s --help\")", argv[optind - 1], PROGNAME);
				status = EXIT_USAGE;
				goto cleanup;
			default:
				if (optopt != 0)
					complain("unknown option \"-%c\" (try \"%s --help\")", optopt, PROGNAME);
				else
					complain("unknown option \"%s\" (try \"%s --help\")", argv[optind - 1], PROGNAME);
				status = EXIT_USAGE;
				goto cleanup;
		}
	}
	if (optind >= argc)
	{
		complain("no command given: purge or check (try \"%s --help\")", PROGNAME);
		status = EXIT_USAGE;
		goto cleanup;
	}
	o.command = argv[optind++];
	if (optind < argc)
	{
		complain("unexpected argument \"%s\"", argv[optind]);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (strcmp(o.command, "purge") != 0 && strcmp(o.command, "check") != 0)
	{
		complain("unknown command \"%s\": purge or check", o.command);
		status = EXIT_USAGE;
		goto cleanup;
	}
	purge = strcmp(o.command, "purge") == 0;
	if (purge && (o.verify_hashes || o.repair))
	{
		complain("--verify-hashes and --repair apply to check only");
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (o.root == NULL || *o.root == '\0')
	{
		complain("--root is required: the storage root that index paths are relative to");
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (o.dbname != NULL)
	{
		char	   *err = NULL;
		int			r = conninfo_has_password(o.dbname, &err);

		if (r != 0)
		{
			if (r < 0)
				complain("invalid --dbname: %s", err ? err : "out of memory");
			else
				complain("refusing a password in --dbname (others can read the command line); "
						 "use ~/.pgpass, PGPASSFILE or PGPASSWORD");
			PQfreemem(err);
			status = EXIT_USAGE;
			goto cleanup;
		}
	}
	rootfd = open(o.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
	{
		complain("could not open storage root \"%s\": %s", o.root, strerror(errno));
		status = (errno == ENOENT || errno == ENOTDIR) ? EXIT_USAGE : EXIT_IO;
		goto cleanup;
	}
	if (!purge && o.verify_hashes && (hashbuf = malloc(HASH_BUFSIZE)) == NULL)
	{
		complain("out of memory");
		status = EXIT_IO;
		goto cleanup;
	}

	conn = pgutil_connect(o.dbname, "UTF8", PROGNAME);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		complain("could not connect to the database: %s", conn ? PQerrorMessage(conn) : "out of memory");
		status = EXIT_DB;
		goto cleanup;
	}

	/* Who we are, and the cameras assigned to us (RLS shows a recorder its own). */
	res = PQexec(conn, "SELECT pg_catalog.pg_has_role('vms_recorder', 'MEMBER')");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		complain_result("checking membership of vms_recorder", res, conn);
		status = EXIT_DB;
		goto cleanup;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		complain("user \"%s\" is not a recording server (a member of vms_recorder)", PQuser(conn));
		status = EXIT_DB;
		goto cleanup;
	}
	PQclear(res);
	res = PQexec(conn, "SELECT c.id FROM vms.cameras c WHERE c.recorder OPERATOR(pg_catalog.=) CURRENT_USER::text ORDER BY c.id");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		complain_result("reading the cameras assigned to this recorder", res, conn);
		status = EXIT_DB;
		goto cleanup;
	}
	if (o.ncameras > 0)
	{
		for (i = 0; i < o.ncameras; i++)
		{
			int			found = 0;

			for (j = 0; j < PQntuples(res) && !found; j++)
				found = atoi(PQgetvalue(res, j, 0)) == o.cameras[i];
			if (!found)
			{
				complain("camera %d is not assigned to recorder \"%s\" (or does not exist); "
						 "a manager assigns cameras with vms.assign_recorder()", o.cameras[i], PQuser(conn));
				status = EXIT_USAGE;
				goto cleanup;
			}
		}
		cameras = o.cameras;
		ncameras = o.ncameras;
	}
	else
	{
		ncameras = PQntuples(res);
		cameras = calloc((size_t) (ncameras ? ncameras : 1), sizeof(int));
		if (cameras == NULL)
		{
			complain("out of memory");
			status = EXIT_IO;
			goto cleanup;
		}
		for (j = 0; j < ncameras; j++)
			cameras[j] = atoi(PQgetvalue(res, j, 0));
		if (ncameras == 0)
			complain("no camera is assigned to recorder \"%s\"; nothing to do", PQuser(conn));
	}
	PQclear(res);
	res = NULL;

	/* Stop between files on SIGINT or SIGTERM, confirming what was removed. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	for (i = 0; i < ncameras && !interrupted; i++)
	{
		int			r;

		r = purge ? purge_one(conn, &o, rootfd, cameras[i])
			: check_camera(conn, &o, rootfd, cameras[i], hashbuf);
		status = status > r ? status : r;
		if (r == EXIT_DB && PQstatus(conn) != CONNECTION_OK)
			break;
	}
	if (interrupted)
	{
		complain("interrupted");
		status = EXIT_INTERRUPTED;
	}

cleanup:
	PQclear(res);
	PQfinish(conn);
	if (rootfd >= 0)
		close(rootfd);
	if (cameras != o.cameras)
		free(cameras);
	free(o.cameras);
	free(hashbuf);
	return status;
}
