/*
 * source.c: opening and reading the camera (see source.h).
 *
 * The credential goes into the URL handed to libavformat, percent-encoded,
 * in memory only; that copy is wiped once libavformat has its own.  FFmpeg
 * 5.1 cannot verify a camera certificate, so FFmpeg never speaks TLS here:
 * rtsps:// and the HTTPS tunnel go through tls_relay.c (OpenSSL, verified),
 * and libavformat talks plain RTSP to the relay on 127.0.0.1.  The protocol
 * whitelist keeps FFmpeg's own TLS (and anything else) out.
 */
#define _DEFAULT_SOURCE

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libavformat/avformat.h>
#include <libavutil/time.h>
#include <openssl/crypto.h>

#include "log.h"
#include "source.h"
#include "tls_relay.h"

#define RTSP_PORT		554
#define RTSPS_PORT		322
#define MAX_TS_JUMP_S	60		/* a larger dts step is a broken stream, not a pause */
#define MAX_BAD_TS		250		/* packets in a row with dts going backwards */
#define MIN_KEY_WAIT_US	(20 * 1000000LL)	/* the first keyframe must come within this (or 3 timeouts) */
#define PACE_SLICE_US	100000	/* real-time pacing sleeps this long at most between checks */

struct Source
{
	AVFormatContext *ic;
	TlsRelay   *relay;
	int			video;			/* stream index */
	int			is_file;
	int			realtime;
	int			has_credential;
	SourceStop	stop;
	int64_t		io_timeout_us;
	int64_t		deadline;		/* interrupt the blocking call after this (av_gettime_relative) */
	int64_t		call_start;		/* when the current blocking call began */
	int			timed_out;
	int			handshake;		/* in avformat_open_input() */
	int			seen_key;
	int64_t		key_deadline;	/* the first keyframe must come before this */
	int64_t		last_dts;
	int			bad_ts;
	int64_t		pace_wall0;		/* real-time pacing of files: wall clock and dts of the first packet */
	int64_t		pace_dts0;
	AVRational	frame_rate;
	char		display[512];	/* the address without credentials, for messages */
};

/* The parts of a camera address this program records from. */
typedef struct CameraUrl
{
	char		scheme[8];		/* rtsp, rtsps or file */
	char		host[256];		/* IPv6 without brackets */
	int			ipv6;
	int			port;
	char		path[2048];		/* from the first '/' on (query included); a file path for file:// */
} CameraUrl;

int
source_stopping(const SourceStop *stop)
{
	return (stop->terminate && *stop->terminate) || (stop->reload && *stop->reload) ||
		(stop->stop_at != 0 && av_gettime_relative() >= stop->stop_at);
}

