/*
 * zonemask.c: privacy zones applied to decoded frames (see zonemask.h); the
 * filter graph part follows FFmpeg's doc/examples/filtering_video.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/bprint.h>
#include <libavutil/opt.h>

#include "zonemask.h"

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

struct ZoneMasker
{
	int			width, height;	/* output */
	AVRational	tb;

	ZoneMask	zones[ZONEMASK_MAX_ZONES];
	int			nzones;			/* non-empty zones only */
	int			nblur;
	int			block;			/* pixelation block, output pixels */

	AVFilterGraph *graph;
	AVFilterContext *src;
	AVFilterContext *sinks[1 + ZONEMASK_MAX_ZONES];	/* 0: the frame, 1..: blurred boxes */
	int			graph_w, graph_h, graph_fmt;	/* input the graph was built for */
	AVFrame    *boxes[ZONEMASK_MAX_ZONES];	/* blurred boxes */
};

static int
validate_zones(const PrivacyZone *zones, int nzones, char *err, size_t errlen)
{
	int			i, k;

	if (nzones < 0 || nzones > ZONEMASK_MAX_ZONES || (nzones > 0 && !zones))
	{
		snprintf(err, errlen, "privacy zones: 0..%d zones expected, got %d",
				 ZONEMASK_MAX_ZONES, nzones);
		return -1;
	}
	for (i = 0; i < nzones; i++)
	{
		const PrivacyZone *z = &zones[i];

		if (z->npoints < 3 || z->npoints > ZONEMASK_MAX_POINTS)
		{
			snprintf(err, errlen, "privacy zone %d: 3..%d points expected, got %d",
					 i + 1, ZONEMASK_MAX_POINTS, z->npoints);
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
	double		xs[ZONEMASK_MAX_POINTS];
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
free_graph(ZoneMasker *b)
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
build_graph(ZoneMasker *b, const AVFrame *f)
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
			   b->width, b->height);
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

ZoneMasker *
zonemask_open(int width, int height, AVRational time_base,
			  const PrivacyZone *zones, int nzones, char *err, size_t errlen)
{
	ZoneMasker *b = NULL;
	int			i;

	if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
	{
		snprintf(err, errlen, "masks: invalid frame size %dx%d", width, height);
		return NULL;
	}
	if (time_base.num <= 0 || time_base.den <= 0)
	{
		snprintf(err, errlen, "masks: invalid time base %d/%d", time_base.num, time_base.den);
		return NULL;
	}
	if (validate_zones(zones, nzones, err, errlen) < 0)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		goto oom;
	b->width = width;
	b->height = height;
	b->tb = time_base;
	b->block = height / 30 > 8 ? height / 30 : 8;
	for (i = 0; i < nzones; i++)
	{
		ZoneMask   *zm = &b->zones[b->nzones];

		if (rasterise(&zones[i], width, height, zm) < 0)
			goto oom;
		if (zm->w == 0)
			continue;			/* covers no pixel centre: nothing to mask */
		if (zm->blur)
			zm->sink = ++b->nblur;
		b->nzones++;
	}
	for (i = 0; i < b->nblur; i++)
		if (!(b->boxes[i] = av_frame_alloc()))
			goto oom;
	return b;

oom:
	snprintf(err, errlen, "out of memory");
	zonemask_close(&b);
	return NULL;
}

int
zonemask_send_frame(ZoneMasker *b, AVFrame *in)
{
	int			ret;

	if (!b->graph || in->width != b->graph_w || in->height != b->graph_h ||
		in->format != b->graph_fmt)
	{
		ret = build_graph(b, in);
		if (ret < 0)
		{
			av_frame_unref(in);
			return ret;
		}
	}
	ret = av_buffersrc_add_frame_flags(b->src, in, 0);
	av_frame_unref(in);
	return ret;
}

int
zonemask_receive_frame(ZoneMasker *b, AVFrame *out)
{
	int			i, ret = 0;

	if (!b->graph)
		return AVERROR(EAGAIN);
	/* Boxes first: then only the decoder may still share the frame's buffer. */
	for (i = 1; i <= b->nblur; i++)
	{
		ret = av_buffersink_get_frame(b->sinks[i], b->boxes[i - 1]);
		if (ret < 0)
			break;
	}
	if (ret < 0)
		goto end;
	ret = av_buffersink_get_frame(b->sinks[0], out);
	if (ret < 0)
		goto end;
	ret = av_frame_make_writable(out);
	if (ret < 0)
		goto end;
	for (i = 0; i < b->nzones; i++)
		if (b->zones[i].blur)
			apply_zone(&b->zones[i], out, b->boxes[b->zones[i].sink - 1]);
	for (i = 0; i < b->nzones; i++)
		if (!b->zones[i].blur)
			apply_zone(&b->zones[i], out, NULL);
end:
	if (ret < 0)
		av_frame_unref(out);
	for (i = 0; i < b->nblur; i++)
		av_frame_unref(b->boxes[i]);
	return ret;
}

void
zonemask_close(ZoneMasker **bp)
{
	ZoneMasker *b = bp ? *bp : NULL;
	int			i;

	if (!b)
		return;
	free_graph(b);
	for (i = 0; i < ZONEMASK_MAX_ZONES; i++)
	{
		av_frame_free(&b->boxes[i]);
		free(b->zones[i].luma);
		free(b->zones[i].chroma);
	}
	free(b);
	*bp = NULL;
}
