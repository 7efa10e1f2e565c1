/*
 * recovery.c: startup recovery of the storage (see recovery.h).
 *
 * Nothing found on disk is trusted: a name must be exactly the layout's
 * (a real UTC time, a duration of 1 ms to a day) and sit in the directory of
 * its day; symbolic links are not followed; anything else is left alone and
 * mentioned.  The hash is read from the file itself, the codec and picture
 * size probed with libavformat.
 */
#define _DEFAULT_SOURCE			/* timegm, fdopendir, openat */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "config.h"
#include "filehash.h"
#include "log.h"
#include "numparse.h"
#include "purge.h"
#include "recovery.h"

#define HASH_BUFSIZE	(256 * 1024)

typedef struct Found
{
	char		day[11];
	char		name[48];
	int64_t		start_ms;
	int64_t		duration_ms;
	int64_t		bytes;
} Found;

typedef struct FoundList
{
	Found	   *v;
	size_t		n;
	size_t		cap;
} FoundList;

int
recovery_resume_point(PGconn *conn, int camera, int64_t *resume_ms, char *err, size_t errlen, char sqlstate[6])
{
	const char *params[1];
	char		cam[16];
	PGresult   *res;
	int			ret = -1;

	snprintf(cam, sizeof(cam), "%d", camera);
	params[0] = cam;
	/* As a number: no dependence on DateStyle or TimeZone. */
	res = PQexecParams(conn, "SELECT (EXTRACT(epoch FROM vms.ingest_resume_point($1::integer)) "
					   "OPERATOR(pg_catalog.*) 1000)::bigint", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		db_error(res, conn, err, errlen, sqlstate);
		goto end;
	}
	*resume_ms = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	ret = 0;

end:
	PQclear(res);
	return ret;
}

int
recovery_parse_name(const char *name, int64_t *start_ms, int64_t *duration_ms)
{
	struct tm	tm;
	char		canon[21];
	char		day[11];
	const char *p;
	int64_t		dur = 0;
	time_t		t;
	int			ms;
	int			nd = 0;

	/* YYYYMMDDTHHMMSS.mmmZ_ */
	if (strlen(name) < 25 || name[8] != 'T' || name[15] != '.' || name[19] != 'Z' || name[20] != '_')
		return -1;
	memset(&tm, 0, sizeof(tm));
	if ((tm.tm_year = parse_fixed_digits(name, 4)) < 1970 || (tm.tm_mon = parse_fixed_digits(name + 4, 2)) < 1 ||
		(tm.tm_mday = parse_fixed_digits(name + 6, 2)) < 1 || (tm.tm_hour = parse_fixed_digits(name + 9, 2)) < 0 ||
		(tm.tm_min = parse_fixed_digits(name + 11, 2)) < 0 || (tm.tm_sec = parse_fixed_digits(name + 13, 2)) < 0 ||
		(ms = parse_fixed_digits(name + 16, 3)) < 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t == (time_t) -1)
		return -1;
	/* <ms>.ts: 1 to 8 digits, no leading zero, nothing after. */
	for (p = name + 21; *p >= '0' && *p <= '9'; p++)
	{
		if (++nd > 8 || (nd == 1 && *p == '0'))
			return -1;
		dur = dur * 10 + (*p - '0');
	}
	if (nd == 0 || strcmp(p, ".ts") != 0 || dur < 1 || dur > MAX_SEGMENT_MS)
		return -1;
	*start_ms = (int64_t) t * 1000 + ms;
	/* Only a real time round-trips (timegm normalises 31 April to 1 May). */
	if (segment_time_name(*start_ms, canon, day) != 0 || strncmp(canon, name, 20) != 0)
		return -1;
	*duration_ms = dur;
	return 0;
}

/* A day directory's name, YYYY-MM-DD, and that it is a real date. */
static int
valid_day(const char *d)
{
	char		name[21];
	char		day[11];
	struct tm	tm;
	time_t		t;

	if (strlen(d) != 10 || d[4] != '-' || d[7] != '-')
		return 0;
	memset(&tm, 0, sizeof(tm));
	if ((tm.tm_year = parse_fixed_digits(d, 4)) < 1970 || (tm.tm_mon = parse_fixed_digits(d + 5, 2)) < 1 || (tm.tm_mday = parse_fixed_digits(d + 8, 2)) < 1)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	return t != (time_t) -1 && segment_time_name((int64_t) t * 1000, name, day) == 0 && strcmp(day, d) == 0;
}

