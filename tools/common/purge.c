/*
 * purge.c: removing the recording files retention released (see purge.h).
 *
 * The database never deletes a recording file: vms.apply_retention() releases
 * it to the recorder that wrote it, which claims it (vms.purge_claim), unlinks
 * it, fsyncs its directory and only then confirms it (vms.purge_confirm).  A
 * file already gone counts as removed, so a run that died half way is simply
 * repeated.  Below the root no symbolic link is followed, and an index path
 * that is absolute or has a ".." component is refused.
 */
#define _DEFAULT_SOURCE			/* openat, fstatat, unlinkat */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "lists.h"
#include "pgutil.h"
#include "purge.h"

/* One camera: what is in flight and what was done. */
typedef struct Purge
{
	int			camera;
	DirCache	dc;
	IdList		failed;			/* not removable: skipped in later rounds (sorted) */
	IdList		failed_now;		/* failed in this round */
	IdList		pending;		/* unlinked in dc's directory, not yet fsynced */
	long long	pending_bytes;
	IdList		confirm;		/* removed durably in this round */
	long long	confirm_bytes;
	StrList		dirs;			/* directories files were removed from */
	long long	files;
	long long	bytes;
	long long	errors;
	int			status;
	int			oom;
	PurgeReport report;
	void	   *arg;
} Purge;

