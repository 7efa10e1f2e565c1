/*
 * remux.c: the segments into one MP4 without re-encoding (the H.264 as
 * recorded; MPEG-TS Annex B becomes MP4's length-prefixed samples in the
 * muxer), and the output file both remux.c and masked.c write: a muxer over
 * our own AVIOContext on a file created 0600 with O_EXCL below the package
 * directory (the MP4 muxer seeks back to finish the mdat, so the output is
 * hashed afterwards, not while written).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "export.h"

#define IO_BUFSIZE		(1024 * 1024)
#define WRITEBACK_STEP	(8 * 1024 * 1024)	/* start writing to disk every 8 MiB */

struct OutFile
{
	AVFormatContext *oc;
	int			fd;
	int			error;			/* errno of the first failed write */
	off_t		pos;			/* where the next write goes */
	off_t		writeback_from;	/* bytes before this are on their way to disk */
	char		name[64];
};

int
export_interrupt_cb(void *opaque)
{
	(void) opaque;
	return export_interrupted != 0;
}

static int
write_cb(void *opaque, uint8_t *buf, int size)
{
	OutFile    *o = opaque;
	size_t		done = 0;

	if (o->error)
		return AVERROR(o->error);
	while (done < (size_t) size)
	{
		ssize_t		n = write(o->fd, buf + done, (size_t) size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			o->error = errno;
			return AVERROR(o->error);
		}
		done += (size_t) n;
	}
	o->pos += size;

	/*
	 * Start the disk writes while the export goes on, so that the fsync at
	 * the end has little left to wait for.
	 */
	if (o->pos - o->writeback_from >= WRITEBACK_STEP)
	{
		(void) sync_file_range(o->fd, o->writeback_from, o->pos - o->writeback_from,
							   SYNC_FILE_RANGE_WRITE);
		o->writeback_from = o->pos;
	}
	return size;
}

static int64_t
seek_cb(void *opaque, int64_t offset, int whence)
{
	OutFile    *o = opaque;
	off_t		pos;

	if (whence == AVSEEK_SIZE)
	{
		struct stat st;

		return fstat(o->fd, &st) == 0 ? st.st_size : AVERROR(errno);
	}
	pos = lseek(o->fd, (off_t) offset, whence & ~AVSEEK_FORCE);
	if (pos < 0)
		return AVERROR(errno);
	o->pos = pos;
	return pos;
}

static void
describe(const OutFile *o, int ret, char *err, size_t errlen)
{
	snprintf(err, errlen, "could not write \"%s\": %s", o->name,
			 o->error ? strerror(o->error) : av_err2str(ret));
}

void
outfile_abort(OutFile **op)
{
	OutFile    *o = *op;

	if (o == NULL)
		return;
	if (o->oc)
	{
		if (o->oc->pb)
			av_freep(&o->oc->pb->buffer);
		avio_context_free(&o->oc->pb);
		avformat_free_context(o->oc);
	}
	if (o->fd >= 0)
		close(o->fd);
	free(o);
	*op = NULL;
}