static int
found_add(FoundList *l, const Found *f)
{
	if (l->n == l->cap)
	{
		size_t		cap = l->cap ? l->cap * 2 : 64;
		Found	   *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *f;
	return 0;
}

static int
cmp_found(const void *a, const void *b)
{
	const Found *x = a;
	const Found *y = b;

	return (x->start_ms > y->start_ms) - (x->start_ms < y->start_ms);
}

/* One day directory: partials removed, closed segments from resume_ms on collected.  0 or -1 (err). */
static int
scan_day(int camfd, int camera, const char *day, int64_t resume_ms, FoundList *found, int64_t *last_end_ms,
		 char *err, size_t errlen)
{
	DIR		   *d = NULL;
	struct dirent *de;
	int			fd;
	int			removed = 0;
	int			ret = -1;

	fd = openat(camfd, day, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOTDIR || errno == ELOOP)
		{
			log_warning("recovery: %d/%s is not a directory (or a symbolic link); left alone", camera, day);
			return 0;
		}
		snprintf(err, errlen, "could not open directory \"%d/%s\": %s", camera, day, strerror(errno));
		return -1;
	}
	if ((d = fdopendir(fd)) == NULL)
	{
		snprintf(err, errlen, "could not read directory \"%d/%s\": %s", camera, day, strerror(errno));
		close(fd);
		return -1;
	}
	for (;;)
	{
		struct stat st;
		Found		f;

		errno = 0;
		if ((de = readdir(d)) == NULL)
		{
			if (errno != 0)
			{
				snprintf(err, errlen, "could not read directory \"%d/%s\": %s", camera, day, strerror(errno));
				goto end;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			if (errno == ENOENT)
				continue;
			snprintf(err, errlen, "could not stat \"%d/%s/%s\": %s", camera, day, de->d_name, strerror(errno));
			goto end;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (storage_is_partial(de->d_name))
		{
			if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT)
			{
				snprintf(err, errlen, "could not remove \"%d/%s/%s\": %s", camera, day, de->d_name, strerror(errno));
				goto end;
			}
			log_info("recovery: removed the unfinished segment %d/%s/%s (%lld bytes)", camera, day, de->d_name,
					 (long long) st.st_size);
			removed++;
			continue;
		}
		memset(&f, 0, sizeof(f));
		if (strlen(de->d_name) >= sizeof(f.name) ||
			recovery_parse_name(de->d_name, &f.start_ms, &f.duration_ms) != 0)
		{
			log_warning("recovery: ignoring %d/%s/%s: not a segment name (YYYYMMDDTHHMMSS.mmmZ_<ms>.ts)",
						camera, day, de->d_name);
			continue;
		}
		memcpy(f.name, de->d_name, strlen(de->d_name) + 1);
		memcpy(f.day, day, sizeof(f.day));	/* valid_day(): 10 characters */
		if (strncmp(de->d_name, day, 4) != 0 || strncmp(de->d_name + 4, day + 5, 2) != 0 ||
			strncmp(de->d_name + 6, day + 8, 2) != 0)
		{
			log_warning("recovery: ignoring %d/%s/%s: it is not in the directory of its day", camera, day, de->d_name);
			continue;
		}
		if (f.start_ms < resume_ms)
			continue;
		if (st.st_size <= 0)
		{
			log_warning("recovery: ignoring %d/%s/%s: empty", camera, day, de->d_name);
			continue;
		}
		/* The newest segment the database has or gets: where a restart gap begins. */
		if (f.start_ms + f.duration_ms > *last_end_ms)
			*last_end_ms = f.start_ms + f.duration_ms;
		f.bytes = (int64_t) st.st_size;
		if (found_add(found, &f) != 0)
		{
			snprintf(err, errlen, "out of memory");
			goto end;
		}
	}
	if (removed > 0 && fsync(dirfd(d)) != 0)
	{
		snprintf(err, errlen, "could not fsync directory \"%d/%s\": %s", camera, day, strerror(errno));
		goto end;
	}
	ret = 0;

end:
	closedir(d);
	return ret;
}

/* Codec and picture size of a segment file, if libavformat can tell; info keeps "" and 0 otherwise. */
static void
probe(const char *path, SegmentInfo *info)
{
	AVFormatContext *ic = NULL;
	AVDictionary *opts = NULL;
	unsigned int i;

	if (av_dict_set(&opts, "protocol_whitelist", "file", 0) < 0)
		goto end;
	if (avformat_open_input(&ic, path, av_find_input_format("mpegts"), &opts) < 0)
		goto end;
	if (avformat_find_stream_info(ic, NULL) < 0)
		goto end;
	for (i = 0; i < ic->nb_streams; i++)
	{
		const AVCodecParameters *par = ic->streams[i]->codecpar;

		if (par->codec_type == AVMEDIA_TYPE_VIDEO && par->codec_id != AV_CODEC_ID_NONE)
		{
			snprintf(info->codec, sizeof(info->codec), "%s", avcodec_get_name(par->codec_id));
			info->width = par->width > 0 && par->width <= 16384 ? par->width : 0;
			info->height = par->height > 0 && par->height <= 16384 ? par->height : 0;
			break;
		}
	}

end:
	av_dict_free(&opts);
	avformat_close_input(&ic);
}

int
recovery_run(int rootfd, const char *root, int camera, int64_t resume_ms, Registrar *r, int64_t *last_end_ms,
			 char *err, size_t errlen)
{
	FoundList	found = {NULL, 0, 0};
	DIR		   *d = NULL;
	struct dirent *de;
	unsigned char *buf = NULL;
	char		cam[16];
	char		resume_day[11] = "";
	char		name[21];
	size_t		i;
	int			camfd;
	int			ret = -1;

	*last_end_ms = -1;
	snprintf(cam, sizeof(cam), "%d", camera);
	if (resume_ms >= 0 && segment_time_name(resume_ms, name, resume_day) != 0)
		resume_day[0] = '\0';
	camfd = storage_open_dir(rootfd, cam);
	if (camfd < 0)
	{
		if (errno == ENOENT)
			return 0;			/* nothing recorded here yet */
		snprintf(err, errlen, "could not open directory \"%s\" in the storage root: %s", cam,
				 errno == ELOOP ? "it is a symbolic link (not followed)" : strerror(errno));
		return -1;
	}
	if ((d = fdopendir(camfd)) == NULL)
	{
		snprintf(err, errlen, "could not read directory \"%s\": %s", cam, strerror(errno));
		close(camfd);
		return -1;
	}
	for (;;)
	{
		errno = 0;
		if ((de = readdir(d)) == NULL)
		{
			if (errno != 0)
			{
				snprintf(err, errlen, "could not read directory \"%s\": %s", cam, strerror(errno));
				goto end;
			}
			break;
		}
		if (!valid_day(de->d_name))
			continue;
		/* Partials anywhere; closed files only from the resume point's day on. */
		if (scan_day(dirfd(d), camera, de->d_name, strcmp(de->d_name, resume_day) >= 0 ? resume_ms : INT64_MAX,
					 &found, last_end_ms, err, errlen) != 0)
			goto end;
	}
	if (found.n == 0)
	{
		ret = 0;
		goto end;
	}
	qsort(found.v, found.n, sizeof(Found), cmp_found);
	if ((buf = malloc(HASH_BUFSIZE)) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	for (i = 0; i < found.n; i++)
	{
		const Found *f = &found.v[i];
		SegmentInfo info;
		char		rel[64];
		char	   *path;
		size_t		len;
		int			dayfd;

		memset(&info, 0, sizeof(info));
		snprintf(rel, sizeof(rel), "%s/%s", cam, f->day);
		dayfd = storage_open_dir(rootfd, rel);
		if (dayfd < 0 || sha256_file_at(dayfd, f->name, buf, HASH_BUFSIZE, info.sha256, &info.bytes) != 0)
		{
			snprintf(err, errlen, "could not read \"%s/%s\": %s", rel, f->name, strerror(errno));
			if (dayfd >= 0)
				close(dayfd);
			goto end;
		}
		close(dayfd);
		snprintf(info.path, sizeof(info.path), "%s/%s", rel, f->name);
		info.start_ms = f->start_ms;
		info.end_ms = f->start_ms + f->duration_ms;
		len = strlen(root) + strlen(info.path) + 2;
		if ((path = malloc(len)) == NULL)
		{
			snprintf(err, errlen, "out of memory");
			goto end;
		}
		snprintf(path, len, "%s/%s", root, info.path);
		probe(path, &info);
		free(path);
		if (registrar_add_segment(r, &info) != 0)
		{
			snprintf(err, errlen, "out of memory");
			goto end;
		}
		log_info("recovery: registering %s (%lld bytes)", info.path, (long long) info.bytes);
	}
	ret = 0;

end:
	if (d != NULL)
		closedir(d);
	free(found.v);
	free(buf);
	return ret;
}
