/*
 * source.h: the camera side of vms-ingest.  Opens the stream (rtsp:// over
 * tcp, udp or an HTTP tunnel; rtsps:// and the HTTPS tunnel through the
 * verified TLS relay; file:// paced in real time) and hands out the packets
 * of its first video stream, from the first keyframe on, each with pts and
 * dts.  Every blocking call is bounded by the I/O timeout and gives up at
 * once when a signal or --duration asks to stop.
 */
#ifndef VMS_INGEST_SOURCE_H
#define VMS_INGEST_SOURCE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

#include "config.h"

typedef enum SourceStatus
{
	SOURCE_OK = 0,
	SOURCE_LOST,				/* unreachable, silent, or the stream ended: reconnect */
	SOURCE_AUTH,				/* the camera refused the credentials */
	SOURCE_TLS,					/* certificate not trusted, pin mismatch, handshake failed */
	SOURCE_STREAM,				/* not a usable video stream */
	SOURCE_EOF,					/* the end of a file:// source */
	SOURCE_STOPPED				/* a signal or --duration interrupted the call */
} SourceStatus;

/* What makes a blocking call give up early (the flags belong to the signal handlers). */
typedef struct SourceStop
{
	const volatile sig_atomic_t *terminate;
	const volatile sig_atomic_t *reload;
	int64_t		stop_at;		/* av_gettime_relative() time of --duration's end; 0: none */
} SourceStop;

typedef struct SourceOptions
{
	int64_t		io_timeout_us;
	const char *ca_file;		/* camera trust anchors when the database gives none */
	int			realtime;		/* file:// sources: pace reading in real time */
	SourceStop	stop;
} SourceOptions;

typedef struct Source Source;

/* Opens the camera.  SOURCE_OK and *out, or a status and a message (without credentials). */
extern SourceStatus source_open(const IngestConfig *cfg, const SourceOptions *o, Source **out,
								char *msg, size_t msglen);

/* The next video packet (the caller unrefs it), or a status and a message. */
extern SourceStatus source_read(Source *s, AVPacket *pkt, char *msg, size_t msglen);

extern const AVCodecParameters *source_codecpar(const Source *s);
extern AVRational source_time_base(const Source *s);
extern AVRational source_frame_rate(const Source *s);	/* {0, 1} when unknown */
extern int	source_is_file(const Source *s);

/* Whether a signal or --duration asks to stop now. */
extern int	source_stopping(const SourceStop *stop);

extern void source_close(Source **s);

#endif							/* VMS_INGEST_SOURCE_H */