/* libavformat polls this inside every blocking wait. */
static int
interrupt_cb(void *opaque)
{
	Source	   *s = opaque;

	if (source_stopping(&s->stop))
		return 1;
	if (s->deadline != 0 && av_gettime_relative() > s->deadline)
	{
		s->timed_out = 1;
		return 1;
	}
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Strict: every character checked, lengths bounded, no userinfo. */
static int
parse_url(const char *url, CameraUrl *u, char *msg, size_t msglen)
{
	const char *p = strstr(url, "://");
	const char *auth;
	const char *end;
	size_t		n;

	memset(u, 0, sizeof(*u));
	if (p == NULL || p - url >= (ptrdiff_t) sizeof(u->scheme))
		goto bad_scheme;
	memcpy(u->scheme, url, (size_t) (p - url));
	for (n = 0; u->scheme[n]; n++)
		u->scheme[n] = (char) tolower((unsigned char) u->scheme[n]);
	if (strcmp(u->scheme, "rtsp") != 0 && strcmp(u->scheme, "rtsps") != 0 && strcmp(u->scheme, "file") != 0)
		goto bad_scheme;
	auth = p + 3;

	if (strcmp(u->scheme, "file") == 0)
	{
		const char *s;
		size_t		k = 0;

		if (strncmp(auth, "localhost/", 10) == 0)
			auth += 9;
		if (*auth != '/')
		{
			snprintf(msg, msglen, "a file:// address needs an absolute path (file:///dir/file)");
			return -1;
		}
		for (s = auth; *s; s++)
		{
			int			c = (unsigned char) *s;

			if (c == '%')
			{
				int			hi = hexval((unsigned char) s[1]);
				int			lo = hi < 0 ? -1 : hexval((unsigned char) s[2]);

				if (lo < 0 || (hi == 0 && lo == 0))
				{
					snprintf(msg, msglen, "the file:// address has a bad %%-escape");
					return -1;
				}
				c = hi << 4 | lo;
				s += 2;
			}
			if (k + 1 >= sizeof(u->path))
			{
				snprintf(msg, msglen, "the file:// address is too long");
				return -1;
			}
			u->path[k++] = (char) c;
		}
		u->path[k] = '\0';
		return 0;
	}

	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t) (end - auth)) != NULL)
	{
		snprintf(msg, msglen, "the stream address must not contain credentials (they come from vms.camera_credential)");
		return -1;
	}
	u->port = strcmp(u->scheme, "rtsps") == 0 ? RTSPS_PORT : RTSP_PORT;
	if (*auth == '[')
	{
		const char *close = memchr(auth, ']', (size_t) (end - auth));
		const char *c;

		if (close == NULL || close == auth + 1 || (size_t) (close - auth - 1) >= sizeof(u->host))
			goto bad_host;
		for (c = auth + 1; c < close; c++)
			if (!isxdigit((unsigned char) *c) && *c != ':' && *c != '.')
				goto bad_host;
		memcpy(u->host, auth + 1, (size_t) (close - auth - 1));
		u->ipv6 = 1;
		p = close + 1;
	}
	else
	{
		const char *c;

		for (c = auth; c < end && *c != ':'; c++)
			if (!isalnum((unsigned char) *c) && *c != '.' && *c != '-' && *c != '_')
				goto bad_host;
		n = (size_t) (c - auth);
		if (n == 0 || n > 253)
			goto bad_host;
		memcpy(u->host, auth, n);
		p = c;
	}
	if (p < end && *p == ':')
	{
		long		port = 0;

		if (++p == end)
			goto bad_host;
		for (; p < end; p++)
		{
			if (!isdigit((unsigned char) *p) || (port = port * 10 + (*p - '0')) > 65535)
				goto bad_host;
		}
		if (port < 1)
			goto bad_host;
		u->port = (int) port;
	}
	if (p != end)
		goto bad_host;
	n = strlen(end);
	if (n >= sizeof(u->path))
	{
		snprintf(msg, msglen, "the stream address is too long");
		return -1;
	}
	for (p = end; *p; p++)
		if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
		{
			snprintf(msg, msglen, "the stream address has a space or control character in its path");
			return -1;
		}
	memcpy(u->path, end, n + 1);
	return 0;

bad_scheme:
	snprintf(msg, msglen, "unsupported stream address: only rtsp://, rtsps:// and file:// are recorded");
	return -1;
bad_host:
	snprintf(msg, msglen, "the stream address has no valid host[:port]");
	return -1;
}

/*
 * rtsp://[user:password@]host:port/path for libavformat (malloc'd; the
 * caller wipes and frees it).  host NULL: the relay on 127.0.0.1.
 */
