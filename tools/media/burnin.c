/*
 * burnin.c: decode, mask privacy zones (zonemask.c), re-encode with libx264.
 * See burnin.h for the design.
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/fifo.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>

#include "burnin.h"

#define MAX_FPS_FOR_GOP		60	/* GOP limit = interval * this: forced keys come first */
#define NOMINAL_FPS			25	/* only for x264's VBV/level guesses; rate control uses pts */
/* veryfast: ~55 fps at 1080p per core here, +2.6 dB PSNR over ultrafast (~95 fps) at equal bit rate */
#define X264_PRESET			"veryfast"

struct BurnIn
{
	AVCodecContext *dec;
	AVCodecContext *enc;
	AVCodecParameters *out_par;
	AVRational	tb;

	ZoneMasker *masker;

	AVFrame    *frame;			/* decoded */
	AVFrame    *out;			/* filtered, masked, to the encoder */
	AVPacket   *pkt;
	AVFifo	   *queue;			/* AVPacket * ready for burnin_receive_packet */

	int64_t		key_interval;	/* in tb */
	int64_t		first_pts, next_key_pts, last_pts;
	int			flushed;
};

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

/* Masks and encodes b->frame (decoded). */
static int
process_frame(BurnIn *b)
{
	int64_t		pts = b->frame->best_effort_timestamp;
	int			ret;

	if (pts == AV_NOPTS_VALUE || (b->last_pts != AV_NOPTS_VALUE && pts <= b->last_pts))
	{
		av_frame_unref(b->frame);
		return 0;
	}
	b->last_pts = pts;
	b->frame->pts = pts;

	ret = zonemask_send_frame(b->masker, b->frame);
	if (ret < 0)
		goto end;
	while ((ret = zonemask_receive_frame(b->masker, b->out)) >= 0)
	{
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
	if (ret == AVERROR(EAGAIN))
		ret = 0;
end:
	av_frame_unref(b->frame);
	av_frame_unref(b->out);
	return ret;
}

static int
open_encoder(BurnIn *b, const AVCodecParameters *in, int keyframe_interval_s,
			 const BurnInOptions *o, char *err, size_t errlen)
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
	enc->thread_count = o->threads;
	if (o->global_header)
		enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	av_opt_set(enc->priv_data, "preset", X264_PRESET, 0);
	if (o->tune)
		av_opt_set(enc->priv_data, "tune", o->tune, 0);
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
		av_opt_set_int(enc->priv_data, "crf", o->crf, 0);

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

/* vms-ingest: many cameras per host, so parallel across workers, not inside one. */
static const BurnInOptions ingest_options = {1, "zerolatency", 0, 23};

BurnIn *
burnin_open(const AVCodecParameters *in, AVRational in_time_base,
			const PrivacyZone *zones, int nzones, int keyframe_interval_s,
			char *err, size_t errlen)
{
	return burnin_open_opts(in, in_time_base, zones, nzones, keyframe_interval_s,
							&ingest_options, err, errlen);
}

BurnIn *
burnin_open_opts(const AVCodecParameters *in, AVRational in_time_base,
				 const PrivacyZone *zones, int nzones, int keyframe_interval_s,
				 const BurnInOptions *opts, char *err, size_t errlen)
{
	BurnIn	   *b = NULL;
	const AVCodec *dcodec;
	int			ret;

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
	b = calloc(1, sizeof(*b));
	if (!b)
	{
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	b->tb = in_time_base;
	b->first_pts = b->next_key_pts = b->last_pts = AV_NOPTS_VALUE;
	b->key_interval = av_rescale_q(keyframe_interval_s, (AVRational) {1, 1}, in_time_base);
	b->masker = zonemask_open(in->width, in->height, in_time_base, zones, nzones, err, errlen);
	if (!b->masker)
		goto fail;				/* size and time base are checked above: a zone or memory */

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
	b->dec->thread_count = opts->threads;
	ret = avcodec_open2(b->dec, dcodec, NULL);
	if (ret < 0)
	{
		snprintf(err, errlen, "burn-in: cannot open the %s decoder: %s",
				 dcodec->name, av_err2str(ret));
		goto fail;
	}

	if (open_encoder(b, in, keyframe_interval_s, opts, err, errlen) < 0)
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

	if (!b)
		return;
	zonemask_close(&b->masker);
	avcodec_free_context(&b->dec);
	avcodec_free_context(&b->enc);
	avcodec_parameters_free(&b->out_par);
	av_frame_free(&b->frame);
	av_frame_free(&b->out);
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
