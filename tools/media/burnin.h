/*
 * burnin.h: decode, mask privacy zones, re-encode with libx264: the burn-in of
 * vms-ingest and the masked export of vms-export (tools/media/).
 *
 * Decodes the camera's video (any codec libavcodec decodes, one thread),
 * masks the privacy zones, and re-encodes H.264 with libx264 (preset
 * veryfast, tune zerolatency, yuv420p, one thread, no B-frames, SPS/PPS in
 * band for MPEG-TS: AV_CODEC_FLAG_GLOBAL_HEADER is not set).  Rate: the
 * input's bit rate when the codec parameters carry one, else CRF 23.
 *
 * Keyframes: the first frame, then the first frame at or past every multiple
 * of keyframe_interval_s since the first frame's pts, is encoded as an IDR
 * (AV_PKT_FLAG_KEY).  libx264's own GOP limit is set to keyframe_interval_s
 * * 60 frames and scene-cut keyframes are off, so for cameras up to 60 fps
 * the forced keyframes are the only ones (the frame rate is not in
 * AVCodecParameters in FFmpeg 5.1, so the GOP cannot be interval * fps).
 *
 * Masking: tools/media/zonemask.h (rasterised polygons, black or pixelated),
 * applied to every decoded frame at the encoder's size.
 *
 * Timestamps: frames take their best-effort pts in in_time_base; frames with
 * no pts or a pts not above the previous one are dropped (x264 needs strictly
 * increasing pts).  Output packets carry pts/dts in burnin_output_time_base()
 * (= in_time_base).  Packets the decoder rejects as invalid data are skipped.
 *
 * Zones: normalised coordinates, (0,0) top left, 3..64 points each, at most
 * ZONEMASK_MAX_ZONES zones; nzones may be 0 (plain re-encode).
 */
#ifndef VMS_MEDIA_BURNIN_H
#define VMS_MEDIA_BURNIN_H

#include <stddef.h>

#include <libavcodec/avcodec.h>

#include "zonemask.h"

#define BURNIN_MAX_ZONES ZONEMASK_MAX_ZONES

/*
 * Encoder settings that differ between the callers.  burnin_open() uses the
 * ingest ones: one thread everywhere, tune zerolatency, SPS/PPS in band.
 */
typedef struct BurnInOptions
{
	int			threads;		/* decoder and encoder threads, 0 = automatic */
	const char *tune;			/* libx264 tune, NULL = none */
	int			global_header;	/* SPS/PPS in extradata (MP4), not in band (MPEG-TS) */
	int			crf;			/* rate when the input has no bit rate */
} BurnInOptions;

typedef struct BurnIn BurnIn;

/*
 * Opens decoder, graph and encoder for a stream with these parameters
 * (width and height must be known).  NULL with a message in err on error,
 * including invalid zones.
 */
BurnIn	   *burnin_open(const AVCodecParameters *in, AVRational in_time_base,
						const PrivacyZone *zones, int nzones,
						int keyframe_interval_s, char *err, size_t errlen);
BurnIn	   *burnin_open_opts(const AVCodecParameters *in, AVRational in_time_base,
							 const PrivacyZone *zones, int nzones, int keyframe_interval_s,
							 const BurnInOptions *opts, char *err, size_t errlen);

/* H.264 from libx264, valid from burnin_open() on (no extradata). */
const AVCodecParameters *burnin_output_params(const BurnIn *b);
AVRational	burnin_output_time_base(const BurnIn *b);

/*
 * Decodes, masks and encodes one packet (NULL: flush everything).  The
 * packet is not consumed.  0 or a negative AVERROR.  Encoded packets queue
 * inside until burnin_receive_packet() takes them.
 */
int			burnin_send_packet(BurnIn *b, const AVPacket *pkt);

/* 0 (a packet in out), AVERROR(EAGAIN), AVERROR_EOF after the flush, or an error. */
int			burnin_receive_packet(BurnIn *b, AVPacket *out);

void		burnin_close(BurnIn **b);

#endif							/* VMS_MEDIA_BURNIN_H */