OutFile *
outfile_open(int dirfd, const char *name, const char *format, const AVCodecParameters *par,
			 AVRational tb, char *err, size_t errlen)
{
	OutFile    *o = calloc(1, sizeof(*o));
	unsigned char *buf = NULL;
	AVStream   *st;
	int			ret;

	if (o == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (o->fd < 0)
	{
		snprintf(err, errlen, "could not create \"%s\": %s", name, strerror(errno));
		goto fail;
	}
	ret = avformat_alloc_output_context2(&o->oc, NULL, format, NULL);
	if (ret < 0 || (st = avformat_new_stream(o->oc, NULL)) == NULL ||
		avcodec_parameters_copy(st->codecpar, par) < 0 || (buf = av_malloc(IO_BUFSIZE)) == NULL)
	{
		snprintf(err, errlen, "could not set up the %s muxer: out of memory", format);
		goto fail;
	}
	st->codecpar->codec_tag = 0;
	st->time_base = tb;
	o->oc->pb = avio_alloc_context(buf, IO_BUFSIZE, 1, o, NULL, write_cb, seek_cb);
	if (o->oc->pb == NULL)
	{
		av_free(buf);
		snprintf(err, errlen, "could not set up the %s muxer: out of memory", format);
		goto fail;
	}
	o->oc->flags |= AVFMT_FLAG_CUSTOM_IO;
	o->oc->interrupt_callback.callback = export_interrupt_cb;
	ret = avformat_write_header(o->oc, NULL);
	if (ret < 0)
	{
		describe(o, ret, err, errlen);
		goto fail;
	}
	return o;
fail:
	outfile_abort(&o);
	return NULL;
}

int
outfile_write(OutFile *o, AVPacket *pkt, AVRational tb, char *err, size_t errlen)
{
	int			ret;

	pkt->stream_index = 0;
	av_packet_rescale_ts(pkt, tb, o->oc->streams[0]->time_base);
	ret = av_write_frame(o->oc, pkt);
	av_packet_unref(pkt);
	if (ret < 0 || o->error)
	{
		describe(o, ret, err, errlen);
		return -1;
	}
	return 0;
}

int
outfile_close(OutFile **op, char *err, size_t errlen)
{
	OutFile    *o = *op;
	int			ret = av_write_trailer(o->oc);

	if (ret >= 0)
		avio_flush(o->oc->pb);
	if (ret < 0 || o->error)
	{
		describe(o, ret, err, errlen);
		outfile_abort(op);
		return -1;
	}
	if (fsync(o->fd) != 0)
	{
		snprintf(err, errlen, "could not fsync \"%s\": %s", o->name, strerror(errno));
		outfile_abort(op);
		return -1;
	}
	ret = close(o->fd);
	o->fd = -1;
	if (ret != 0)
	{
		snprintf(err, errlen, "could not close \"%s\": %s", o->name, strerror(errno));
		outfile_abort(op);
		return -1;
	}
	outfile_abort(op);
	return 0;
}

/* Same codec and frame size as the first segment, or a remux would be unplayable. */
static int
same_stream(const AVCodecParameters *a, const AVCodecParameters *b)
{
	return a->codec_id == b->codec_id && a->width == b->width && a->height == b->height;
}

/*
 * The range's edges.  The first and last segments usually reach beyond the
 * range: the output starts at the last keyframe at or before `from` (the
 * packets of that GOP wait in `gop` until it is known to be the last one)
 * and ends with the last packet before `to`.  The output's timestamps start
 * at zero.
 */
typedef struct RangeCut
{
	AVPacket  **gop;			/* held packets, a keyframe first */
	int			ngop,
				maxgop;
	int			started;		/* packets go straight to the output */
	int64_t		shift;			/* subtracted from every output timestamp */
} RangeCut;

/* The wall-clock time of pkt (ms since the epoch), from its file's start. */
static int64_t
packet_wall_ms(const Session *s, SegReader *r, const AVPacket *pkt)
{
	int64_t		first_dts;
	int			cur = segreader_current(r, &first_dts);

	return s->segs[cur].start_ms +
		av_rescale_q(pkt->dts - first_dts, segreader_time_base(r), (AVRational) {1, 1000});
}

static int
cut_write(RangeCut *c, OutFile *o, AVPacket *pkt, AVRational tb, char *err, size_t errlen)
{
	if (c->shift == AV_NOPTS_VALUE)
		c->shift = pkt->dts;
	pkt->dts -= c->shift;
	pkt->pts -= c->shift;
	return outfile_write(o, pkt, tb, err, errlen);
}

static void
cut_drop_gop(RangeCut *c)
{
	while (c->ngop > 0)
		av_packet_free(&c->gop[--c->ngop]);
}

static int
cut_hold(RangeCut *c, AVPacket *pkt, char *err, size_t errlen)
{
	if (c->ngop == c->maxgop)
	{
		int			n = c->maxgop ? c->maxgop * 2 : 64;
		AVPacket  **g = realloc(c->gop, (size_t) n * sizeof(*g));

		if (g == NULL)
		{
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		c->gop = g;
		c->maxgop = n;
	}
	if ((c->gop[c->ngop] = av_packet_clone(pkt)) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->ngop++;
	return 0;
}

/* 1: pkt was consumed (held or dropped); 0: write it; -1: error. */
static int
cut_filter(RangeCut *c, OutFile *o, int64_t wall_ms, const Session *s, AVPacket *pkt,
		   AVRational tb, char *err, size_t errlen)
{
	int			i;

	if (c->started)
		return 0;
	if (wall_ms < s->from_ms)
	{
		if (pkt->flags & AV_PKT_FLAG_KEY)
			cut_drop_gop(c);
		if ((pkt->flags & AV_PKT_FLAG_KEY) || c->ngop > 0)
			return cut_hold(c, pkt, err, errlen) == 0 ? 1 : -1;
		return 1;				/* before any keyframe: undecodable */
	}
	/* The range begins: the held GOP first, unless a keyframe starts it exactly. */
	c->started = 1;
	if (!(pkt->flags & AV_PKT_FLAG_KEY))
		for (i = 0; i < c->ngop; i++)
			if (cut_write(c, o, c->gop[i], tb, err, errlen) != 0)
				return -1;
	cut_drop_gop(c);
	return 0;
}

int
remux_segments(int rootfd, const Session *s, int dirfd, const char *name, Progress *progress,
			   char *err, size_t errlen)
{
	RangeCut	cut = {NULL, 0, 0, 0, AV_NOPTS_VALUE};
	SegReader  *r = NULL;
	OutFile    *o = NULL;
	AVPacket   *pkt = av_packet_alloc();
	AVCodecParameters *first = avcodec_parameters_alloc();
	int			ret = -1, cur = -1;

	if (pkt == NULL || first == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	r = segreader_open(rootfd, s, 0, s->nsegs - 1, progress, err, errlen);
	if (r == NULL)
		goto end;
	if (avcodec_parameters_copy(first, segreader_params(r)) < 0)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	if (first->codec_id != AV_CODEC_ID_H264 && first->codec_id != AV_CODEC_ID_HEVC)
	{
		snprintf(err, errlen, "segment %lld: the recording is %s; only H.264 and HEVC go into the MP4 as recorded",
				 s->segs[0].id, avcodec_get_name(first->codec_id));
		goto end;
	}
	o = outfile_open(dirfd, name, "mp4", first, segreader_time_base(r), err, errlen);
	if (o == NULL)
		goto end;
	for (;;)
	{
		int			n = segreader_next(r, pkt, err, errlen);

		if (n == AVERROR_EOF)
			break;
		if (n < 0)
			goto end;
		if (segreader_current(r, NULL) != cur)
		{
			/* A new file: its stream must match the first one's. */
			cur = segreader_current(r, NULL);
			if (!same_stream(first, segreader_file_params(r)))
			{
				snprintf(err, errlen, "segment %lld (%s): codec or frame size differs from the first segment's;"
						 " export the ranges before and after the change separately",
						 s->segs[cur].id, s->segs[cur].path);
				av_packet_unref(pkt);
				goto end;
			}
		}
		{
			int64_t		wall_ms = packet_wall_ms(s, r, pkt);
			int			c;

			if (wall_ms >= s->to_ms && cut.started)
			{
				av_packet_unref(pkt);
				break;
			}
			c = cut_filter(&cut, o, wall_ms, s, pkt, segreader_time_base(r), err, errlen);
			if (c != 0)
			{
				av_packet_unref(pkt);
				if (c < 0)
					goto end;
				continue;
			}
		}
		if (cut_write(&cut, o, pkt, segreader_time_base(r), err, errlen) != 0)
			goto end;
	}
	if (!cut.started)
	{
		snprintf(err, errlen, "no frame of the recordings falls between %s and %s", s->from, s->to);
		goto end;
	}
	ret = outfile_close(&o, err, errlen);
end:
	cut_drop_gop(&cut);
	free(cut.gop);
	outfile_abort(&o);
	segreader_close(&r);
	av_packet_free(&pkt);
	avcodec_parameters_free(&first);
	return ret;
}
