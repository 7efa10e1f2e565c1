/*
 * input.c: the recorded segments as one packet stream.  Each file is opened
 * below the storage root without following a symbolic link (the index path's
 * directories through storage_open_dir(), the file with O_NOFOLLOW) and read
 * through our own AVIOContext, which also counts the bytes for the progress
 * bar.  Only the first video stream is used.  Timestamps: every file
 * continues where the previous one ended (its first dts becomes the previous
 * file's last dts plus one frame), so the output has no jumps or gaps at the
 * boundaries; the recorded wall-clock times are in the manifest.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "export.h"
#include "purge.h"

#define IO_BUFSIZE		(256 * 1024)
#define DEFAULT_FRAME_MS 40
#define MAX_HELD_BYTES	(256 * 1024 * 1024)	/* one GOP before the range, at most */
#define LATER_FILE_PROBESIZE	(512 * 1024)	/* bytes: a keyframe and its SPS */
#define LATER_FILE_ANALYZE_US	100000

struct SegReader
{
	int			rootfd;
	const Session *s;
	int			cur,
				last;
	Progress   *progress;

	/* the open file */
	int			fd;
	AVFormatContext *ic;
	int			stream;
	int64_t		offset;			/* added to this file's timestamps */
	int			have_offset;
	int64_t		file_first_dts;	/* output dts of the file's first packet */
	int			size_known;		/* its codecpar has the frame size */

	AVCodecParameters *par;		/* the first file's */
	AVRational	tb;				/* output time base = the first file's stream's */
	int64_t		last_dts;		/* output, AV_NOPTS_VALUE before the first packet */
	int64_t		last_step;		/* last dts step, or the last packet's duration */
	int64_t		end_dts;		/* where the next file starts */

	/*
	 * The cut to the range: packets before it wait in `gop` (a keyframe
	 * first) until the range begins, so that the output starts with the last
	 * keyframe at or before it; `shift` moves the output to start at zero.
	 */
	int			cut;
	int			started,
				ended;
	AVPacket  **gop;
	int			ngop,
				maxgop,
				nout;			/* next held packet to hand out, once started */
	int64_t		held_bytes;
	int64_t		shift;
};

