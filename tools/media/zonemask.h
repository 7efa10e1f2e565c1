/*
 * zonemask.h: privacy zones applied to decoded video frames.  Shared by
 * vms-ingest (burn-in at recording) and vms-export (masks at export); linked
 * only into those tools (tools/media/).
 *
 * Design ("hybrid"): one libavfilter graph converts every frame to yuv420p
 * (limited range) at the masker's output size (scaling when the input size
 * changes; the graph is rebuilt when the frame size or format changes) and,
 * for each blur zone, crops the zone's bounding box and pixelates it (area
 * downscale by a block of max(8, height/30) pixels, bilinear upscale back:
 * the detail is gone, not just smoothed).  The zone polygons are rasterised
 * once at open into 8-bit masks (even-odd rule, pixel centres; a chroma
 * sample is masked when any of its 4 luma pixels is), and the masked pixels
 * are then written in place into the frame: the blurred ones, or black.  This
 * avoids the per-frame mask frames and timestamp-synchronised
 * alphamerge/overlay inputs of an all-filter graph (whose overlay also copies
 * the whole frame), and costs about what drawbox does.  Blur zones are applied
 * first and black zones last, so black always wins where zones overlap.
 *
 * Zones: normalised coordinates, (0,0) top left, 3..64 points each, at most
 * ZONEMASK_MAX_ZONES zones; nzones may be 0 (format conversion only).
 */
#ifndef VMS_MEDIA_ZONEMASK_H
#define VMS_MEDIA_ZONEMASK_H

#include <stddef.h>

#include <libavutil/frame.h>
#include <libavutil/rational.h>

#define ZONEMASK_MAX_ZONES 32
#define ZONEMASK_MAX_POINTS 64

typedef struct PrivacyZone
{
	int			npoints;
	double		x[ZONEMASK_MAX_POINTS],
				y[ZONEMASK_MAX_POINTS];	/* normalised 0..1, (0,0) top left */
	int			blur;			/* 0 = black fill */
} PrivacyZone;

typedef struct ZoneMasker ZoneMasker;

/*
 * Checks the zones and rasterises them for output frames of width x height
 * (yuv420p); frames sent carry pts in time_base.  NULL with a message in err
 * on error (invalid zones, out of memory).
 */
ZoneMasker *zonemask_open(int width, int height, AVRational time_base,
						  const PrivacyZone *zones, int nzones, char *err, size_t errlen);

/* Takes a decoded frame (its reference is moved into the graph; in is left blank).  0 or AVERROR. */
int			zonemask_send_frame(ZoneMasker *m, AVFrame *in);

/*
 * The next masked frame (yuv420p, width x height, writable, pts kept): 0, or
 * AVERROR(EAGAIN) when the graph needs more input, or an error.
 */
int			zonemask_receive_frame(ZoneMasker *m, AVFrame *out);

void		zonemask_close(ZoneMasker **m);

#endif							/* VMS_MEDIA_ZONEMASK_H */
