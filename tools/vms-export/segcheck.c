/*
 * segcheck.c: the segments re-hashed against the index on a thread of their
 * own, while the export reads them.  The thread opens each file once, hashes
 * it, rewinds it and hands that same open file to the reader
 * (segcheck_take): what FFmpeg reads is the file that was checked, even if
 * the path is replaced meanwhile, and nothing of a file that differs from the
 * index reaches FFmpeg.  The thread works at most LOOKAHEAD files ahead of
 * the reader (open files, page cache); hashing the next file overlaps the
 * remuxing of this one, which keeps an unmasked export close to the cost of
 * a plain remux on a machine with a second core.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "purge.h"

#define LOOKAHEAD	4			/* files checked ahead of the reader */
#define POLL_MS		200			/* how often a waiting reader looks for an interrupt */

struct SegCheck
{
	int			rootfd;
	const Session *s;
	pthread_t	thread;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	int		   *fds;			/* checked, open, rewound; -1 once taken */
	int			checked;		/* segments 0 .. checked-1 match the index */
	int			taken;			/* the reader is past segments 0 .. taken-1 */
	int			result;			/* EXIT_OK while going, else the failure */
	int			stop;			/* the export gave up: stop early */
	char		err[512];
};

/* Opens and checks one segment: EXIT_OK and *fdp, or an exit code with err. */
static int
check_segment(int rootfd, const Segment *g, unsigned char *buf, int *fdp, char *err, size_t errlen)
{
	char		norm[PATH_MAX], hex[65];
	const char *dir, *name;
	unsigned char md[32];
	struct stat st;
	int64_t		bytes = 0;
	int			dirfd, fd = -1, r = -1, e;

	*fdp = -1;
	if (storage_normalize_path(g->path, norm, sizeof(norm)) != 0)
	{
		snprintf(err, errlen, "segment %lld (%s): the index path is not below the storage root",
				 g->id, g->path);
		return EXIT_INTEGRITY;
	}
	name = storage_split_path(norm, &dir);
	dirfd = storage_open_dir(rootfd, dir);
	if (dirfd >= 0)
	{
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)))
		{
			close(fd);
			fd = -1;
			errno = EINVAL;
		}
	}
	if (fd >= 0)
	{
		(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		r = sha256_fd(fd, buf, HASH_BUFSIZE, md, &bytes);
		if (r == 0 && lseek(fd, 0, SEEK_SET) != 0)
			r = -1;
	}
	e = errno;
	if (dirfd >= 0)
		close(dirfd);
	if (r != 0)
	{
		if (fd >= 0)
			close(fd);
		if (e == ENOENT || e == ELOOP || e == ENOTDIR || e == EINVAL)
		{
			snprintf(err, errlen, "segment %lld (%s): %s", g->id, g->path,
					 e == ENOENT ? "the file is missing" :
					 e == EINVAL ? "not a regular file" : "reached through a symbolic link");
			return EXIT_INTEGRITY;
		}
		snprintf(err, errlen, "segment %lld (%s): could not read: %s", g->id, g->path, strerror(e));
		return EXIT_FAILURE_OTHER;
	}
	hex_of(md, 32, hex);
	if (bytes != g->bytes || strcmp(hex, g->sha256) != 0)
	{
		close(fd);
		snprintf(err, errlen, "segment %lld (%s): SHA-256 differs from the index", g->id, g->path);
		return EXIT_INTEGRITY;
	}
	*fdp = fd;
	return EXIT_OK;
}

static void *
run(void *arg)
{
	SegCheck   *c = arg;
	unsigned char *buf = malloc(HASH_BUFSIZE);
	char		err[512];
	int			i, fd, r = EXIT_OK;

	if (buf == NULL)
	{
		r = EXIT_FAILURE_OTHER;
		snprintf(err, sizeof(err), "out of memory");
	}
	for (i = 0; r == EXIT_OK && i < c->s->nsegs; i++)
	{
		pthread_mutex_lock(&c->lock);
		while (i >= c->taken + LOOKAHEAD && !c->stop)
			pthread_cond_wait(&c->changed, &c->lock);
		if (c->stop || export_interrupted)
		{
			pthread_mutex_unlock(&c->lock);
			r = EXIT_FAILURE_OTHER;
			snprintf(err, sizeof(err), "interrupted");
			break;
		}
		pthread_mutex_unlock(&c->lock);
		r = check_segment(c->rootfd, &c->s->segs[i], buf, &fd, err, sizeof(err));
		if (r == EXIT_OK)
		{
			pthread_mutex_lock(&c->lock);
			if (i < c->taken)
				close(fd);		/* the reader went past it */
			else
				c->fds[i] = fd;
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
	int			i, r;

	if (c == NULL || (c->fds = malloc((size_t) (s->nsegs > 0 ? s->nsegs : 1) * sizeof(int))) == NULL)
	{
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < s->nsegs; i++)
		c->fds[i] = -1;
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
		free(c->fds);
		free(c);
		return NULL;
	}
	return c;
}

int
segcheck_take(SegCheck *c, int index, int *fd, char *err, size_t errlen)
{
	int			r, i;

	*fd = -1;
	pthread_mutex_lock(&c->lock);
	/* Segments before this one will not be read: let the thread go on. */
	for (i = c->taken; i < index; i++)
		if (c->fds[i] >= 0)
		{
			close(c->fds[i]);
			c->fds[i] = -1;
		}
	if (index > c->taken)
	{
		c->taken = index;
		pthread_cond_broadcast(&c->changed);
	}
	while (c->checked <= index && c->result == EXIT_OK && !export_interrupted)
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += POLL_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L)
		{
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->changed, &c->lock, &until);
	}
	if (c->checked > index)
	{
		r = EXIT_OK;
		*fd = c->fds[index];
		c->fds[index] = -1;
		c->taken = index + 1;
		pthread_cond_broadcast(&c->changed);
	}
	else
	{
		r = c->result != EXIT_OK ? c->result : EXIT_FAILURE_OTHER;
		snprintf(err, errlen, "%s", c->result != EXIT_OK ? c->err : "interrupted");
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int
segcheck_finish(SegCheck **cp, char *err, size_t errlen)
{
	SegCheck   *c = *cp;
	int			i, r;

	if (c == NULL)
		return EXIT_OK;
	/* The reader is done: the thread may check the rest without waiting for it. */
	pthread_mutex_lock(&c->lock);
	c->taken = c->s->nsegs;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	r = c->result;
	if (r != EXIT_OK)
		snprintf(err, errlen, "%s", c->err);
	for (i = 0; i < c->s->nsegs; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->changed);
	free(c->fds);
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
	pthread_cond_broadcast(&(*cp)->changed);
	pthread_mutex_unlock(&(*cp)->lock);
	(void) segcheck_finish(cp, ignored, sizeof(ignored));
}
