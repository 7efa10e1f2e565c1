/*
 * burnin.c: decode, mask privacy zones, re-encode with libx264.  See burnin.h
 * for the design; the filter graph part follows FFmpeg's
 * doc/examples/filtering_video.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/bprint.h>
#include <libavutil/fifo.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "burnin.h"

#define MAX_FPS_FOR_GOP		60	/* GOP limit = interval * this: forced keys come first */
#define NOMINAL_FPS			25	/* only for x264's VBV/level guesses; rate control uses pts */
/* veryfast: ~55 fps at 1080p per core here, +2.6 dB PSNR over ultrafast (~95 fps) at equal bit rate */
#define X264_PRESET			"veryfast"

/* A zone rasterised at the output size; x and y are even (yuv420p chroma). */
typedef struct ZoneMask
{
	int			x, y, w, h;		/* bounding box in output pixels */
	int			blur;
	int			sink;			/* buffersink index of the blurred box (blur only) */
	uint8_t    *luma;			/* w * h, 1 = masked */
	uint8_t    *chroma;			/* cw * ch */
	int			cw, ch;
} ZoneMask;

struct BurnIn
{
	AVCodecContext *dec;
	AVCodecContext *enc;
	AVCodecParameters *out_par;
	AVRational	tb;

	ZoneMask	zones[BURNIN_MAX_ZONES];
	int			nzones;			/* non-empty zones only */
	int			nblur;
	int			block;			/* pixelation block, output pixels */

	AVFilterGraph *graph;
	AVFilterContext *src;
	AVFilterContext *sinks[1 + BURNIN_MAX_ZONES];	/* 0: the frame, 1..: blurred boxes */
	int			graph_w, graph_h, graph_fmt;	/* input the graph was built for */

	AVFrame    *frame;			/* decoded */
	AVFrame    *out;			/* filtered, masked, to the encoder */
	AVFrame    *boxes[BURNIN_MAX_ZONES];	/* blurred boxes */
	AVPacket   *pkt;
	AVFifo	   *queue;			/* AVPacket * ready for burnin_receive_packet */

	int64_t		key_interval;	/* in tb */
	int64_t		first_pts, next_key_pts, last_pts;
	int			flushed;
};