static char *
build_url(const IngestConfig *cfg, const CameraUrl *u, int relay_port)
{
	char	   *user = NULL;
	char	   *pass = NULL;
	char	   *url = NULL;
	char		hostport[300];
	size_t		len;

	if (relay_port > 0)
		snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", relay_port);
	else
		snprintf(hostport, sizeof(hostport), "%s%s%s:%d", u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "", u->port);
	if (cfg->password != NULL && cfg->username != NULL)
	{
		user = log_percent_encode(cfg->username);
		pass = log_percent_encode(cfg->password);
		if (user == NULL || pass == NULL)
			goto end;
	}
	len = strlen("rtsp://") + (user ? strlen(user) + strlen(pass) + 2 : 0) + strlen(hostport) + strlen(u->path) + 1;
	if ((url = malloc(len)) == NULL)
		goto end;
	snprintf(url, len, "rtsp://%s%s%s%s%s", user ? user : "", user ? ":" : "", pass ? pass : "",
			 user ? "@" : "", hostport);
	strcat(url, u->path);

end:
	if (pass != NULL)
	{
		OPENSSL_cleanse(pass, strlen(pass));
		free(pass);
	}
	free(user);
	return url;
}

/* Why a libavformat call failed, as a state and a line without credentials. */
static SourceStatus
classify(Source *s, int err, const char *what, unsigned long unauthorized_before, char *msg, size_t msglen)
{
	char		text[256];
	char		relay[512];

	if (source_stopping(&s->stop))
	{
		snprintf(msg, msglen, "interrupted");
		return SOURCE_STOPPED;
	}
	if (s->relay != NULL)
	{
		int			code = tls_relay_last_error(s->relay, relay, sizeof(relay));

		if (code == 1)
		{
			if (strncmp(relay, "camera certificate", 18) == 0)
				snprintf(msg, msglen, "%s", relay);
			else
				snprintf(msg, msglen, "camera certificate not trusted: %s", relay);
			return SOURCE_TLS;
		}
		if (code == 2)
		{
			snprintf(msg, msglen, "TLS connection to the camera failed: %s", relay);
			return SOURCE_TLS;
		}
	}
	if (err == AVERROR_HTTP_UNAUTHORIZED || log_unauthorized_count() != unauthorized_before)
	{
		if (s->has_credential)
			snprintf(msg, msglen, "camera refused the credentials (401 Unauthorized)");
		else
			snprintf(msg, msglen, "camera refused the credentials (401 Unauthorized): it has none in the database "
					 "(vms.set_camera_credential)");
		return SOURCE_AUTH;
	}
	if (err == AVERROR_HTTP_FORBIDDEN)
	{
		snprintf(msg, msglen, "camera refused access (403 Forbidden)");
		return SOURCE_AUTH;
	}
	if (s->timed_out && s->handshake)
	{
		/* Bytes kept coming (a silent peer trips the socket timeout first), but no valid answer. */
		snprintf(msg, msglen, "%s %s: no valid answer within %.1f s", what, s->display,
				 (double) (s->deadline - s->call_start) / 1e6);
		return SOURCE_STREAM;
	}
	if (s->timed_out || err == AVERROR(ETIMEDOUT) || err == AVERROR_EXIT ||
		(err == AVERROR_INVALIDDATA && !s->is_file &&
		 av_gettime_relative() - s->call_start >= s->io_timeout_us * 9 / 10))
	{
		/* libavformat's RTSP code reports a socket timeout as invalid data: the time tells. */
		snprintf(msg, msglen, "%s %s: no answer within %.1f s", what, s->display, s->io_timeout_us / 1e6);
		return SOURCE_LOST;
	}
	av_strerror(err, text, sizeof(text));
	snprintf(msg, msglen, "%s %s: %s", what, s->display, text);
	if (err == AVERROR_EOF || err == AVERROR(ECONNREFUSED) || err == AVERROR(ECONNRESET) ||
		err == AVERROR(EHOSTUNREACH) || err == AVERROR(ENETUNREACH) || err == AVERROR(EPIPE) ||
		err == AVERROR(EIO) || err == AVERROR(ENOENT) || err == AVERROR(EAGAIN) ||
		err == AVERROR(EADDRNOTAVAIL) || err == AVERROR(ENETDOWN))
		return SOURCE_LOST;
	return SOURCE_STREAM;
}

