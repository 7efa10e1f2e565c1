/*
 * segcheck.c: the segments re-hashed against the index on a thread of their
 * own, while the export reads them.  The reader waits until a file has been
 * checked before it opens it (segcheck_wait), so nothing of a file that
 * differs from the index reaches FFmpeg; the hashing of the next file
 * overlaps the remuxing of this one, which keeps an unmasked export close to
 * the cost of a plain remux on a machine with a second core.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export.h"
#include "filehash.h"
#include "purge.h"

struct SegCheck
{
	int			rootfd;
	const Session *s;
	pthread_t	thread;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	int			checked;		/* segments 0 .. checked-1 match the index */
	int			result;			/* EXIT_OK while going, else the failure */
	int			stop;			/* the export gave up: stop early */
	char		err[512];
};

/* One segment against its index row: EXIT_OK, or an exit code with err. */
static int
check_segment(int rootfd, const Segment *g, unsigned char *buf, char *err, size_t errlen)
{
	char		norm[PATH_MAX], hex[65];
	const char *dir, *name;
	unsigned char md[32];
	int64_t		bytes = 0;
	int			dirfd, r, e;

	if (storage_normalize_path(g->path, norm, sizeof(norm)) != 0)
	{
		snprintf(err, errlen, "segment %lld (%s): the index path is not below the storage root",
				 g->id, g->path);
		return EXIT_INTEGRITY;
	}
	name = storage_split_path(norm, &dir);
	dirfd = storage_open_dir(rootfd, dir);
	r = dirfd < 0 ? -1 : sha256_file_at(dirfd, name, buf, HASH_BUFSIZE, md, &bytes);
	e = errno;
	if (dirfd >= 0)
		close(dirfd);
	if (r != 0)
	{
		if (e == ENOENT || e == ELOOP || e == ENOTDIR)
		{
			snprintf(err, errlen, "segment %lld (%s): %s", g->id, g->path,
					 e == ENOENT ? "the file is missing" : "reached through a symbolic link");
			return EXIT_INTEGRITY;
		}
		snprintf(err, errlen, "segment %lld (%s): could not read: %s", g->id, g->path, strerror(e));
		return EXIT_FAILURE_OTHER;
	}
	hex_of(md, 32, hex);
	if (bytes != g->bytes || strcmp(hex, g->sha256) != 0)
	{
		snprintf(err, errlen, "segment %lld (%s): SHA-256 differs from the index", g->id, g->path);
		return EXIT_INTEGRITY;
	}
	return EXIT_OK;
}

static void *
run(void *arg)
{
	SegCheck   *c = arg;
	unsigned char *buf = malloc(HASH_BUFSIZE);
	char		err[512];
	int			i, r = EXIT_OK;

	if (buf == NULL)
	{
		r = EXIT_FAILURE_OTHER;
		snprintf(err, sizeof(err), "out of memory");
	}
	for (i = 0; r == EXIT_OK && i < c->s->nsegs; i++)
	{
		pthread_mutex_lock(&c->lock);
		if (c->stop || export_interrupted)
		{
			pthread_mutex_unlock(&c->lock);
			r = EXIT_FAILURE_OTHER;
			snprintf(err, sizeof(err), "interrupted");
			break;
		}
		pthread_mutex_unlock(&c->lock);
		r = check_segment(c->rootfd, &c->s->segs[i], buf, err, sizeof(err));
		if (r == EXIT_OK)
		{
			pthread_mutex_lock(&c->lock);
			c->checked = i + 1;
			pthread_cond_broadcast(&c->changed);
			pthread_mutex_unlock(&c->lock);
		}
	}
	free(buf);
	pthread_mutex_lock(&c->lock);
	if (r != EXIT_OK)
	{
		c->result = r;
		snprintf(c->err, sizeof(c->err), "%s", err);
	}
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

SegCheck *
segcheck_start(int rootfd, const Session *s, char *err, size_t errlen)
{
	SegCheck   *c = calloc(1, sizeof(*c));
	sigset_t	all, old;
	int			r;

	if (c == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->rootfd = rootfd;
	c->s = s;
	c->result = EXIT_OK;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	/* Signals stay with the main thread, whose handler sets export_interrupted. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&c->thread, NULL, run, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
	{
		snprintf(err, errlen, "could not start a thread: %s", strerror(r));
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->changed);
		free(c);
		return NULL;
	}
	return c;
}

int
segcheck_wait(SegCheck *c, int index, char *err, size_t errlen)
{
	int			r;

	if (c == NULL)
		return EXIT_OK;
	pthread_mutex_lock(&c->lock);
	while (c->checked <= index && c->result == EXIT_OK)
		pthread_cond_wait(&c->changed, &c->lock);
	r = c->checked > index ? EXIT_OK : c->result;
	if (r != EXIT_OK)
		snprintf(err, errlen, "%s", c->err);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int
segcheck_finish(SegCheck **cp, char *err, size_t errlen)
{
	SegCheck   *c = *cp;
	int			r;

	if (c == NULL)
		return EXIT_OK;
	pthread_join(c->thread, NULL);
	r = c->result;
	if (r != EXIT_OK)
		snprintf(err, errlen, "%s", c->err);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->changed);
	free(c);
	*cp = NULL;
	return r;
}

void
segcheck_cancel(SegCheck **cp)
{
	char		ignored[8];

	if (*cp == NULL)
		return;
	pthread_mutex_lock(&(*cp)->lock);
	(*cp)->stop = 1;
	pthread_mutex_unlock(&(*cp)->lock);
	(void) segcheck_finish(cp, ignored, sizeof(ignored));
}
