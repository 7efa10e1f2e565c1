/*
 * segment.h: the segment writer of vms-ingest.  Packets go into MPEG-TS
 * files <root>/<camera>/<YYYY-MM-DD>/<start>.ts.partial through a custom
 * AVIOContext that writes to the file and feeds SHA-256 as it goes.  A
 * segment is cut at the first video keyframe at or after segment_seconds
 * since its first pts; closing it writes the trailer, fsyncs the file,
 * renames it to <start>_<duration ms>.ts and fsyncs the directory.
 *
 * Times are Unix milliseconds: wall_base_ms (the wall clock of the first
 * packet) plus the pts offset, so consecutive segments are contiguous.
 */
#ifndef VMS_INGEST_SEGMENT_H
#define VMS_INGEST_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

#define MAX_SEGMENT_MS	86400000LL	/* vms.register_segment() refuses longer ones */

/* A closed, durable segment: what vms.register_segment() takes. */
typedef struct SegmentInfo
{
	char		path[128];		/* relative to the storage root */
	int64_t		start_ms;
	int64_t		end_ms;
	int64_t		bytes;
	unsigned char sha256[32];
	char		codec[33];		/* "" when unknown */
	int			width;			/* 0 when unknown */
	int			height;
} SegmentInfo;

typedef struct Segmenter Segmenter;

/* "YYYYMMDDTHHMMSS.mmmZ" (name) and "YYYY-MM-DD" (day) of a time; -1 outside years 1970-9999. */
extern int	segment_time_name(int64_t ms, char name[21], char day[11]);

/* ISO 8601 UTC with milliseconds ("2026-11-24T10:15:00.040Z"), as the database takes it. */
extern int	segment_iso_time(int64_t ms, char out[32]);

/* Whether packets of this codec can be stored in MPEG-TS as they are. */
extern int	segment_codec_storable(enum AVCodecID id);

extern Segmenter *segmenter_new(int rootfd, int camera, int segment_seconds, const AVCodecParameters *par,
								AVRational time_base, AVRational frame_rate, int64_t wall_base_ms,
								char *err, size_t errlen);

/*
 * Writes pkt (pts and dts set, in time_base; unreffed here).  When a
 * segment was closed, *closed is filled and *did_close set.  0, or -1 on a
 * storage error (message in err; the open file stays a .partial).
 */
extern int	segmenter_write(Segmenter *s, AVPacket *pkt, SegmentInfo *closed, int *did_close,
							char *err, size_t errlen);

/* Closes the open segment at its last pts plus one frame.  1 closed, 0 none open, -1 storage error. */
extern int	segmenter_finish(Segmenter *s, SegmentInfo *closed, char *err, size_t errlen);

/* Bytes written to the open segment so far. */
extern int64_t segmenter_open_bytes(const Segmenter *s);

/* Frees s; a segment still open stays on disk as a .partial. */
extern void segmenter_free(Segmenter **s);

#endif							/* VMS_INGEST_SEGMENT_H */
