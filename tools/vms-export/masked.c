/*
 * masked.c: exports with privacy masks.  Video: the segments are decoded,
 * masked (tools/media/zonemask.c: black or pixelated polygons) and encoded
 * with libx264 (tools/media/burnin.c, the code vms-ingest burns masks in
 * with; here with automatic threads, no tune, SPS/PPS in the MP4's extradata,
 * CRF 20 unless the stream says its bit rate, an IDR every 2 s).  Snapshot:
 * the first frame at or after the requested time in the segment that holds
 * it, masked and written as an RGB PNG.
 */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "burnin.h"
#include "export.h"
#include "zonemask.h"

#define EXPORT_KEYFRAME_S	2
#define EXPORT_CRF			20

static int
drain(BurnIn *bi, OutFile *o, AVPacket *out, char *err, size_t errlen)
{
	int			ret;

	while ((ret = burnin_receive_packet(bi, out)) == 0)
		if (outfile_write(o, out, burnin_output_time_base(bi), err, errlen) != 0)
			return -1;
	if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
		return 0;
	snprintf(err, errlen, "encoding: %s", av_err2str(ret));
	return -1;
}

int
masked_export(int rootfd, const Session *s, int dirfd, const char *name, Progress *progress,
			  char *err, size_t errlen)
{
	const BurnInOptions opts = {0, NULL, 1, EXPORT_CRF};
	SegReader  *r = NULL;
	BurnIn	   *bi = NULL;
	OutFile    *o = NULL;
	AVPacket   *pkt = av_packet_alloc();
	AVPacket   *out = av_packet_alloc();
	int			ret = -1, n;

	if (pkt == NULL || out == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	r = segreader_open(rootfd, s, 0, s->nsegs - 1, 1, progress, err, errlen);
	if (r == NULL)
		goto end;
	bi = burnin_open_opts(segreader_params(r), segreader_time_base(r), s->zones, s->nmasks,
						  EXPORT_KEYFRAME_S, &opts, err, errlen);
	if (bi == NULL)
		goto end;
	o = outfile_open(dirfd, name, "mp4", burnin_output_params(bi), burnin_output_time_base(bi),
					 err, errlen);
	if (o == NULL)
		goto end;
	while ((n = segreader_next(r, pkt, err, errlen)) == 0)
	{
		n = burnin_send_packet(bi, pkt);
		av_packet_unref(pkt);
		if (n < 0)
		{
			snprintf(err, errlen, "decoding or encoding: %s", av_err2str(n));
			goto end;
		}
		if (drain(bi, o, out, err, errlen) != 0)
			goto end;
	}
	if (n != AVERROR_EOF)
		goto end;
	n = burnin_send_packet(bi, NULL);
	if (n < 0 && n != AVERROR_EOF)
	{
		snprintf(err, errlen, "encoding: %s", av_err2str(n));
		goto end;
	}
	if (drain(bi, o, out, err, errlen) != 0)
		goto end;
	ret = outfile_close(&o, err, errlen);
end:
	outfile_abort(&o);
	burnin_close(&bi);
	segreader_close(&r);
	av_packet_free(&pkt);
	av_packet_free(&out);
	return ret;
}

/* Masks frame, converts it to RGB and encodes it as PNG into pkt. */
static int
encode_png(const Session *s, AVFrame *frame, AVRational tb, AVPacket *pkt, char *err, size_t errlen)
{
	ZoneMasker *zm = NULL;
	AVFrame    *masked = av_frame_alloc();
	AVFrame    *rgb = av_frame_alloc();
	struct SwsContext *sws = NULL;
	const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
	AVCodecContext *enc = NULL;
	int			w = frame->width, h = frame->height, ret = -1, n;

	if (masked == NULL || rgb == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	zm = zonemask_open(w, h, tb, s->zones, s->nmasks, err, errlen);
	if (zm == NULL)
		goto end;
	if ((n = zonemask_send_frame(zm, frame)) < 0 || (n = zonemask_receive_frame(zm, masked)) < 0)
	{
		snprintf(err, errlen, "masking the snapshot: %s", av_err2str(n));
		goto end;
	}
	sws = sws_getContext(w, h, masked->format, w, h, AV_PIX_FMT_RGB24,
						 SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
	rgb->format = AV_PIX_FMT_RGB24;
	rgb->width = w;
	rgb->height = h;
	if (sws == NULL || av_frame_get_buffer(rgb, 0) < 0)
	{
		snprintf(err, errlen, "snapshot: cannot convert to RGB");
		goto end;
	}
	sws_scale(sws, (const uint8_t *const *) masked->data, masked->linesize, 0, h, rgb->data, rgb->linesize);
	if (codec == NULL || (enc = avcodec_alloc_context3(codec)) == NULL)
	{
		snprintf(err, errlen, "snapshot: the PNG encoder is not available");
		goto end;
	}
	enc->width = w;
	enc->height = h;
	enc->pix_fmt = AV_PIX_FMT_RGB24;
	enc->time_base = (AVRational) {1, 1};
	if ((n = avcodec_open2(enc, codec, NULL)) < 0 || (n = avcodec_send_frame(enc, rgb)) < 0 ||
		(n = avcodec_send_frame(enc, NULL)) < 0 || (n = avcodec_receive_packet(enc, pkt)) < 0)
	{
		snprintf(err, errlen, "snapshot: PNG encoding: %s", av_err2str(n));
		goto end;
	}
	ret = 0;
end:
	avcodec_free_context(&enc);
	sws_freeContext(sws);
	av_frame_free(&rgb);
	av_frame_free(&masked);
	zonemask_close(&zm);
	return ret;
}

int
snapshot_export(int rootfd, const Session *s, int64_t at_ms, int dirfd, const char *name,
				char *err, size_t errlen)
{
	SegReader  *r = NULL;
	AVCodecContext *dec = NULL;
	const AVCodec *codec;
	AVPacket   *pkt = av_packet_alloc();
	AVFrame    *frame = av_frame_alloc();
	AVFrame    *best = av_frame_alloc();
	AVRational	tb;
	int64_t		first_pts = AV_NOPTS_VALUE, target;
	int			idx, n, done = 0, eof = 0, ret = -1;

	if (pkt == NULL || frame == NULL || best == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	for (idx = 0; idx < s->nsegs; idx++)
		if (s->segs[idx].start_ms <= at_ms && at_ms < s->segs[idx].end_ms)
			break;
	if (idx == s->nsegs)
	{
		snprintf(err, errlen, "snapshot: no recording holds the requested time");
		goto end;
	}
	target = at_ms - s->segs[idx].start_ms;
	r = segreader_open(rootfd, s, idx, idx, 0, NULL, err, errlen);
	if (r == NULL)
		goto end;
	tb = segreader_time_base(r);
	codec = avcodec_find_decoder(segreader_params(r)->codec_id);
	if (codec == NULL || (dec = avcodec_alloc_context3(codec)) == NULL ||
		avcodec_parameters_to_context(dec, segreader_params(r)) < 0)
	{
		snprintf(err, errlen, "snapshot: no decoder for %s", avcodec_get_name(segreader_params(r)->codec_id));
		goto end;
	}
	dec->pkt_timebase = tb;
	dec->thread_count = 1;
	if ((n = avcodec_open2(dec, codec, NULL)) < 0)
	{
		snprintf(err, errlen, "snapshot: cannot open the %s decoder: %s", codec->name, av_err2str(n));
		goto end;
	}
	while (!done)
	{
		if (!eof)
		{
			n = segreader_next(r, pkt, err, errlen);
			if (n == AVERROR_EOF)
			{
				eof = 1;
				n = avcodec_send_packet(dec, NULL);
			}
			else if (n < 0)
				goto end;
			else
			{
				n = avcodec_send_packet(dec, pkt);
				av_packet_unref(pkt);
				if (n == AVERROR_INVALIDDATA)
					n = 0;
			}
			if (n < 0)
			{
				snprintf(err, errlen, "snapshot: decoding: %s", av_err2str(n));
				goto end;
			}
		}
		for (;;)
		{
			int64_t		pts;

			n = avcodec_receive_frame(dec, frame);
			if (n == AVERROR(EAGAIN))
				break;
			if (n == AVERROR_EOF)
			{
				done = 1;
				break;
			}
			if (n == AVERROR_INVALIDDATA)
				continue;
			if (n < 0)
			{
				snprintf(err, errlen, "snapshot: decoding: %s", av_err2str(n));
				goto end;
			}
			pts = frame->best_effort_timestamp;
			if (pts == AV_NOPTS_VALUE)
			{
				av_frame_unref(frame);
				continue;
			}
			if (first_pts == AV_NOPTS_VALUE)
				first_pts = pts;
			av_frame_unref(best);
			av_frame_move_ref(best, frame);
			best->pts = pts;
			if (av_rescale_q(pts - first_pts, tb, (AVRational) {1, 1000}) >= target)
			{
				done = 1;
				break;
			}
		}
	}
	if (best->width <= 0)
	{
		snprintf(err, errlen, "snapshot: no frame could be decoded from segment %lld", s->segs[idx].id);
		goto end;
	}
	if (encode_png(s, best, tb, pkt, err, errlen) != 0)
		goto end;
	ret = write_file_at(dirfd, name, (const char *) pkt->data, (size_t) pkt->size, 0600, err, errlen);
end:
	av_packet_free(&pkt);
	av_frame_free(&frame);
	av_frame_free(&best);
	avcodec_free_context(&dec);
	segreader_close(&r);
	return ret;
}
