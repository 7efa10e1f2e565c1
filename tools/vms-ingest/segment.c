/*
 * segment.c: the segment writer (see segment.h).
 *
 * The muxer writes through a custom AVIOContext whose callback writes to the
 * file and feeds SHA-256 with exactly the bytes written, so the hash is never
 * a second read.  At every keyframe the AVIO buffer is flushed first: the
 * .partial on disk then always ends at a GOP boundary, a playable prefix
 * should the process die.  MPEG-TS has no trailer worth waiting for.
 */
#define _GNU_SOURCE				/* renameat2, RENAME_NOREPLACE */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <openssl/evp.h>

#include "purge.h"
#include "segment.h"

/*
 * Writes go to the kernel a buffer at a time, not a packet at a time: a killed
 * worker's .partial is removed on restart anyway, so flushing every packet
 * (libavformat's default for output that cannot seek) would only cost one
 * write() per video frame.
 */
#define IO_BUFSIZE		(256 * 1024)
#define DEFAULT_FRAME_MS 40		/* when neither the packets nor the stream say */

/* One .partial being written. */
typedef struct SegmentFile
{
	AVFormatContext *oc;
	EVP_MD_CTX *md;
	int			fd;
	int			dayfd;
	int64_t		bytes;
	int			error;			/* errno of the first failed write */
	int64_t		start_ms;
	char		name[21];		/* start, YYYYMMDDTHHMMSS.mmmZ */
	char		day[11];
	char		partial[40];
} SegmentFile;

struct Segmenter
{
	int			rootfd;
	int			camera;
	int			segment_seconds;
	AVCodecParameters *par;
	AVRational	tb;
	AVRational	frame_rate;
	int64_t		wall_base_ms;
	int64_t		pts_base;		/* pts of the first packet: wall_base_ms */
	int64_t		ts_offset;		/* dts of the first packet: output timestamps start at 0 */
	SegmentFile *cur;
	int64_t		seg_first_pts;
	int64_t		max_pts;		/* of the open segment */
	int64_t		max_pts_dur;	/* that packet's duration, 0 unknown */
	int64_t		last_dts;
	int64_t		last_delta;		/* last dts step */
};

/* gmtime of a time in ms, years 1970-9999 only. */
static int
utc_of(int64_t ms, struct tm *tm)
{
	time_t		t;

	if (ms < 0 || ms / 1000 > 253402300799LL)	/* 9999-12-31T23:59:59Z */
		return -1;
	t = (time_t) (ms / 1000);
	return gmtime_r(&t, tm) == NULL ? -1 : 0;
}

int
segment_time_name(int64_t ms, char name[21], char day[11])
{
	struct tm	tm;
	char		buf[96];

	if (utc_of(ms, &tm) != 0)
		return -1;
	snprintf(buf, sizeof(buf), "%04d%02d%02dT%02d%02d%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
	if (strlen(buf) != 20)
		return -1;
	memcpy(name, buf, 21);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	if (strlen(buf) != 10)
		return -1;
	memcpy(day, buf, 11);
	return 0;
}

int
segment_iso_time(int64_t ms, char out[32])
{
	struct tm	tm;
	char		buf[96];

	if (utc_of(ms, &tm) != 0)
		return -1;
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
	if (strlen(buf) != 24)
		return -1;
	memcpy(out, buf, 25);
	return 0;
}

int
segment_codec_storable(enum AVCodecID id)
{
	return id == AV_CODEC_ID_H264 || id == AV_CODEC_ID_HEVC || id == AV_CODEC_ID_MPEG4 ||
		id == AV_CODEC_ID_MPEG2VIDEO || id == AV_CODEC_ID_MPEG1VIDEO;
}

/* The muxer's output: to the file and into the hash, nothing else. */
static int
write_cb(void *opaque, uint8_t *buf, int size)
{
	SegmentFile *f = opaque;
	size_t		done = 0;

	if (f->error)
		return AVERROR(f->error);
	while (done < (size_t) size)
	{
		ssize_t		n = write(f->fd, buf + done, (size_t) size - done);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			f->error = errno;
			return AVERROR(f->error);
		}
		done += (size_t) n;
	}
	if (EVP_DigestUpdate(f->md, buf, (size_t) size) != 1)
	{
		f->error = EIO;
		return AVERROR(EIO);
	}
	f->bytes += size;
	return size;
}