static int
read_cb(void *opaque, uint8_t *buf, int size)
{
	SegReader  *r = opaque;

	for (;;)
	{
		ssize_t		n = read(r->fd, buf, (size_t) size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return AVERROR(errno);
		if (n == 0)
			return AVERROR_EOF;
		if (r->progress)
			progress_add(r->progress, n);
		return (int) n;
	}
}

static int64_t
seek_cb(void *opaque, int64_t offset, int whence)
{
	SegReader  *r = opaque;
	off_t		pos;

	if (whence == AVSEEK_SIZE)
	{
		off_t		cur = lseek(r->fd, 0, SEEK_CUR), end = lseek(r->fd, 0, SEEK_END);

		if (cur < 0 || end < 0 || lseek(r->fd, cur, SEEK_SET) < 0)
			return AVERROR(errno);
		return end;
	}
	pos = lseek(r->fd, (off_t) offset, whence & ~AVSEEK_FORCE);
	return pos < 0 ? AVERROR(errno) : pos;
}

static void
close_file(SegReader *r)
{
	if (r->ic)
	{
		AVIOContext *pb = r->ic->pb;

		avformat_close_input(&r->ic);
		if (pb)
			av_freep(&pb->buffer);
		avio_context_free(&pb);
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static int
has_stream(const AVFormatContext *ic, enum AVCodecID codec_id)
{
	unsigned int i;

	for (i = 0; i < ic->nb_streams; i++)
		if (ic->streams[i]->codecpar->codec_id == codec_id)
			return 1;
	return 0;
}

/*
 * A later file's frame size from the parameter sets in its first packet
 * (a segment starts with a keyframe).  If the parser finds none, the size is
 * taken to be the first file's: the decoders follow in-band SPS anyway.
 */
static void
size_from_first_packet(SegReader *r, const AVPacket *pkt)
{
	AVCodecParameters *par = r->ic->streams[r->stream]->codecpar;
	AVCodecParserContext *pc = av_parser_init(par->codec_id);
	AVCodecContext *ctx = avcodec_alloc_context3(NULL);
	uint8_t    *out;
	int			outlen;

	par->width = r->par->width;
	par->height = r->par->height;
	if (pc != NULL && ctx != NULL)
	{
		pc->flags |= PARSER_FLAG_COMPLETE_FRAMES;
		av_parser_parse2(pc, ctx, &out, &outlen, pkt->data, pkt->size,
						 AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
		if (pc->width > 0 && pc->height > 0)
		{
			par->width = pc->width;
			par->height = pc->height;
		}
	}
	av_parser_close(pc);
	avcodec_free_context(&ctx);
}

static int
open_file(SegReader *r, char *err, size_t errlen)
{
	const Segment *g = &r->s->segs[r->cur];
	unsigned char *buf = NULL;
	AVIOContext *pb = NULL;
	int			ret, i;

	/* Only the very file that was checked against the index is handed to FFmpeg. */
	if (r->s->check != NULL)
	{
		if (segcheck_take(r->s->check, r->cur, &r->fd, err, errlen) != EXIT_OK)
			return -1;
	}
	else
	{
		char		norm[PATH_MAX];
		const char *dir, *name;
		int			dirfd;

		if (storage_normalize_path(g->path, norm, sizeof(norm)) != 0)
		{
			snprintf(err, errlen, "segment %lld (%s): unsafe path", g->id, g->path);
			return -1;
		}
		name = storage_split_path(norm, &dir);
		dirfd = storage_open_dir(r->rootfd, dir);
		if (dirfd < 0)
		{
			snprintf(err, errlen, "segment %lld (%s): %s", g->id, g->path, strerror(errno));
			return -1;
		}
		r->fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		close(dirfd);
		if (r->fd < 0)
		{
			snprintf(err, errlen, "segment %lld (%s): %s", g->id, g->path, strerror(errno));
			return -1;
		}
	}
	(void) posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	r->ic = avformat_alloc_context();
	buf = av_malloc(IO_BUFSIZE);
	if (r->ic == NULL || buf == NULL ||
		(pb = avio_alloc_context(buf, IO_BUFSIZE, 0, r, read_cb, NULL, seek_cb)) == NULL)
	{
		av_free(buf);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->ic->pb = pb;
	r->ic->flags |= AVFMT_FLAG_CUSTOM_IO;
	r->ic->interrupt_callback.callback = export_interrupt_cb;
	ret = avformat_open_input(&r->ic, NULL, av_find_input_format("mpegts"), NULL);
	if (ret < 0)
	{
		/* avformat_open_input frees the context, not our AVIO. */
		av_freep(&pb->buffer);
		avio_context_free(&pb);
		snprintf(err, errlen, "segment %lld (%s): %s", g->id, g->path, av_err2str(ret));
		return -1;
	}
	/*
	 * The first file is probed in full.  The later ones only need their
	 * frame size for remux.c's same-stream check, which the H.264 parser
	 * gives from the first SPS: probing them in full would decode frames of
	 * every file (about a quarter of an unmasked export's CPU time).
	 */
	if (r->par != NULL)
	{
		r->ic->probesize = LATER_FILE_PROBESIZE;
		r->ic->max_analyze_duration = LATER_FILE_ANALYZE_US;
	}
	/*
	 * Only the first file is probed in full: probing decodes frames, and
	 * doing it for every file cost about 40 % of an unmasked export.  A later
	 * file's stream is known from its PMT, and its frame size (for remux.c's
	 * same-stream check) from the SPS of its first packet.
	 */
	ret = 0;
	r->size_known = r->par == NULL || !has_stream(r->ic, r->par->codec_id);
	if (r->size_known)
		ret = avformat_find_stream_info(r->ic, NULL);
	if (ret < 0)
	{
		snprintf(err, errlen, "segment %lld (%s): %s", g->id, g->path, av_err2str(ret));
		return -1;
	}
	r->stream = -1;
	for (i = 0; i < (int) r->ic->nb_streams; i++)
	{
		if (r->stream < 0 && r->ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
			r->stream = i;
		else
			r->ic->streams[i]->discard = AVDISCARD_ALL;
	}
	if (r->stream < 0)
	{
		snprintf(err, errlen, "segment %lld (%s): no video stream", g->id, g->path);
		return -1;
	}
	if (r->par == NULL)
	{
		r->par = avcodec_parameters_alloc();
		if (r->par == NULL || avcodec_parameters_copy(r->par, r->ic->streams[r->stream]->codecpar) < 0)
		{
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		r->tb = r->ic->streams[r->stream]->time_base;
	}
	r->have_offset = 0;
	return 0;
}

SegReader *
segreader_open(int rootfd, const Session *s, int first, int last, int cut_to_range,
			   Progress *progress, char *err, size_t errlen)
{
	SegReader  *r = calloc(1, sizeof(*r));

	if (r == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->rootfd = rootfd;
	r->s = s;
	r->cur = first;
	r->last = last;
	r->progress = progress;
	r->fd = -1;
	r->last_dts = AV_NOPTS_VALUE;
	r->cut = cut_to_range;
	r->shift = AV_NOPTS_VALUE;
	if (open_file(r, err, errlen) != 0)
		segreader_close(&r);
	return r;
}

const AVCodecParameters *
segreader_params(const SegReader *r)
{
	return r->par;
}

AVRational
segreader_time_base(const SegReader *r)
{
	return r->tb;
}

const AVCodecParameters *
segreader_file_params(const SegReader *r)
{
	return r->ic ? r->ic->streams[r->stream]->codecpar : r->par;
}

int
segreader_current(const SegReader *r, int64_t *first_dts)
{
	if (first_dts)
		*first_dts = r->file_first_dts;
	return r->cur;
}

/* The next packet of the files, timestamps continuous; AVERROR_EOF at the end. */
static int
read_packet(SegReader *r, AVPacket *pkt, char *err, size_t errlen)
{
	for (;;)
	{
		AVStream   *st;
		int			ret;

		if (export_interrupted)
		{
			snprintf(err, errlen, "interrupted");
			return AVERROR_EXIT;
		}
		if (r->ic == NULL)
		{
			if (r->cur >= r->last)
				return AVERROR_EOF;
			r->cur++;
			if (open_file(r, err, errlen) != 0)
				return AVERROR(EIO);
		}
		ret = av_read_frame(r->ic, pkt);
		if (ret == AVERROR_EOF)
		{
			/* The next file starts one frame after this one's last packet. */
			int64_t		step = r->last_step > 0 ? r->last_step :
				av_rescale_q(DEFAULT_FRAME_MS, (AVRational) {1, 1000}, r->tb);

			if (r->last_dts != AV_NOPTS_VALUE)
				r->end_dts = r->last_dts + step;
			close_file(r);
			continue;
		}
		if (ret < 0)
		{
			snprintf(err, errlen, "segment %lld (%s): %s", r->s->segs[r->cur].id,
					 r->s->segs[r->cur].path, av_err2str(ret));
			return ret;
		}
		if (pkt->stream_index != r->stream)
		{
			av_packet_unref(pkt);
			continue;
		}
		st = r->ic->streams[r->stream];
		if (!r->size_known)
		{
			size_from_first_packet(r, pkt);
			r->size_known = 1;
		}
		if (pkt->dts == AV_NOPTS_VALUE)
			pkt->dts = pkt->pts;
		if (pkt->pts == AV_NOPTS_VALUE)
			pkt->pts = pkt->dts;
		if (pkt->dts == AV_NOPTS_VALUE)
		{
			av_packet_unref(pkt);	/* no time at all: cannot be placed */
			continue;
		}
		av_packet_rescale_ts(pkt, st->time_base, r->tb);
		if (!r->have_offset)
		{
			r->offset = (r->last_dts == AV_NOPTS_VALUE ? 0 : r->end_dts) - pkt->dts;
			r->have_offset = 1;
			r->file_first_dts = pkt->dts + r->offset;
		}
		pkt->dts += r->offset;
		pkt->pts += r->offset;
		if (r->last_dts != AV_NOPTS_VALUE && pkt->dts <= r->last_dts)
		{
			/* a step back inside a file: keep dts strictly increasing */
			int64_t		shift = r->last_dts + 1 - pkt->dts;

			pkt->dts += shift;
			pkt->pts += shift;
		}
		if (pkt->pts < pkt->dts)
			pkt->pts = pkt->dts;
		if (r->last_dts != AV_NOPTS_VALUE)
			r->last_step = pkt->dts - r->last_dts;
		if (pkt->duration > 0)
			r->last_step = pkt->duration;
		r->last_dts = pkt->dts;
		pkt->stream_index = 0;
		pkt->pos = -1;
		return 0;
	}
}

static void
drop_held(SegReader *r)
{
	while (r->ngop > 0)
		av_packet_free(&r->gop[--r->ngop]);
	r->nout = 0;
	r->held_bytes = 0;
}

static int
hold(SegReader *r, AVPacket *pkt, char *err, size_t errlen)
{
	if (r->held_bytes + pkt->size > MAX_HELD_BYTES)
	{
		snprintf(err, errlen, "more than %d MiB of video without a keyframe before %s; choose a later start",
				 MAX_HELD_BYTES / (1024 * 1024), r->s->from);
		return -1;
	}
	r->held_bytes += pkt->size;
	if (r->ngop == r->maxgop)
	{
		int			n = r->maxgop ? r->maxgop * 2 : 64;
		AVPacket  **g = realloc(r->gop, (size_t) n * sizeof(*g));

		if (g == NULL)
		{
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		r->gop = g;
		r->maxgop = n;
	}
	if ((r->gop[r->ngop] = av_packet_alloc()) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	av_packet_move_ref(r->gop[r->ngop++], pkt);
	return 0;
}

/* A packet's wall-clock time (ms since the epoch), from its file's start. */
static int64_t
wall_ms(const SegReader *r, const AVPacket *pkt)
{
	return r->s->segs[r->cur].start_ms +
		av_rescale_q(pkt->dts - r->file_first_dts, r->tb, (AVRational) {1, 1000});
}

static void
shift_to_zero(SegReader *r, AVPacket *pkt)
{
	if (r->shift == AV_NOPTS_VALUE)
		r->shift = pkt->dts;
	pkt->dts -= r->shift;
	pkt->pts -= r->shift;
}

int
segreader_next(SegReader *r, AVPacket *pkt, char *err, size_t errlen)
{
	int			ret;

	if (!r->cut)
		return read_packet(r, pkt, err, errlen);
	for (;;)
	{
		/* The held GOP goes out first once the range has begun. */
		if (r->started && r->nout < r->ngop)
		{
			av_packet_move_ref(pkt, r->gop[r->nout++]);
			shift_to_zero(r, pkt);
			return 0;
		}
		if (r->started && r->ngop > 0)
			drop_held(r);
		if (r->ended)
			return AVERROR_EOF;
		ret = read_packet(r, pkt, err, errlen);
		if (ret == AVERROR_EOF && !r->started)
		{
			snprintf(err, errlen, "no frame of the recordings falls between %s and %s",
					 r->s->from, r->s->to);
			return AVERROR(EINVAL);
		}
		if (ret < 0)
			return ret;
		if (r->started)
		{
			if (wall_ms(r, pkt) >= r->s->to_ms)
			{
				av_packet_unref(pkt);
				r->ended = 1;
				return AVERROR_EOF;
			}
			shift_to_zero(r, pkt);
			return 0;
		}
		if (wall_ms(r, pkt) < r->s->from_ms)
		{
			/* Before the range: keep the GOP it belongs to, drop the rest. */
			if (pkt->flags & AV_PKT_FLAG_KEY)
				drop_held(r);
			if ((pkt->flags & AV_PKT_FLAG_KEY) || r->ngop > 0)
			{
				if (hold(r, pkt, err, errlen) != 0)
				{
					av_packet_unref(pkt);
					return AVERROR(ENOMEM);
				}
			}
			else
				av_packet_unref(pkt);	/* before any keyframe: undecodable */
			continue;
		}
		/* The range begins: with the held GOP, unless a keyframe starts it. */
		r->started = 1;
		if (pkt->flags & AV_PKT_FLAG_KEY)
			drop_held(r);
		if (r->ngop == 0)
		{
			shift_to_zero(r, pkt);
			return 0;
		}
		if (hold(r, pkt, err, errlen) != 0)
		{
			av_packet_unref(pkt);
			return AVERROR(ENOMEM);
		}
	}
}

void
segreader_close(SegReader **rp)
{
	SegReader  *r = *rp;

	if (r == NULL)
		return;
	close_file(r);
	drop_held(r);
	free(r->gop);
	avcodec_parameters_free(&r->par);
	free(r);
	*rp = NULL;
}