/* One message to the caller, line ends flattened by the caller. */
static void
say(Purge *p, const char *fmt,...)
{
	char		line[4096];
	va_list		ap;

	if (p->report == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->report(p->arg, line);
}

/* A failed libpq call: the server's message with its SQLSTATE. */
static void
say_result(Purge *p, const char *what, const PGresult *res, const PGconn *conn)
{
	char		line[2048];

	pgutil_describe_failure(line, sizeof(line), what, res, conn);
	say(p, "%s", line);
}

/* A PostgreSQL array literal of bigints. */
static void
buf_id_array(Buf *b, const IdList *l)
{
	size_t		i;
	char		num[32];

	buf_puts(b, "{");
	for (i = 0; i < l->n; i++)
	{
		snprintf(num, sizeof(num), "%s%lld", i ? "," : "", l->v[i]);
		buf_puts(b, num);
	}
	buf_puts(b, "}");
}

int
storage_normalize_path(const char *in, char *out, size_t outsize)
{
	const char *p = in;
	const char *last = strrchr(in, '/');
	size_t		len = 0;

	last = last ? last + 1 : in;
	if (*in == '/' || *last == '\0' || strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
		return -1;
	while (*p)
	{
		const char *e = strchr(p, '/');
		size_t		n = e ? (size_t) (e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (n > 0 && !(n == 1 && p[0] == '.'))
		{
			if (n > NAME_MAX || len + n + 2 > outsize)
				return -1;
			if (len > 0)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	out[len] = '\0';
	return 0;
}

const char *
storage_split_path(char *path, const char **dir)
{
	char	   *slash = strrchr(path, '/');

	if (slash == NULL)
	{
		*dir = "";
		return path;
	}
	*slash = '\0';
	*dir = path;
	return slash + 1;
}

/*
 * -1 and errno on failure: ELOOP when a component is a symbolic link,
 * ENOTDIR when it is something else than a directory.
 */
int
storage_is_partial(const char *name)
{
	size_t		n = strlen(name);
	size_t		s = strlen(STORAGE_PARTIAL_SUFFIX);

	return n > s && strcmp(name + n - s, STORAGE_PARTIAL_SUFFIX) == 0;
}

int
storage_open_dir(int rootfd, const char *dir)
{
	char		name[NAME_MAX + 1];
	const char *p = dir;
	int			fd;

	fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd >= 0 && *p)
	{
		const char *e = strchr(p, '/');
		size_t		n = e ? (size_t) (e - p) : strlen(p);
		int			next;
		int			save;

		if (n > NAME_MAX)
		{
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		save = errno;
		if (next < 0 && save == ENOTDIR)
		{
			struct stat st;

			/* Linux says ENOTDIR for a symbolic link here: tell them apart. */
			if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				save = ELOOP;
		}
		close(fd);
		errno = save;
		fd = next;
		p += n;
		if (*p == '/')
			p++;
	}
	return fd;
}

/* Makes the removals in the cached directory durable.  0, or -1 and errno. */
int
dircache_sync(DirCache *dc)
{
	if (dc->fd >= 0 && dc->dirty)
	{
		if (fsync(dc->fd) != 0)
			return -1;
		dc->dirty = 0;
	}
	return 0;
}

void
dircache_init(DirCache *dc, int rootfd)
{
	dc->rootfd = rootfd;
	dc->fd = -1;
	dc->dirty = 0;
	dc->dir[0] = '\0';
}

void
dircache_close(DirCache *dc)
{
	if (dc->fd >= 0)
		close(dc->fd);
	dc->fd = -1;
	dc->dirty = 0;
	dc->dir[0] = '\0';
}

/* The directory dir, opened or reused.  The caller syncs before switching. */
int
dircache_get(DirCache *dc, const char *dir)
{
	if (dc->fd >= 0 && strcmp(dc->dir, dir) == 0)
		return dc->fd;
	dircache_close(dc);
	if (strlen(dir) >= sizeof(dc->dir))
	{
		errno = ENAMETOOLONG;
		return -1;
	}
	dc->fd = storage_open_dir(dc->rootfd, dir);
	if (dc->fd >= 0)
		strcpy(dc->dir, dir);
	return dc->fd;
}

static void
purge_worsen(Purge *p, int status)
{
	if (status > p->status)
		p->status = status;
}

/*
 * Removes the directories files were removed from once they are empty, and
 * their parents, but never a top-level directory (<root>/<camera_id>) nor
 * today's day directory (the recorder may be about to write there).
 */
static void
remove_empty_dirs(Purge *p, int rootfd)
{
	char		path[PATH_MAX];
	char		today[16] = "";
	time_t		now = time(NULL);
	struct tm	tm;
	size_t		i;

	if (p->dirs.n == 0)
		return;
	if (gmtime_r(&now, &tm) != NULL)
		strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	strlist_sort(&p->dirs, 1);
	for (i = 0; i < p->dirs.n; i++)
	{
		snprintf(path, sizeof(path), "%s", p->dirs.v[i]);
		while (strchr(path, '/') != NULL)
		{
			const char *parent;
			const char *name = storage_split_path(path, &parent);
			int			pfd = storage_open_dir(rootfd, parent);
			int			r;

			if (pfd < 0)
				break;
			if (strcmp(name, today) == 0)
			{
				close(pfd);
				break;
			}
			r = unlinkat(pfd, name, AT_REMOVEDIR);
			if (r != 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
			{
				say(p, "could not remove empty directory \"%s/%s\": %s", parent, name, strerror(errno));
				purge_worsen(p, PURGE_IO);
			}
			if (r == 0 && fsync(pfd) != 0)
			{
				say(p, "could not fsync directory \"%s\": %s", parent, strerror(errno));
				purge_worsen(p, PURGE_IO);
				r = -1;
			}
			close(pfd);
			if (r != 0)
				break;
			/* path now holds the parent: try it next. */
		}
	}
}

static void
purge_fail(Purge *p, long long id, int status)
{
	p->errors++;
	purge_worsen(p, status);
	p->oom |= idlist_add(&p->failed_now, id) != 0;
}

/* fsyncs the current directory: its pending removals become confirmable. */
static void
purge_sync(Purge *p)
{
	size_t		k;

	if (dircache_sync(&p->dc) != 0)
	{
		say(p, "camera %d: could not fsync directory \"%s\": %s; %zu removals left unconfirmed",
			p->camera, p->dc.dir, strerror(errno), p->pending.n);
		for (k = 0; k < p->pending.n; k++)
			purge_fail(p, p->pending.v[k], PURGE_IO);
	}
	else
	{
		for (k = 0; k < p->pending.n && !p->oom; k++)
			p->oom |= idlist_add(&p->confirm, p->pending.v[k]) != 0;
		p->confirm_bytes += p->pending_bytes;
	}
	p->pending.n = 0;
	p->pending_bytes = 0;
}

/* Removes one claimed file (or finds it gone); fsync and confirmation follow. */
static void
purge_file(Purge *p, long long id, const char *rawpath, long long bytes)
{
	char		path[PATH_MAX];
	const char *dir;
	const char *name;
	int			fd;

	if (storage_normalize_path(rawpath, path, sizeof(path)) != 0)
	{
		say(p, "camera %d: refusing to remove segment %lld: its path is absolute or has a \"..\" component",
			p->camera, id);
		purge_fail(p, id, PURGE_REFUSED);
		return;
	}
	name = storage_split_path(path, &dir);
	if (p->dc.fd < 0 || strcmp(p->dc.dir, dir) != 0)
		purge_sync(p);
	fd = dircache_get(&p->dc, dir);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
	{
		/* No directory, no file: removed by an earlier run. */
		p->oom |= idlist_add(&p->confirm, id) != 0;
		p->confirm_bytes += bytes;
		return;
	}
	if (fd < 0 && errno == ELOOP)
	{
		say(p, "camera %d: refusing to remove segment %lld: a directory on its path is a symbolic link "
			"(not followed)", p->camera, id);
		purge_fail(p, id, PURGE_REFUSED);
		return;
	}
	if (fd < 0)
	{
		say(p, "camera %d: could not open directory \"%s\" of segment %lld: %s", p->camera, dir, id,
			strerror(errno));
		purge_fail(p, id, PURGE_IO);
		return;
	}
	if (unlinkat(fd, name, 0) != 0 && errno != ENOENT)
	{
		say(p, "camera %d: could not remove \"%s/%s\" (segment %lld): %s", p->camera, dir, name, id,
			strerror(errno));
		purge_fail(p, id, PURGE_IO);
		return;
	}
	/* Removed now or by an earlier run (ENOENT): fsynced either way. */
	p->dc.dirty = 1;
	p->oom |= idlist_add(&p->pending, id) != 0;
	p->pending_bytes += bytes;
	if (*dir != '\0' && (p->dirs.n == 0 || strcmp(p->dirs.v[p->dirs.n - 1], dir) != 0) &&
		!strlist_contains(&p->dirs, dir))
		p->oom |= strlist_add(&p->dirs, strdup(dir)) != 0;
}

/*
 * A file that cannot be removed stays claimed: later rounds skip it (and
 * claim that many more).
 */
int
purge_camera(PGconn *conn, int rootfd, int camera, long max_files,
			 const volatile sig_atomic_t *interrupted,
			 PurgeReport report, void *arg, PurgeResult *result)
{
	Purge		p;
	PGresult   *res = NULL;
	Buf			ids = {NULL, 0, 0, 0};
	char		cam[16];
	char		limit[32];
	char		what[64];
	const char *params[2];
	size_t		k;
	int			i;

	memset(&p, 0, sizeof(p));
	p.camera = camera;
	p.report = report;
	p.arg = arg;
	dircache_init(&p.dc, rootfd);
	snprintf(cam, sizeof(cam), "%d", camera);
	params[0] = cam;

	while (!(interrupted && *interrupted) && !p.oom)
	{
		long		want = max_files + (long) p.failed.n;
		int			fresh = 0;

		snprintf(limit, sizeof(limit), "%ld", want < PURGE_MAX_CLAIM ? want : PURGE_MAX_CLAIM);
		params[1] = limit;
		PQclear(res);
		res = PQexecParams(conn, "SELECT segment_id, path, bytes FROM vms.purge_claim($1::integer, $2::integer)",
						   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			snprintf(what, sizeof(what), "vms.purge_claim(%d)", camera);
			say_result(&p, what, res, conn);
			purge_worsen(&p, PURGE_DB);
			break;
		}
		p.confirm.n = 0;
		p.confirm_bytes = 0;
		p.failed_now.n = 0;
		for (i = 0; i < PQntuples(res) && !(interrupted && *interrupted) && !p.oom; i++)
		{
			long long	id = strtoll(PQgetvalue(res, i, 0), NULL, 10);

			if (idlist_contains_sorted(&p.failed, id))
				continue;
			fresh++;
			purge_file(&p, id, PQgetvalue(res, i, 1), strtoll(PQgetvalue(res, i, 2), NULL, 10));
		}
		purge_sync(&p);
		dircache_close(&p.dc);
		for (k = 0; k < p.failed_now.n && !p.oom; k++)
			p.oom |= idlist_add(&p.failed, p.failed_now.v[k]) != 0;
		if (p.failed.n > 0)
			idlist_sort(&p.failed);

		if (p.confirm.n > 0 && !p.oom)
		{
			ids.len = 0;
			buf_id_array(&ids, &p.confirm);
			if (ids.oom)
			{
				p.oom = 1;
				break;
			}
			params[1] = ids.data;
			PQclear(res);
			res = PQexecParams(conn, "SELECT vms.purge_confirm($1::integer, $2::bigint[])",
							   2, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
			{
				snprintf(what, sizeof(what), "vms.purge_confirm(%d)", camera);
				say_result(&p, what, res, conn);
				purge_worsen(&p, PURGE_DB);
				break;
			}
			if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) == 0)
			{
				/* Claimed but not confirmable: claiming again would loop. */
				say(&p, "camera %d: vms.purge_confirm() confirmed none of the %zu files removed; stopping",
					camera, p.confirm.n);
				purge_worsen(&p, PURGE_DB);
				break;
			}
			p.files += (long long) p.confirm.n;
			p.bytes += p.confirm_bytes;
		}
		if (fresh == 0 || p.failed.n >= PURGE_MAX_CLAIM)
			break;
	}
	if (p.oom)
	{
		say(&p, "out of memory");
		purge_worsen(&p, PURGE_IO);
	}
	if (interrupted && *interrupted)
		purge_worsen(&p, PURGE_INTERRUPTED);
	dircache_close(&p.dc);
	remove_empty_dirs(&p, rootfd);
	if (result != NULL)
	{
		result->files = p.files;
		result->bytes = p.bytes;
		result->errors = p.errors;
	}
	PQclear(res);
	idlist_free(&p.failed);
	idlist_free(&p.failed_now);
	idlist_free(&p.pending);
	idlist_free(&p.confirm);
	free(ids.data);
	strlist_free(&p.dirs);
	return p.status;
}