/* Closes the file's handles; the file stays on disk as it is. */
static void
file_free(SegmentFile **fp)
{
	SegmentFile *f = *fp;

	if (f == NULL)
		return;
	if (f->oc != NULL)
	{
		if (f->oc->pb != NULL)
			av_freep(&f->oc->pb->buffer);
		avio_context_free(&f->oc->pb);
		avformat_free_context(f->oc);
	}
	EVP_MD_CTX_free(f->md);
	if (f->fd >= 0)
		close(f->fd);
	if (f->dayfd >= 0)
		close(f->dayfd);
	free(f);
	*fp = NULL;
}

/* Makes dir below parentfd (0750) and opens it, never through a symbolic link; its creation is made durable. */
static int
open_subdir(int parentfd, const char *dir)
{
	int			fd;

	if (mkdirat(parentfd, dir, 0750) == 0)
	{
		if (fsync(parentfd) != 0)
			return -1;
	}
	else if (errno != EEXIST)
		return -1;
	fd = openat(parentfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOTDIR)
		errno = ELOOP;			/* a symbolic link or a file where the directory belongs */
	return fd;
}

static SegmentFile *
file_open(Segmenter *s, int64_t start_ms, char *err, size_t errlen)
{
	SegmentFile *f;
	AVStream   *st;
	unsigned char *buf = NULL;
	char		cam[16];
	int			camfd = -1;
	int			ret;

	f = calloc(1, sizeof(*f));
	if (f == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->fd = -1;
	f->dayfd = -1;
	f->start_ms = start_ms;
	snprintf(cam, sizeof(cam), "%d", s->camera);
	if (segment_time_name(start_ms, f->name, f->day) != 0)
	{
		snprintf(err, errlen, "segment start time out of range");
		goto fail;
	}
	snprintf(f->partial, sizeof(f->partial), "%s.ts" STORAGE_PARTIAL_SUFFIX, f->name);
	if ((camfd = open_subdir(s->rootfd, cam)) < 0)
	{
		snprintf(err, errlen, "could not create or open directory \"%s\" in the storage root: %s", cam,
				 strerror(errno));
		goto fail;
	}
	if ((f->dayfd = open_subdir(camfd, f->day)) < 0)
	{
		snprintf(err, errlen, "could not create or open directory \"%s/%s\": %s", cam, f->day, strerror(errno));
		goto fail;
	}
	f->fd = openat(f->dayfd, f->partial, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (f->fd < 0)
	{
		snprintf(err, errlen, "could not create \"%s/%s/%s\": %s", cam, f->day, f->partial, strerror(errno));
		goto fail;
	}
	f->md = EVP_MD_CTX_new();
	if (f->md == NULL || EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
	{
		snprintf(err, errlen, "could not set up SHA-256");
		goto fail;
	}
	ret = avformat_alloc_output_context2(&f->oc, NULL, "mpegts", NULL);
	if (ret < 0 || (st = avformat_new_stream(f->oc, NULL)) == NULL ||
		avcodec_parameters_copy(st->codecpar, s->par) < 0 ||
		(buf = av_malloc(IO_BUFSIZE)) == NULL)
	{
		snprintf(err, errlen, "could not set up the MPEG-TS muxer: out of memory");
		goto fail;
	}
	st->codecpar->codec_tag = 0;
	st->time_base = s->tb;
	f->oc->pb = avio_alloc_context(buf, IO_BUFSIZE, 1, f, NULL, write_cb, NULL);
	if (f->oc->pb == NULL)
	{
		av_free(buf);
		snprintf(err, errlen, "could not set up the MPEG-TS muxer: out of memory");
		goto fail;
	}
	f->oc->flags |= AVFMT_FLAG_CUSTOM_IO;
	f->oc->flush_packets = 0;
	ret = avformat_write_header(f->oc, NULL);
	if (ret < 0)
	{
		char		text[128];

		av_strerror(ret, text, sizeof(text));
		snprintf(err, errlen, "could not write \"%s/%s/%s\": %s", cam, f->day, f->partial,
				 f->error ? strerror(f->error) : text);
		goto fail;
	}
	close(camfd);
	return f;

fail:
	if (camfd >= 0)
		close(camfd);
	file_free(&f);
	return NULL;
}

/* Trailer, flush, hash, fsync, rename, fsync the directory; fills info.  Always frees the file. */
static int
file_close(Segmenter *s, SegmentFile **fp, int64_t end_ms, SegmentInfo *info, char *err, size_t errlen)
{
	SegmentFile *f = *fp;
	char		final[64];
	unsigned int mdlen = 0;
	int			ret = -1;

	if (end_ms <= f->start_ms)
		end_ms = f->start_ms + 1;
	if (end_ms - f->start_ms > MAX_SEGMENT_MS)
		end_ms = f->start_ms + MAX_SEGMENT_MS;
	snprintf(final, sizeof(final), "%s_%lld.ts", f->name, (long long) (end_ms - f->start_ms));
	av_write_trailer(f->oc);
	avio_flush(f->oc->pb);
	if (f->error)
	{
		snprintf(err, errlen, "could not write \"%d/%s/%s\": %s", s->camera, f->day, f->partial, strerror(f->error));
		goto end;
	}
	if (EVP_DigestFinal_ex(f->md, info->sha256, &mdlen) != 1 || mdlen != 32)
	{
		snprintf(err, errlen, "could not compute SHA-256");
		goto end;
	}
	if (fsync(f->fd) != 0)
	{
		snprintf(err, errlen, "could not fsync \"%d/%s/%s\": %s", s->camera, f->day, f->partial, strerror(errno));
		goto end;
	}
	if (close(f->fd) != 0)
	{
		f->fd = -1;
		snprintf(err, errlen, "could not close \"%d/%s/%s\": %s", s->camera, f->day, f->partial, strerror(errno));
		goto end;
	}
	f->fd = -1;
	/* Never over a file already there: that one may be registered. */
	if (renameat2(f->dayfd, f->partial, f->dayfd, final, RENAME_NOREPLACE) != 0)
	{
		snprintf(err, errlen, "could not rename \"%d/%s/%s\" to \"%s\": %s", s->camera, f->day, f->partial, final,
				 strerror(errno));
		goto end;
	}
	if (fsync(f->dayfd) != 0)
	{
		snprintf(err, errlen, "could not fsync directory \"%d/%s\": %s", s->camera, f->day, strerror(errno));
		goto end;
	}
	snprintf(info->path, sizeof(info->path), "%d/%s/%s", s->camera, f->day, final);
	info->start_ms = f->start_ms;
	info->end_ms = end_ms;
	info->bytes = f->bytes;
	snprintf(info->codec, sizeof(info->codec), "%s", avcodec_get_name(s->par->codec_id));
	info->width = s->par->width > 0 && s->par->width <= 16384 ? s->par->width : 0;
	info->height = s->par->height > 0 && s->par->height <= 16384 ? s->par->height : 0;
	ret = 0;

end:
	file_free(fp);
	return ret;
}

static int64_t
to_ms(const Segmenter *s, int64_t pts)
{
	return s->wall_base_ms + av_rescale_q_rnd(pts - s->pts_base, s->tb, (AVRational) {1, 1000},
											  AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
}

Segmenter *
segmenter_new(int rootfd, int camera, int segment_seconds, const AVCodecParameters *par, AVRational time_base,
			  AVRational frame_rate, int64_t wall_base_ms, char *err, size_t errlen)
{
	Segmenter  *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->par = avcodec_parameters_alloc()) == NULL || avcodec_parameters_copy(s->par, par) < 0)
	{
		snprintf(err, errlen, "out of memory");
		segmenter_free(&s);
		return NULL;
	}
	s->rootfd = rootfd;
	s->camera = camera;
	s->segment_seconds = segment_seconds;
	s->tb = time_base;
	s->frame_rate = frame_rate;
	s->wall_base_ms = wall_base_ms;
	s->pts_base = AV_NOPTS_VALUE;
	s->last_dts = AV_NOPTS_VALUE;
	return s;
}

int
segmenter_write(Segmenter *s, AVPacket *pkt, SegmentInfo *closed, int *did_close, char *err, size_t errlen)
{
	AVStream   *st;
	int64_t		start_ms;
	int			key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
	int			ret = -1;

	*did_close = 0;
	if (s->cur == NULL && !key)
	{
		/* A segment starts at a keyframe (the source guarantees one first). */
		av_packet_unref(pkt);
		return 0;
	}
	if (s->pts_base == AV_NOPTS_VALUE)
	{
		s->pts_base = pkt->pts;
		s->ts_offset = pkt->dts;
	}
	start_ms = to_ms(s, pkt->pts);
	if (s->cur != NULL && key &&
		av_compare_ts(pkt->pts - s->seg_first_pts, s->tb, s->segment_seconds, (AVRational) {1, 1}) >= 0)
	{
		/* The cut: this keyframe's time ends one segment and starts the next. */
		if (file_close(s, &s->cur, start_ms, closed, err, errlen) != 0)
			goto end;
		*did_close = 1;
		start_ms = closed->end_ms;
	}
	if (s->cur == NULL)
	{
		if ((s->cur = file_open(s, start_ms, err, errlen)) == NULL)
			goto end;
		s->seg_first_pts = pkt->pts;
		s->max_pts = pkt->pts;
		s->max_pts_dur = pkt->duration;
	}
	else if (key)
	{
		/* Everything before this keyframe reaches the file: a playable prefix. */
		avio_flush(s->cur->oc->pb);
	}
	if (pkt->pts >= s->max_pts)
	{
		s->max_pts = pkt->pts;
		s->max_pts_dur = pkt->duration;
	}
	if (s->last_dts != AV_NOPTS_VALUE)
		s->last_delta = pkt->dts - s->last_dts;
	s->last_dts = pkt->dts;

	st = s->cur->oc->streams[0];
	pkt->stream_index = 0;
	pkt->pos = -1;
	pkt->pts -= s->ts_offset;
	pkt->dts -= s->ts_offset;
	av_packet_rescale_ts(pkt, s->tb, st->time_base);
	ret = av_write_frame(s->cur->oc, pkt);
	if (ret < 0 || s->cur->error)
	{
		char		text[128];

		av_strerror(ret, text, sizeof(text));
		snprintf(err, errlen, "could not write \"%d/%s/%s\": %s", s->camera, s->cur->day, s->cur->partial,
				 s->cur->error ? strerror(s->cur->error) : text);
		ret = -1;
		goto end;
	}
	ret = 0;

end:
	av_packet_unref(pkt);
	return ret;
}

int
segmenter_finish(Segmenter *s, SegmentInfo *closed, char *err, size_t errlen)
{
	int64_t		dur = s->max_pts_dur;

	if (s->cur == NULL)
		return 0;
	/* One frame past the last pts: from the packet, else the frame rate, else the last step. */
	if (dur <= 0 && s->frame_rate.num > 0)
		dur = av_rescale_q(1, av_inv_q(s->frame_rate), s->tb);
	if (dur <= 0)
		dur = s->last_delta;
	if (dur <= 0)
		dur = av_rescale_q(DEFAULT_FRAME_MS, (AVRational) {1, 1000}, s->tb);
	return file_close(s, &s->cur, to_ms(s, s->max_pts + dur), closed, err, errlen) == 0 ? 1 : -1;
}

int64_t
segmenter_open_bytes(const Segmenter *s)
{
	return s->cur ? s->cur->bytes : 0;
}

void
segmenter_free(Segmenter **sp)
{
	Segmenter  *s = *sp;

	if (s == NULL)
		return;
	file_free(&s->cur);
	avcodec_parameters_free(&s->par);
	free(s);
	*sp = NULL;
}