/* Starts the relay with SIGTERM/SIGINT/SIGHUP blocked, so that its thread never takes them. */
static int
start_relay(const IngestConfig *cfg, const CameraUrl *u, const SourceOptions *o, Source *s, int *port,
			char *msg, size_t msglen)
{
	TlsRelayConfig rc;
	sigset_t	block;
	sigset_t	old;
	char		err[512] = "";
	int			timeout_ms = (int) (o->io_timeout_us / 1000);
	int			ret;

	memset(&rc, 0, sizeof(rc));
	rc.host = u->host;
	rc.port = u->port;
	rc.server_name = cfg->tls_server_name;
	rc.ca_pem = cfg->tls_ca_pem;
	rc.ca_file = cfg->tls_ca_pem ? NULL : o->ca_file;
	rc.pin_sha256 = cfg->has_pin ? cfg->tls_pin : NULL;
	rc.connect_timeout_ms = timeout_ms;
	rc.io_timeout_ms = timeout_ms;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ret = tls_relay_start(&rc, &s->relay, port, err, sizeof(err));
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0)
	{
		snprintf(msg, msglen, "could not start the TLS relay for %s: %s", s->display, err);
		return -1;
	}
	return 0;
}

SourceStatus
source_open(const IngestConfig *cfg, const SourceOptions *o, Source **out, char *msg, size_t msglen)
{
	Source	   *s = NULL;
	CameraUrl	u;
	AVDictionary *opts = NULL;
	const AVDictionaryEntry *e = NULL;
	AVStream   *st;
	char	   *url = NULL;
	unsigned long unauthorized;
	SourceStatus status = SOURCE_STREAM;
	int			relay_port = 0;
	int			ret = 0;
	unsigned int i;

	*out = NULL;
	if (parse_url(cfg->stream_url, &u, msg, msglen) != 0)
		goto end;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
	{
		snprintf(msg, msglen, "out of memory");
		goto end;
	}
	s->video = -1;
	s->stop = o->stop;
	s->io_timeout_us = o->io_timeout_us;
	s->is_file = strcmp(u.scheme, "file") == 0;
	s->realtime = o->realtime;
	s->has_credential = cfg->password != NULL;
	s->last_dts = AV_NOPTS_VALUE;
	s->pace_wall0 = AV_NOPTS_VALUE;
	if (s->is_file)
		snprintf(s->display, sizeof(s->display), "file://%.400s", u.path);
	else
		snprintf(s->display, sizeof(s->display), "%s://%s%.253s%s:%d%.200s", u.scheme, u.ipv6 ? "[" : "", u.host,
				 u.ipv6 ? "]" : "", u.port, u.path);

	if (s->is_file)
	{
		url = strdup(u.path);
		ret = av_dict_set(&opts, "protocol_whitelist", "file", 0);
	}
	else
	{
		const char *transport = cfg->transport;

		/* FFmpeg's own TLS never verifies: TLS goes through our relay. */
		if (strcmp(u.scheme, "rtsps") == 0 || strcmp(cfg->transport, "https") == 0)
		{
			if (start_relay(cfg, &u, o, s, &relay_port, msg, msglen) != 0)
			{
				status = SOURCE_TLS;
				goto end;
			}
			transport = strcmp(u.scheme, "rtsps") == 0 ? "tcp" : "http";
		}
		url = build_url(cfg, &u, relay_port);
		/* The whitelist keeps FFmpeg's unverified TLS (and anything else) out. */
		if ((ret = av_dict_set(&opts, "rtsp_transport", transport, 0)) >= 0 &&
			(ret = av_dict_set_int(&opts, "timeout", o->io_timeout_us, 0)) >= 0 &&
			(ret = av_dict_set(&opts, "allowed_media_types", "video", 0)) >= 0)
			ret = av_dict_set(&opts, "protocol_whitelist", "rtsp,rtp,udp,tcp,http", 0);
	}
	if (ret < 0 || url == NULL || (s->ic = avformat_alloc_context()) == NULL)
	{
		snprintf(msg, msglen, "out of memory");
		goto end;
	}
	s->ic->interrupt_callback.callback = interrupt_cb;
	s->ic->interrupt_callback.opaque = s;

	unauthorized = log_unauthorized_count();
	/* Connecting and the RTSP handshake: twice the I/O timeout. */
	s->call_start = av_gettime_relative();
	s->deadline = s->call_start + 2 * o->io_timeout_us;
	s->timed_out = 0;
	s->handshake = 1;
	ret = avformat_open_input(&s->ic, url, NULL, &opts);
	if (ret < 0)
	{
		status = classify(s, ret, "could not open", unauthorized, msg, msglen);
		goto end;
	}
	s->handshake = 0;
	while ((e = av_dict_get(opts, "", e, AV_DICT_IGNORE_SUFFIX)) != NULL)
		log_debug("input option not used: %s", e->key);
	for (i = 0; i < s->ic->nb_streams; i++)
	{
		st = s->ic->streams[i];
		if (s->video < 0 && st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
			!(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
			s->video = (int) i;
		else
			st->discard = AVDISCARD_ALL;
	}
	if (s->video < 0)
	{
		snprintf(msg, msglen, "%s has no video stream", s->display);
		goto end;
	}
	s->call_start = av_gettime_relative();
	s->deadline = s->call_start + 2 * o->io_timeout_us;
	s->timed_out = 0;
	ret = avformat_find_stream_info(s->ic, NULL);
	if (ret < 0)
	{
		status = classify(s, ret, "could not read the stream of", unauthorized, msg, msglen);
		goto end;
	}
	s->deadline = 0;
	st = s->ic->streams[s->video];
	if (st->codecpar->codec_id == AV_CODEC_ID_NONE || st->codecpar->width <= 0 || st->codecpar->height <= 0 ||
		st->time_base.num <= 0 || st->time_base.den <= 0)
	{
		snprintf(msg, msglen, "%s has no usable video stream (unknown codec or picture size)", s->display);
		goto end;
	}
	s->frame_rate = st->avg_frame_rate;
	if (s->frame_rate.num <= 0 || s->frame_rate.den <= 0)
		s->frame_rate = st->r_frame_rate;
	if (s->frame_rate.num <= 0 || s->frame_rate.den <= 0 || av_q2d(s->frame_rate) > 1000)
		s->frame_rate = (AVRational) {0, 1};
	s->key_deadline = av_gettime_relative() + FFMAX(MIN_KEY_WAIT_US, 3 * o->io_timeout_us);
	log_info("opened %s: %s %dx%d", s->display, avcodec_get_name(st->codecpar->codec_id),
			 st->codecpar->width, st->codecpar->height);
	*out = s;
	s = NULL;
	status = SOURCE_OK;

end:
	if (url != NULL)
	{
		OPENSSL_cleanse(url, strlen(url));
		free(url);
	}
	av_dict_free(&opts);
	source_close(&s);
	return status;
}

/* Sleeps until the packet's time has come; 0, or -1 when asked to stop. */
static int
pace(Source *s, const AVPacket *pkt)
{
	AVRational	tb = s->ic->streams[s->video]->time_base;
	int64_t		target;
	int64_t		now;

	if (s->pace_wall0 == AV_NOPTS_VALUE)
	{
		s->pace_wall0 = av_gettime_relative();
		s->pace_dts0 = pkt->dts;
	}
	target = s->pace_wall0 + av_rescale_q(pkt->dts - s->pace_dts0, tb, AV_TIME_BASE_Q);
	while ((now = av_gettime_relative()) < target)
	{
		if (source_stopping(&s->stop))
			return -1;
		av_usleep((unsigned) FFMIN(target - now, PACE_SLICE_US));
	}
	return 0;
}

SourceStatus
source_read(Source *s, AVPacket *pkt, char *msg, size_t msglen)
{
	AVRational	tb = s->ic->streams[s->video]->time_base;
	int64_t		eagain_deadline = 0;
	int			ret;

	for (;;)
	{
		if (source_stopping(&s->stop))
		{
			snprintf(msg, msglen, "interrupted");
			return SOURCE_STOPPED;
		}
		s->call_start = av_gettime_relative();
		s->deadline = s->call_start + s->io_timeout_us;
		s->timed_out = 0;
		ret = av_read_frame(s->ic, pkt);
		s->deadline = 0;
		if (ret == AVERROR(EAGAIN))
		{
			/* Nothing yet: try again shortly, within one I/O timeout in all. */
			if (eagain_deadline == 0)
				eagain_deadline = s->call_start + s->io_timeout_us;
			if (av_gettime_relative() < eagain_deadline)
			{
				av_usleep(10000);
				continue;
			}
		}
		eagain_deadline = 0;
		if (ret < 0)
		{
			SourceStatus st;

			if (ret == AVERROR_EOF && s->is_file)
			{
				snprintf(msg, msglen, "end of %s", s->display);
				return SOURCE_EOF;
			}
			if (ret == AVERROR_EOF)
			{
				snprintf(msg, msglen, "%s ended the stream", s->display);
				st = SOURCE_LOST;
			}
			else
				st = classify(s, ret, "lost", log_unauthorized_count(), msg, msglen);
			/* A stream that never reached a keyframe is no usable stream. */
			if (st == SOURCE_LOST && !s->seen_key)
				st = SOURCE_STREAM;
			return st;
		}
		if (pkt->stream_index != s->video || pkt->pts == AV_NOPTS_VALUE || pkt->dts == AV_NOPTS_VALUE ||
			pkt->size <= 0 || pkt->pts < pkt->dts)
		{
			av_packet_unref(pkt);
			continue;
		}
		if (!s->seen_key)
		{
			if (!(pkt->flags & AV_PKT_FLAG_KEY))
			{
				av_packet_unref(pkt);
				if (av_gettime_relative() > s->key_deadline)
				{
					snprintf(msg, msglen, "%s sent no keyframe within %.0f s", s->display,
							 (double) FFMAX(MIN_KEY_WAIT_US, 3 * s->io_timeout_us) / 1e6);
					return SOURCE_STREAM;
				}
				continue;
			}
			s->seen_key = 1;
		}
		if (s->last_dts != AV_NOPTS_VALUE && pkt->dts <= s->last_dts)
		{
			av_packet_unref(pkt);
			if (++s->bad_ts > MAX_BAD_TS)
			{
				snprintf(msg, msglen, "%s: timestamps keep going backwards", s->display);
				return SOURCE_STREAM;
			}
			continue;
		}
		if (s->last_dts != AV_NOPTS_VALUE &&
			av_compare_ts(pkt->dts - s->last_dts, tb, MAX_TS_JUMP_S, (AVRational) {1, 1}) > 0)
		{
			av_packet_unref(pkt);
			snprintf(msg, msglen, "%s: timestamps jump by more than %d s", s->display, MAX_TS_JUMP_S);
			return SOURCE_STREAM;
		}
		s->bad_ts = 0;
		s->last_dts = pkt->dts;
		if (s->is_file && s->realtime && pace(s, pkt) != 0)
		{
			av_packet_unref(pkt);
			snprintf(msg, msglen, "interrupted");
			return SOURCE_STOPPED;
		}
		return SOURCE_OK;
	}
}

const AVCodecParameters *
source_codecpar(const Source *s)
{
	return s->ic->streams[s->video]->codecpar;
}

AVRational
source_time_base(const Source *s)
{
	return s->ic->streams[s->video]->time_base;
}

AVRational
source_frame_rate(const Source *s)
{
	return s->frame_rate;
}

int
source_is_file(const Source *s)
{
	return s->is_file;
}

void
source_close(Source **sp)
{
	Source	   *s = *sp;

	if (s == NULL)
		return;
	avformat_close_input(&s->ic);
	if (s->relay != NULL)
		tls_relay_stop(&s->relay);
	free(s);
	*sp = NULL;
}