static int
validate_zones(const PrivacyZone *zones, int nzones, char *err, size_t errlen)
{
	int			i, k;

	if (nzones < 0 || nzones > BURNIN_MAX_ZONES || (nzones > 0 && !zones))
	{
		snprintf(err, errlen, "privacy zones: 0..%d zones expected, got %d",
				 BURNIN_MAX_ZONES, nzones);
		return -1;
	}
	for (i = 0; i < nzones; i++)
	{
		const PrivacyZone *z = &zones[i];

		if (z->npoints < 3 || z->npoints > 64)
		{
			snprintf(err, errlen, "privacy zone %d: 3..64 points expected, got %d",
					 i + 1, z->npoints);
			return -1;
		}
		for (k = 0; k < z->npoints; k++)
			if (!isfinite(z->x[k]) || !isfinite(z->y[k]) ||
				z->x[k] < 0.0 || z->x[k] > 1.0 || z->y[k] < 0.0 || z->y[k] > 1.0)
			{
				snprintf(err, errlen,
						 "privacy zone %d: point %d is not within [0,1] x [0,1]", i + 1, k + 1);
				return -1;
			}
	}
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a, y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Rasterises one polygon (even-odd rule, a pixel is in when its centre is)
 * into zm.  Returns 0 (zm->w == 0 when no pixel centre is inside), -1 on OOM.
 */
static int
rasterise(const PrivacyZone *z, int W, int H, ZoneMask *zm)
{
	uint8_t    *full = NULL;
	double		xs[64];
	int			x0 = W, y0 = H, x1 = -1, y1 = -1;
	int			px, py, i, k, ret = -1;

	full = calloc((size_t) W * H, 1);
	if (!full)
		goto end;
	for (py = 0; py < H; py++)
	{
		double		yc = py + 0.5;
		int			n = 0;

		for (i = 0, k = z->npoints - 1; i < z->npoints; k = i++)
		{
			double		yi = z->y[i] * H, yk = z->y[k] * H;

			if ((yi <= yc) != (yk <= yc))
			{
				double		xi = z->x[i] * W, xk = z->x[k] * W;

				xs[n++] = xi + (yc - yi) * (xk - xi) / (yk - yi);
			}
		}
		qsort(xs, n, sizeof(double), cmp_double);
		for (i = 0; i + 1 < n; i += 2)
		{
			/* pixels whose centre px + 0.5 lies in [xs[i], xs[i+1]) */
			int			a = (int) ceil(xs[i] - 0.5), b = (int) ceil(xs[i + 1] - 0.5);

			if (a < 0)
				a = 0;
			if (b > W)
				b = W;
			if (a >= b)
				continue;
			memset(full + (size_t) py * W + a, 1, b - a);
			if (a < x0)
				x0 = a;
			if (b - 1 > x1)
				x1 = b - 1;
			if (py < y0)
				y0 = py;
			y1 = py;
		}
	}
	memset(zm, 0, sizeof(*zm));
	zm->blur = z->blur;
	if (x1 < 0)
	{
		ret = 0;				/* too small to cover a pixel centre */
		goto end;
	}
	/* Even origin and size, so the box maps onto whole chroma samples. */
	x0 &= ~1;
	y0 &= ~1;
	x1 = (x1 + 2) & ~1;
	y1 = (y1 + 2) & ~1;
	if (x1 > W)
		x1 = W;
	if (y1 > H)
		y1 = H;
	zm->x = x0;
	zm->y = y0;
	zm->w = x1 - x0;
	zm->h = y1 - y0;
	zm->cw = (zm->w + 1) / 2;
	zm->ch = (zm->h + 1) / 2;
	zm->luma = malloc((size_t) zm->w * zm->h);
	zm->chroma = calloc((size_t) zm->cw * zm->ch, 1);
	if (!zm->luma || !zm->chroma)
		goto end;
	for (py = 0; py < zm->h; py++)
	{
		const uint8_t *row = full + (size_t) (zm->y + py) * W + zm->x;

		memcpy(zm->luma + (size_t) py * zm->w, row, zm->w);
		for (px = 0; px < zm->w; px++)
			if (row[px])
				zm->chroma[(size_t) (py / 2) * zm->cw + px / 2] = 1;
	}
	ret = 0;
end:
	free(full);
	return ret;
}

static void
free_graph(BurnIn *b)
{
	avfilter_graph_free(&b->graph);
	b->src = NULL;
	memset(b->sinks, 0, sizeof(b->sinks));
}

/*
 * (Re)builds the graph for frames like f:
 *   [in] scale=W:H (limited range), format=yuv420p, split [o0][t1]..[tN]
 *   [ti] crop=box, scale=down:flags=area, scale=up:flags=bilinear [bi]
 */
static int
build_graph(BurnIn *b, const AVFrame *f)
{
	const AVFilter *buffersrc = avfilter_get_by_name("buffer");
	const AVFilter *buffersink = avfilter_get_by_name("buffersink");
	enum AVPixelFormat pix_fmts[] = {AV_PIX_FMT_YUV420P, AV_PIX_FMT_NONE};
	AVFilterInOut *outputs = NULL, *inputs = NULL;
	AVBPrint	desc;
	char		args[256], name[16];
	int			i, ret;

	free_graph(b);
	av_bprint_init(&desc, 0, AV_BPRINT_SIZE_UNLIMITED);
	b->graph = avfilter_graph_alloc();
	if (!b->graph || !buffersrc || !buffersink)
	{
		ret = AVERROR(ENOMEM);
		goto end;
	}
	b->graph->nb_threads = 1;

	snprintf(args, sizeof(args),
			 "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=%d/%d",
			 f->width, f->height, f->format, b->tb.num, b->tb.den,
			 f->sample_aspect_ratio.num, f->sample_aspect_ratio.den ? f->sample_aspect_ratio.den : 1);
	ret = avfilter_graph_create_filter(&b->src, buffersrc, "in", args, NULL, b->graph);
	if (ret < 0)
		goto end;

	/* One sink per output; the parser links them by label. */
	for (i = 0; i <= b->nblur; i++)
	{
		AVFilterInOut *io;

		snprintf(name, sizeof(name), i == 0 ? "o0" : "b%d", i);
		ret = avfilter_graph_create_filter(&b->sinks[i], buffersink, name, NULL, NULL, b->graph);
		if (ret < 0)
			goto end;
		ret = av_opt_set_int_list(b->sinks[i], "pix_fmts", pix_fmts, AV_PIX_FMT_NONE,
								  AV_OPT_SEARCH_CHILDREN);
		if (ret < 0)
			goto end;
		io = avfilter_inout_alloc();
		if (!io)
		{
			ret = AVERROR(ENOMEM);
			goto end;
		}
		io->name = av_strdup(name);
		io->filter_ctx = b->sinks[i];
		io->pad_idx = 0;
		io->next = inputs;
		inputs = io;
		if (!io->name)
		{
			ret = AVERROR(ENOMEM);
			goto end;
		}
	}
	outputs = avfilter_inout_alloc();
	if (!outputs || !(outputs->name = av_strdup("in")))
	{
		ret = AVERROR(ENOMEM);
		goto end;
	}
	outputs->filter_ctx = b->src;
	outputs->pad_idx = 0;
	outputs->next = NULL;

	av_bprintf(&desc, "[in]scale=w=%d:h=%d:out_range=tv,format=yuv420p",
			   b->enc->width, b->enc->height);
	if (b->nblur == 0)
		av_bprintf(&desc, "[o0]");
	else
	{
		av_bprintf(&desc, ",split=%d[o0]", b->nblur + 1);
		for (i = 1; i <= b->nblur; i++)
			av_bprintf(&desc, "[t%d]", i);
		for (i = 0; i < b->nzones; i++)
		{
			const ZoneMask *z = &b->zones[i];
			int			dw, dh;

			if (!z->blur)
				continue;
			dw = (z->w + b->block - 1) / b->block;
			dh = (z->h + b->block - 1) / b->block;
			av_bprintf(&desc, ";[t%d]crop=w=%d:h=%d:x=%d:y=%d:exact=1,"
					   "scale=w=%d:h=%d:flags=area,scale=w=%d:h=%d:flags=bilinear[b%d]",
					   z->sink, z->w, z->h, z->x, z->y,
					   dw < 2 ? 2 : dw, dh < 2 ? 2 : dh, z->w, z->h, z->sink);
		}
	}
	if (!av_bprint_is_complete(&desc))
	{
		ret = AVERROR(ENOMEM);
		goto end;
	}
	ret = avfilter_graph_parse_ptr(b->graph, desc.str, &inputs, &outputs, NULL);
	if (ret < 0)
		goto end;
	ret = avfilter_graph_config(b->graph, NULL);
	if (ret < 0)
		goto end;
	b->graph_w = f->width;
	b->graph_h = f->height;
	b->graph_fmt = f->format;
end:
	if (ret < 0)
		free_graph(b);
	avfilter_inout_free(&inputs);
	avfilter_inout_free(&outputs);
	av_bprint_finalize(&desc, NULL);
	return ret;
}

/* Writes blurred pixels (box != NULL) or black into the masked pixels of f. */
static void
apply_zone(const ZoneMask *z, AVFrame *f, const AVFrame *box)
{
	uint8_t		black_y = f->color_range == AVCOL_RANGE_JPEG ? 0 : 16;
	int			r, c, p;

	for (r = 0; r < z->h; r++)
	{
		const uint8_t *m = z->luma + (size_t) r * z->w;
		uint8_t    *d = f->data[0] + (size_t) (z->y + r) * f->linesize[0] + z->x;
		const uint8_t *s = box ? box->data[0] + (size_t) r * box->linesize[0] : NULL;

		for (c = 0; c < z->w; c++)
			if (m[c])
				d[c] = s ? s[c] : black_y;
	}
	for (p = 1; p <= 2; p++)
		for (r = 0; r < z->ch; r++)
		{
			const uint8_t *m = z->chroma + (size_t) r * z->cw;
			uint8_t    *d = f->data[p] + (size_t) (z->y / 2 + r) * f->linesize[p] + z->x / 2;
			const uint8_t *s = box ? box->data[p] + (size_t) r * box->linesize[p] : NULL;

			for (c = 0; c < z->cw; c++)
				if (m[c])
					d[c] = s ? s[c] : 128;
		}
}

/* Moves every packet the encoder has ready into the queue. */
static int
drain_encoder(BurnIn *b)
{
	for (;;)
	{
		AVPacket   *p;
		int			ret = avcodec_receive_packet(b->enc, b->pkt);

		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			return 0;
		if (ret < 0)
			return ret;
		p = av_packet_alloc();
		if (!p)
		{
			av_packet_unref(b->pkt);
			return AVERROR(ENOMEM);
		}
		av_packet_move_ref(p, b->pkt);
		ret = av_fifo_write(b->queue, &p, 1);
		if (ret < 0)
		{
			av_packet_free(&p);
			return ret;
		}
	}
}

/* Filters, masks and encodes b->frame (decoded). */
static int
process_frame(BurnIn *b)
{
	int64_t		pts = b->frame->best_effort_timestamp;
	int			i, ret;

	if (pts == AV_NOPTS_VALUE || (b->last_pts != AV_NOPTS_VALUE && pts <= b->last_pts))
	{
		av_frame_unref(b->frame);
		return 0;
	}
	b->last_pts = pts;
	b->frame->pts = pts;

	if (!b->graph || b->frame->width != b->graph_w || b->frame->height != b->graph_h ||
		b->frame->format != b->graph_fmt)
	{
		ret = build_graph(b, b->frame);
		if (ret < 0)
			goto end;
	}
	ret = av_buffersrc_add_frame_flags(b->src, b->frame, 0);
	if (ret < 0)
		goto end;

	for (;;)
	{
		/* Boxes first: then only the decoder may still share the frame's buffer. */
		for (i = 1; i <= b->nblur; i++)
		{
			ret = av_buffersink_get_frame(b->sinks[i], b->boxes[i - 1]);
			if (ret < 0)
				break;
		}
		if (ret == AVERROR(EAGAIN) && i == 1)
		{
			ret = 0;
			break;
		}
		if (ret < 0)
			goto end;
		ret = av_buffersink_get_frame(b->sinks[0], b->out);
		if (ret == AVERROR(EAGAIN) && b->nblur == 0)
		{
			ret = 0;
			break;
		}
		if (ret < 0)
			goto end;
		ret = av_frame_make_writable(b->out);
		if (ret < 0)
			goto end;
		for (i = 0; i < b->nzones; i++)
			if (b->zones[i].blur)
				apply_zone(&b->zones[i], b->out, b->boxes[b->zones[i].sink - 1]);
		for (i = 0; i < b->nzones; i++)
			if (!b->zones[i].blur)
				apply_zone(&b->zones[i], b->out, NULL);
		for (i = 0; i < b->nblur; i++)
			av_frame_unref(b->boxes[i]);

		/* IDR on the first frame at or past each multiple of the interval. */
		pts = b->out->pts;
		if (b->first_pts == AV_NOPTS_VALUE)
		{
			b->first_pts = pts;
			b->next_key_pts = pts;
		}
		if (pts >= b->next_key_pts)
		{
			b->out->pict_type = AV_PICTURE_TYPE_I;
			b->next_key_pts = b->first_pts +
				((pts - b->first_pts) / b->key_interval + 1) * b->key_interval;
		}
		else
			b->out->pict_type = AV_PICTURE_TYPE_NONE;

		ret = avcodec_send_frame(b->enc, b->out);
		av_frame_unref(b->out);
		if (ret < 0)
			goto end;
		ret = drain_encoder(b);
		if (ret < 0)
			goto end;
	}
end:
	av_frame_unref(b->frame);
	av_frame_unref(b->out);
	for (i = 0; i < b->nblur; i++)
		av_frame_unref(b->boxes[i]);
	return ret;
}

static int
open_encoder(BurnIn *b, const AVCodecParameters *in, int keyframe_interval_s,
			 char *err, size_t errlen)
{
	const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
	AVCodecContext *enc;
	int			ret;

	if (!codec)
	{
		snprintf(err, errlen, "burn-in: the libx264 encoder is not available");
		return AVERROR_ENCODER_NOT_FOUND;
	}
	enc = b->enc = avcodec_alloc_context3(codec);
	if (!enc)
	{
		snprintf(err, errlen, "out of memory");
		return AVERROR(ENOMEM);
	}
	enc->width = in->width;
	enc->height = in->height;
	enc->pix_fmt = AV_PIX_FMT_YUV420P;
	enc->sample_aspect_ratio = in->sample_aspect_ratio;
	enc->color_range = AVCOL_RANGE_MPEG;
	enc->color_primaries = in->color_primaries;
	enc->color_trc = in->color_trc;
	enc->colorspace = in->color_space;
	enc->time_base = b->tb;
	enc->framerate = (AVRational) {NOMINAL_FPS, 1};
	enc->gop_size = keyframe_interval_s * MAX_FPS_FOR_GOP;
	enc->max_b_frames = 0;
	enc->thread_count = 1;		/* many cameras per host: parallel across workers */
	/* No AV_CODEC_FLAG_GLOBAL_HEADER: MPEG-TS wants SPS/PPS in band. */
	av_opt_set(enc->priv_data, "preset", X264_PRESET, 0);
	av_opt_set(enc->priv_data, "tune", "zerolatency", 0);
	av_opt_set(enc->priv_data, "forced-idr", "1", 0);
	/* No scene-cut keyframes: keyframes only where forced, i.e. at segment cuts. */
	av_opt_set(enc->priv_data, "sc_threshold", "0", 0);
	if (in->bit_rate > 0)
	{
		enc->bit_rate = in->bit_rate;
		enc->rc_max_rate = in->bit_rate + in->bit_rate / 2;
		enc->rc_buffer_size = (int) FFMIN(in->bit_rate * 2, INT_MAX);
	}
	else
		av_opt_set(enc->priv_data, "crf", "23", 0);

	ret = avcodec_open2(enc, codec, NULL);
	if (ret < 0)
	{
		snprintf(err, errlen, "burn-in: cannot open libx264 (%dx%d): %s",
				 enc->width, enc->height, av_err2str(ret));
		return ret;
	}
	ret = avcodec_parameters_from_context(b->out_par, enc);
	if (ret < 0)
		snprintf(err, errlen, "burn-in: %s", av_err2str(ret));
	return ret;
}

BurnIn *
burnin_open(const AVCodecParameters *in, AVRational in_time_base,
			const PrivacyZone *zones, int nzones, int keyframe_interval_s,
			char *err, size_t errlen)
{
	BurnIn	   *b = NULL;
	const AVCodec *dcodec;
	int			i, ret;

	if (!in || in->codec_type != AVMEDIA_TYPE_VIDEO || in->width <= 0 || in->height <= 0)
	{
		snprintf(err, errlen, "burn-in: a video stream with a known frame size is required");
		goto fail;
	}
	if (in_time_base.num <= 0 || in_time_base.den <= 0)
	{
		snprintf(err, errlen, "burn-in: invalid time base %d/%d", in_time_base.num, in_time_base.den);
		goto fail;
	}
	if (keyframe_interval_s < 1 || keyframe_interval_s > 3600)
	{
		snprintf(err, errlen, "burn-in: keyframe interval must be 1..3600 s, got %d",
				 keyframe_interval_s);
		goto fail;
	}
	if (validate_zones(zones, nzones, err, errlen) < 0)
		goto fail;

	b = calloc(1, sizeof(*b));
	if (!b)
	{
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	b->tb = in_time_base;
	b->first_pts = b->next_key_pts = b->last_pts = AV_NOPTS_VALUE;
	b->key_interval = av_rescale_q(keyframe_interval_s, (AVRational) {1, 1}, in_time_base);
	b->block = in->height / 30 > 8 ? in->height / 30 : 8;

	for (i = 0; i < nzones; i++)
	{
		ZoneMask   *zm = &b->zones[b->nzones];

		if (rasterise(&zones[i], in->width, in->height, zm) < 0)
		{
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (zm->w == 0)
			continue;			/* covers no pixel centre: nothing to mask */
		if (zm->blur)
			zm->sink = ++b->nblur;
		b->nzones++;
	}

	b->frame = av_frame_alloc();
	b->out = av_frame_alloc();
	b->pkt = av_packet_alloc();
	b->out_par = avcodec_parameters_alloc();
	b->queue = av_fifo_alloc2(16, sizeof(AVPacket *), AV_FIFO_FLAG_AUTO_GROW);
	if (!b->frame || !b->out || !b->pkt || !b->out_par || !b->queue)
	{
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < b->nblur; i++)
		if (!(b->boxes[i] = av_frame_alloc()))
		{
			snprintf(err, errlen, "out of memory");
			goto fail;
		}

	dcodec = avcodec_find_decoder(in->codec_id);
	if (!dcodec)
	{
		snprintf(err, errlen, "burn-in: no decoder for %s", avcodec_get_name(in->codec_id));
		goto fail;
	}
	b->dec = avcodec_alloc_context3(dcodec);
	if (!b->dec)
	{
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ret = avcodec_parameters_to_context(b->dec, in);
	if (ret < 0)
	{
		snprintf(err, errlen, "burn-in: decoder parameters: %s", av_err2str(ret));
		goto fail;
	}
	b->dec->pkt_timebase = in_time_base;
	b->dec->thread_count = 1;
	ret = avcodec_open2(b->dec, dcodec, NULL);
	if (ret < 0)
	{
		snprintf(err, errlen, "burn-in: cannot open the %s decoder: %s",
				 dcodec->name, av_err2str(ret));
		goto fail;
	}

	if (open_encoder(b, in, keyframe_interval_s, err, errlen) < 0)
		goto fail;
	return b;

fail:
	burnin_close(&b);
	return NULL;
}

const AVCodecParameters *
burnin_output_params(const BurnIn *b)
{
	return b->out_par;
}

AVRational
burnin_output_time_base(const BurnIn *b)
{
	return b->enc->time_base;
}

int
burnin_send_packet(BurnIn *b, const AVPacket *pkt)
{
	int			ret;

	if (b->flushed)
		return AVERROR_EOF;
	ret = avcodec_send_packet(b->dec, pkt);
	if (ret == AVERROR_INVALIDDATA && pkt)
		return 0;				/* a damaged packet: skip it, keep recording */
	if (ret < 0)
		return ret;
	for (;;)
	{
		ret = avcodec_receive_frame(b->dec, b->frame);
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			break;
		if (ret == AVERROR_INVALIDDATA)
			continue;
		if (ret < 0)
			return ret;
		ret = process_frame(b);
		if (ret < 0)
			return ret;
	}
	if (!pkt)
	{
		b->flushed = 1;
		ret = avcodec_send_frame(b->enc, NULL);
		if (ret < 0)
			return ret;
		return drain_encoder(b);
	}
	return 0;
}

int
burnin_receive_packet(BurnIn *b, AVPacket *out)
{
	AVPacket   *p;

	if (av_fifo_read(b->queue, &p, 1) >= 0)
	{
		av_packet_move_ref(out, p);
		av_packet_free(&p);
		return 0;
	}
	return b->flushed ? AVERROR_EOF : AVERROR(EAGAIN);
}

void
burnin_close(BurnIn **bp)
{
	BurnIn	   *b = bp ? *bp : NULL;
	AVPacket   *p;
	int			i;

	if (!b)
		return;
	free_graph(b);
	avcodec_free_context(&b->dec);
	avcodec_free_context(&b->enc);
	avcodec_parameters_free(&b->out_par);
	av_frame_free(&b->frame);
	av_frame_free(&b->out);
	for (i = 0; i < BURNIN_MAX_ZONES; i++)
	{
		av_frame_free(&b->boxes[i]);
		free(b->zones[i].luma);
		free(b->zones[i].chroma);
	}
	av_packet_free(&b->pkt);
	if (b->queue)
	{
		while (av_fifo_read(b->queue, &p, 1) >= 0)
			av_packet_free(&p);
		av_fifo_freep2(&b->queue);
	}
	free(b);
	*bp = NULL;
}
