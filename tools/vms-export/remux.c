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

int
remux_segments(int rootfd, const Session *s, int dirfd, const char *name, Progress *progress,
			   char *err, size_t errlen)
{

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
	r = segreader_open(rootfd, s, 0, s->nsegs - 1, 1, progress, err, errlen);
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
		if (outfile_write(o, pkt, segreader_time_base(r), err, errlen) != 0)
			goto end;
	}
	ret = outfile_close(&o, err, errlen);
end:
	outfile_abort(&o);
	segreader_close(&r);
	av_packet_free(&pkt);
	avcodec_parameters_free(&first);
	return ret;
}
