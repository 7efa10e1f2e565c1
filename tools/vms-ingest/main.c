/*
 * vms-ingest: the recording worker of pg_vms.  One process records one
 * camera: it reads the camera's settings and credential from the extension,
 * pulls the stream, cuts it at keyframes into MPEG-TS segments hashed while
 * written, makes them durable and registers them; a database thread
 * (registrar.c) does the registering, the reporting and the retention purge.
 *
 *   main.c       options, signals, the capture loop, exit codes
 *   source.c     the camera (RTSP, the TLS relay, file:// sources)
 *   segment.c    the segment writer
 *   registrar.c  the database thread
 *   recovery.c   what a previous run left on disk
 *   config.c     the connection and the camera's configuration
 *   log.c        log lines, FFmpeg's log, redaction
 *
 * Exit codes: 0 stopped on request; 1 usage; 2 database at startup; 3
 * stopped while the camera was failing; 4 local storage error.  See
 * tools/README.md and docs/ingest.md.
 */
#define _GNU_SOURCE				/* prctl, timegm */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/time.h>

#include "burnin.h"
#include "config.h"
#include "log.h"
#include "numparse.h"
#include "recovery.h"
#include "registrar.h"
#include "segment.h"
#include "source.h"

#define PROGVERSION			"1.4"

#define EXIT_STOPPED		0
#define EXIT_USAGE			1
#define EXIT_DB				2
#define EXIT_CAMERA			3
#define EXIT_STORAGE		4

#define DRAIN_TIMEOUT_US	(10 * 1000000LL)	/* registrations waited for at exit */
#define SLEEP_SLICE_US		100000
#define FUTURE_SLACK_MS		(5 * 60 * 1000LL)	/* vms.register_segment() refuses ends beyond this */

/* Set by the signal handlers only; every blocking call polls them. */
static volatile sig_atomic_t terminate_flag = 0;
static volatile sig_atomic_t reload_flag = 0;

typedef struct Options
{
	int			camera;
	const char *root;
	const char *dbname;
	long long	backlog_bytes;
	const char *ca_file;
	long		io_timeout_s;
	long		backoff_max_s;
	long		purge_interval_s;
	long		duration_s;
	int64_t		start_time_ms;	/* -1: now */
	int			realtime;
	int			exit_at_eof;
	int			insecure_db;
	int			verbose;
} Options;

/* Why capture() or the open returned. */
typedef enum Outcome
{
	OUT_OK,						/* carry on */
	OUT_STOP,					/* a signal or --duration (look at the flags) */
	OUT_EOF,					/* file:// source at its end */
	OUT_FAILED,					/* camera problem: state and message set */
	OUT_BACKLOG,				/* too many unregistered bytes */
	OUT_STORAGE					/* local storage error: exit 4 */
} Outcome;

typedef struct Worker
{
	Options		o;
	IngestConfig cfg;
	Registrar  *reg;
	int			rootfd;
	SourceOptions so;
	char		state[16];		/* last state reported */
	const char *fail_state;		/* of the last failure */
	char		msg[1024];		/* of the last failure */
	int			failing;		/* no recording since the last camera error */
	int64_t		last_end_ms;	/* end of the last closed segment, -1 none */
	const char *gap_reason;		/* a gap to register once recording resumes */
	int64_t		gap_from_ms;	/* a gap waiting for the first segment after it to be closed */
	int64_t		gap_until_ms;
	const char *gap_pending;
	int64_t		file_base_ms;	/* file:// sources: time of the next first frame, -1 now */
	int			eof_failure;	/* the failure was a file:// source ending unrecorded */
} Worker;

static void
on_signal(int signo)
{
	if (signo == SIGHUP)
		reload_flag = 1;
	else
		terminate_flag = 1;
}

static int64_t
now_ms(void)
{
	return av_gettime() / 1000;
}

static int
stopping(const Worker *w)
{
	return terminate_flag || (w->so.stop.stop_at != 0 && av_gettime_relative() >= w->so.stop.stop_at);
}

/* Sleeps, waking early for a signal or --duration's end. */
static void
sleep_us(const Worker *w, int64_t us)
{
	int64_t		until = av_gettime_relative() + us;
	int64_t		now;

	while ((now = av_gettime_relative()) < until && !source_stopping(&w->so.stop))
		av_usleep((unsigned) (until - now < SLEEP_SLICE_US ? until - now : SLEEP_SLICE_US));
}

/* Reports a state once per change (the extension audits each change). */
static void
report(Worker *w, const char *state, const char *detail)
{
	if (strcmp(w->state, state) == 0)
		return;
	snprintf(w->state, sizeof(w->state), "%s", state);
	if (registrar_report(w->reg, state, detail) != 0)
		log_error("out of memory: state %s not reported", state);
}

static const char *
state_of(SourceStatus st)
{
	switch (st)
	{
		case SOURCE_AUTH:
			return "auth_failed";
		case SOURCE_TLS:
			return "tls_failed";
		case SOURCE_STREAM:
			return "stream_error";
		default:
			return "reconnecting";
	}
}

/* A camera failure: logged, reported, and the next recording is preceded by a gap. */
static void
camera_failed(Worker *w, SourceStatus st, const char *msg)
{
	w->fail_state = state_of(st);
	if (msg != w->msg)
		snprintf(w->msg, sizeof(w->msg), "%s", msg);
	log_error("%s", msg);
	report(w, w->fail_state, msg);
	w->failing = 1;
	if (w->last_end_ms >= 0 && w->gap_reason == NULL)
		w->gap_reason = "camera_lost";
}

/*
 * A closed segment goes to the registrar; it is the new end of the
 * recording.  A gap before it follows it into the queue: a gap is only ever
 * registered once the segment it ends at is (a worker killed before that
 * leaves no gap "until" a recording that does not exist).
 */
static int
segment_closed(Worker *w, const SegmentInfo *info)
{
	log_debug("closed segment %s (%lld bytes)", info->path, (long long) info->bytes);
	w->last_end_ms = info->end_ms;
	if (registrar_add_segment(w->reg, info) != 0)
	{
		log_error("out of memory: segment %s not queued for registration (it stays on disk)", info->path);
		return -1;
	}
	if (w->gap_pending != NULL)
	{
		if (registrar_add_gap(w->reg, w->gap_from_ms, w->gap_until_ms, w->gap_pending) != 0)
			log_error("out of memory: recording gap not queued");
		w->gap_pending = NULL;
	}
	return 0;
}

/* The first packet of a recording: where it sits in time, and the gap before it. */
static int64_t
recording_base(Worker *w, const Source *src)
{
	int64_t		base = now_ms();

	if (source_is_file(src) && w->file_base_ms >= 0)
		base = w->file_base_ms;
	/* Never before the end of the last segment: segments must not overlap. */
	if (w->last_end_ms >= 0 && base < w->last_end_ms)
		base = w->last_end_ms;
	w->gap_pending = NULL;
	if (w->gap_reason != NULL && w->last_end_ms >= 0 && base > w->last_end_ms)
	{
		w->gap_pending = w->gap_reason;
		w->gap_from_ms = w->last_end_ms;
		w->gap_until_ms = base;
	}
	w->gap_reason = NULL;
	return base;
}

/* Whether the unregistered bytes are over --backlog-bytes (the open segment counts once the database lags). */
static int
over_backlog(Worker *w, const Segmenter *seg)
{
	int64_t		queued = registrar_backlog_bytes(w->reg);

	return queued > 0 && queued + (seg ? segmenter_open_bytes(seg) : 0) > w->o.backlog_bytes;
}

/* Writes one packet (with burn-in: one output packet), opening the recording with the first. */
static Outcome
write_packet(Worker *w, const Source *src, Segmenter **seg, const AVCodecParameters *par, AVRational tb,
			 AVPacket *pkt)
{
	SegmentInfo info;
	char		err[1024];
	int			closed = 0;

	if (*seg == NULL)
	{
		const AVCodecParameters *in = source_codecpar(src);

		*seg = segmenter_new(w->rootfd, w->o.camera, w->cfg.segment_seconds, par, tb, source_frame_rate(src),
							 recording_base(w, src), err, sizeof(err));
		if (*seg == NULL)
		{
			log_error("%s", err);
			av_packet_unref(pkt);
			return OUT_STORAGE;
		}
		w->failing = 0;
		snprintf(err, sizeof(err), "%s %dx%d%s", avcodec_get_name(in->codec_id), in->width, in->height,
				 w->cfg.burn_in ? ", privacy zones burned in" : "");
		log_info("recording (%s)", err);
		report(w, "recording", err);
	}
	if (segmenter_write(*seg, pkt, &info, &closed, err, sizeof(err)) != 0)
	{
		if (closed)
			segment_closed(w, &info);
		log_error("%s", err);
		return OUT_STORAGE;
	}
	if (closed && segment_closed(w, &info) != 0)
		return OUT_STORAGE;
	return OUT_OK;
}

/* Writes everything the burn-in has ready. */
static Outcome
drain_burnin(Worker *w, const Source *src, Segmenter **seg, BurnIn *bi, AVPacket *out)
{
	const AVCodecParameters *par = burnin_output_params(bi);
	AVRational	tb = burnin_output_time_base(bi);
	Outcome		oc;
	int			ret;

	while ((ret = burnin_receive_packet(bi, out)) == 0)
	{
		if (out->pts == AV_NOPTS_VALUE || out->dts == AV_NOPTS_VALUE)
		{
			av_packet_unref(out);
			continue;
		}
		if ((oc = write_packet(w, src, seg, par, tb, out)) != OUT_OK)
			return oc;
	}
	if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
	{
		char		text[128];

		av_strerror(ret, text, sizeof(text));
		snprintf(w->msg, sizeof(w->msg), "privacy burn-in failed: %s", text);
		w->fail_state = "stream_error";
		return OUT_FAILED;
	}
	return OUT_OK;
}

/* Records from an open source until it fails, ends, or we are told to stop. */
static Outcome
capture(Worker *w, Source *src)
{
	const AVCodecParameters *par = source_codecpar(src);
	AVRational	tb = source_time_base(src);
	AVPacket   *pkt = av_packet_alloc();
	AVPacket   *out = av_packet_alloc();
	BurnIn	   *bi = NULL;
	Segmenter  *seg = NULL;
	SegmentInfo info;
	char		err[768];
	Outcome		oc = OUT_OK;
	SourceStatus st = SOURCE_OK;
	int			got = 0;		/* packets from the source */

	if (pkt == NULL || out == NULL)
	{
		log_error("out of memory");
		oc = OUT_STORAGE;
		goto end;
	}
	if (w->cfg.burn_in)
	{
		sigset_t	block;
		sigset_t	old;

		/* Encoder and decoder threads never take our signals. */
		sigemptyset(&block);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		bi = burnin_open(par, tb, w->cfg.zones, w->cfg.nzones, w->cfg.segment_seconds, err, sizeof(err));
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (bi == NULL)
		{
			snprintf(w->msg, sizeof(w->msg), "privacy burn-in not possible: %s", err);
			w->fail_state = "stream_error";
			oc = OUT_FAILED;
			goto end;
		}
	}
	else if (!segment_codec_storable(par->codec_id))
	{
		snprintf(w->msg, sizeof(w->msg), "%s video cannot be stored as it is (H.264, H.265, MPEG-4 and MPEG-2 can); "
				 "enable burn_in_privacy to re-encode it", avcodec_get_name(par->codec_id));
		w->fail_state = "stream_error";
		oc = OUT_FAILED;
		goto end;
	}

	for (;;)
	{
		st = source_read(src, pkt, w->msg, sizeof(w->msg));
		if (st != SOURCE_OK)
			break;
		got = 1;
		if (bi != NULL)
		{
			int			ret = burnin_send_packet(bi, pkt);

			av_packet_unref(pkt);
			if (ret < 0 && ret != AVERROR(EAGAIN))
			{
				char		text[128];

				av_strerror(ret, text, sizeof(text));
				snprintf(w->msg, sizeof(w->msg), "privacy burn-in could not decode the stream: %s", text);
				w->fail_state = "stream_error";
				oc = OUT_FAILED;
				break;
			}
			if ((oc = drain_burnin(w, src, &seg, bi, out)) != OUT_OK)
				break;
		}
		else if ((oc = write_packet(w, src, &seg, par, tb, pkt)) != OUT_OK)
			break;
		if (over_backlog(w, seg))
		{
			oc = OUT_BACKLOG;
			break;
		}
	}
	if (oc == OUT_OK)
	{
		switch (st)
		{
			case SOURCE_OK:
			case SOURCE_STOPPED:
				oc = OUT_STOP;
				break;
			case SOURCE_EOF:
				if (!got)
				{
					/* Nothing recorded: starting over at once would spin. */
					snprintf(w->msg, sizeof(w->msg), "the file source ended before its first keyframe");
					w->fail_state = "stream_error";
					w->eof_failure = 1;
					oc = OUT_FAILED;
				}
				else
					oc = OUT_EOF;
				break;
			default:
				w->fail_state = state_of(st);
				oc = OUT_FAILED;
				break;
		}
	}
	/* What the encoder still holds belongs to this recording. */
	if (bi != NULL && oc != OUT_STORAGE && burnin_send_packet(bi, NULL) >= 0)
	{
		Outcome		d = drain_burnin(w, src, &seg, bi, out);

		if (d == OUT_STORAGE)
			oc = OUT_STORAGE;
	}
	/* The open segment ends at its last packet (plus one frame). */
	if (seg != NULL && oc != OUT_STORAGE)
	{
		int			r = segmenter_finish(seg, &info, err, sizeof(err));

		if (r < 0)
		{
			log_error("%s", err);
			oc = OUT_STORAGE;
		}
		else if (r > 0 && segment_closed(w, &info) != 0)
			oc = OUT_STORAGE;
	}
	if (seg != NULL && oc == OUT_EOF)
		w->file_base_ms = w->last_end_ms;	/* a file starting over continues the timeline */

end:
	segmenter_free(&seg);
	burnin_close(&bi);
	av_packet_free(&pkt);
	av_packet_free(&out);
	return oc;
}

/* SIGHUP: settings and credential again.  1 when the camera is now disabled. */
static int
reload(Worker *w)
{
	IngestConfig cfg;
	PGconn	   *conn;
	char		err[1024];
	char		sqlstate[6];

	conn = db_connect(w->o.dbname, w->o.insecure_db, err, sizeof(err));
	if (conn == NULL)
	{
		log_error("could not re-read the configuration: %s; keeping the current one", err);
		return 0;
	}
	if (config_load(conn, w->o.camera, &cfg, err, sizeof(err), sqlstate) != 0)
	{
		log_error("could not re-read the configuration: %s%s%s; keeping the current one",
				  sqlstate[0] ? sqlstate : "", sqlstate[0] ? ": " : "", err);
		PQfinish(conn);
		return 0;
	}
	PQfinish(conn);
	config_free(&w->cfg);
	w->cfg = cfg;
	if (log_set_secret(w->cfg.username, w->cfg.password) != 0)
		log_warning("out of memory: redaction of the new credential may be incomplete");
	log_info("configuration re-read (SIGHUP)");
	if (!w->cfg.enabled)
	{
		log_info("camera is disabled; stopping");
		return 1;
	}
	return 0;
}

/* The capture loop: open, record, and on failure back off and try again.  Returns the exit code. */
static int
run(Worker *w)
{
	int			attempt = 0;
	int			code = EXIT_STOPPED;

	for (;;)
	{
		Source	   *src = NULL;
		SourceStatus st;
		Outcome		oc;

		if (stopping(w))
			break;
		if (reload_flag)
		{
			reload_flag = 0;
			if (reload(w))
				break;
			attempt = 0;
			continue;
		}
		if (registrar_backlog_bytes(w->reg) > w->o.backlog_bytes)
		{
			char		detail[128];

			snprintf(detail, sizeof(detail), "%lld unregistered bytes exceed --backlog-bytes %lld; recording stopped",
					 (long long) registrar_backlog_bytes(w->reg), w->o.backlog_bytes);
			log_warning("%s until the database catches up", detail);
			report(w, "backlog", detail);
			while (registrar_backlog_bytes(w->reg) > 0 && !stopping(w) && !reload_flag)
				sleep_us(w, 200000);
			if (registrar_backlog_bytes(w->reg) == 0)
				log_info("backlog registered; recording resumes");
			if (w->last_end_ms >= 0)
				w->gap_reason = "database_backlog_full";
			continue;
		}

		st = source_open(&w->cfg, &w->so, &src, w->msg, sizeof(w->msg));
		if (st == SOURCE_STOPPED)
			continue;
		if (st != SOURCE_OK)
			oc = OUT_FAILED;
		else
		{
			oc = capture(w, src);
			if (oc == OUT_FAILED)
				st = strcmp(w->fail_state, "auth_failed") == 0 ? SOURCE_AUTH :
					strcmp(w->fail_state, "tls_failed") == 0 ? SOURCE_TLS :
					strcmp(w->fail_state, "stream_error") == 0 ? SOURCE_STREAM : SOURCE_LOST;
			if (!w->failing)
				attempt = 0;	/* it recorded: the next failure starts the backoff afresh */
		}
		source_close(&src);

		if (oc == OUT_STORAGE)
		{
			code = EXIT_STORAGE;
			break;
		}
		if (oc == OUT_EOF)
		{
			if (w->o.exit_at_eof)
			{
				log_info("end of the file source (--exit-at-eof)");
				break;
			}
			continue;			/* a file source starts over */
		}
		if (oc == OUT_STOP)
		{
			if (reload_flag && w->last_end_ms >= 0)
				w->gap_reason = "reload";
			continue;
		}
		if (oc == OUT_BACKLOG)
			continue;
		camera_failed(w, st, w->msg);
		if (w->eof_failure && w->o.exit_at_eof)
			break;
		w->eof_failure = 0;
		{
			int64_t		delay = backoff_delay_us(attempt++, (int) w->o.backoff_max_s);

			log_info("retrying in %.1f s", (double) delay / 1e6);
			sleep_us(w, delay);
		}
	}
	if (code == EXIT_STOPPED && w->failing)
		code = EXIT_CAMERA;
	return code;
}

/* A whole decimal number in [min, max], nothing else. */
/*
 * --start-time: "YYYY-MM-DD[T ]HH:MM:SS[.fff]" with "Z", "+HH:MM", "-HH:MM"
 * or nothing (UTC).  Unix ms, or -1.
 */
static int64_t
parse_time(const char *s)
{
	struct tm	tm;
	int			y, mo, d, h, mi, sec;
	int			ms = 0;
	int			scale = 100;
	int			off = 0;
	time_t		t;
	const char *p;

	if (strlen(s) < 19 || (y = parse_fixed_digits(s, 4)) < 0 || s[4] != '-' || (mo = parse_fixed_digits(s + 5, 2)) < 0 || s[7] != '-' ||
		(d = parse_fixed_digits(s + 8, 2)) < 0 || (s[10] != 'T' && s[10] != ' ') || (h = parse_fixed_digits(s + 11, 2)) < 0 ||
		s[13] != ':' || (mi = parse_fixed_digits(s + 14, 2)) < 0 || s[16] != ':' || (sec = parse_fixed_digits(s + 17, 2)) < 0)
		return -1;
	p = s + 19;
	if (*p == '.')
	{
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++)
		{
			ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			oh;
		int			om;

		if ((oh = parse_fixed_digits(p + 1, 2)) < 0 || p[3] != ':' || (om = parse_fixed_digits(p + 4, 2)) < 0 || oh > 23 || om > 59)
			return -1;
		off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
		p += 6;
	}
	if (*p != '\0' || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t) -1 || tm.tm_mday != d)
		return -1;
	return ((int64_t) t - (int64_t) off * 60) * 1000 + ms;
}

/* The connection string holds a password (it would show in the process list). */
static int
conninfo_has_password(const char *dbname)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	char	   *errmsg = NULL;
	int			found = 0;

	if (strchr(dbname, '=') == NULL && strncmp(dbname, "postgresql://", 13) != 0 &&
		strncmp(dbname, "postgres://", 11) != 0)
		return 0;
	opts = PQconninfoParse(dbname, &errmsg);
	if (opts == NULL)
	{
		PQfreemem(errmsg);
		return -1;
	}
	for (opt = opts; opt->keyword != NULL; opt++)
		if (strcmp(opt->keyword, "password") == 0 && opt->val != NULL && opt->val[0] != '\0')
			found = 1;
	PQconninfoFree(opts);
	return found;
}

static void
usage(FILE *out)
{
	fprintf(out,
			"vms-ingest records one camera into MPEG-TS segments and registers them in pg_vms.\n"
			"\n"
			"Usage: vms-ingest --camera ID --storage-root DIR [OPTION]...\n"
			"\n"
			"  --camera ID              the camera (vms.cameras.id) assigned to this recorder\n"
			"  --storage-root DIR       where segments are written: DIR/<camera>/<YYYY-MM-DD>/\n"
			"  --dbname CONNINFO        database name or connection string, without a password\n"
			"                           (default: PG* environment, service file, ~/.pgpass)\n"
			"  --backlog-bytes N        unregistered bytes kept while the database is away\n"
			"                           (default 2147483648)\n"
			"  --ca-file PEM            camera trust anchors when the database gives none\n"
			"  --io-timeout SECONDS     bound on every blocking read or connect (default 5)\n"
			"  --backoff-max SECONDS    reconnect backoff cap (default 60)\n"
			"  --purge-interval SECONDS removal of files retention released (default 300; 0: never)\n"
			"  --duration SECONDS       stop as on SIGTERM after this long\n"
			"  --start-time TIMESTAMP   file:// sources: wall-clock time of the first frame\n"
			"                           (ISO 8601, UTC unless an offset is given; default now)\n"
			"  --no-realtime            file:// sources: read as fast as possible\n"
			"  --exit-at-eof            file:// sources: stop at the end instead of starting over\n"
			"  --insecure-db            allow a TCP database connection without TLS\n"
			"  --verbose                debug lines, and FFmpeg's informational ones\n"
			"  --help, --version\n"
			"\n"
			"Signals: SIGTERM/SIGINT close and register the current segment and exit;\n"
			"SIGHUP re-reads the settings and credential and reconnects.\n"
			"Exit status: 0 stopped on request; 1 usage; 2 database at startup; 3 stopped\n"
			"while the camera was failing; 4 local storage error.\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"camera", required_argument, NULL, 'c'},
		{"storage-root", required_argument, NULL, 'r'},
		{"dbname", required_argument, NULL, 'd'},
		{"backlog-bytes", required_argument, NULL, 1},
		{"ca-file", required_argument, NULL, 2},
		{"io-timeout", required_argument, NULL, 3},
		{"backoff-max", required_argument, NULL, 4},
		{"purge-interval", required_argument, NULL, 5},
		{"duration", required_argument, NULL, 6},
		{"start-time", required_argument, NULL, 7},
		{"no-realtime", no_argument, NULL, 8},
		{"exit-at-eof", no_argument, NULL, 9},
		{"insecure-db", no_argument, NULL, 10},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	Worker		w;
	Options    *o = &w.o;
	struct sigaction sa;
	struct rlimit nocore = {0, 0};
	PGconn	   *conn = NULL;
	RegistrarOptions ro;
	char		err[1024];
	char		sqlstate[6] = "";
	int64_t		resume_ms = -1;
	int			code = EXIT_STOPPED;
	int			c;

	/* No core file, no ptrace by other users: the credential lives in this memory. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &nocore);

	memset(&w, 0, sizeof(w));
	w.rootfd = -1;
	w.last_end_ms = -1;
	w.file_base_ms = -1;
	o->backlog_bytes = 2147483648LL;
	o->io_timeout_s = 5;
	o->backoff_max_s = 60;
	o->purge_interval_s = 300;
	o->start_time_ms = -1;
	o->realtime = 1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:r:d:vhV", longopts, NULL)) != -1)
	{
		long		v;

		switch (c)
		{
			case 'c':
				if (parse_long(optarg, 1, INT_MAX, &v) != 0)
				{
					fprintf(stderr, "vms-ingest: invalid --camera \"%s\": a positive whole number\n", optarg);
					return EXIT_USAGE;
				}
				o->camera = (int) v;
				break;
			case 'r':
				o->root = optarg;
				break;
			case 'd':
				o->dbname = optarg;
				break;
			case 1:
				if (parse_int64(optarg, 1, 1LL << 60, &o->backlog_bytes) != 0)
				{
					fprintf(stderr, "vms-ingest: invalid --backlog-bytes \"%s\": a positive number of bytes\n", optarg);
					return EXIT_USAGE;
				}
				break;
			case 2:
				o->ca_file = optarg;
				break;
			case 3:
				if (parse_long(optarg, 1, 3600, &o->io_timeout_s) != 0)
				{
					fprintf(stderr, "vms-ingest: invalid --io-timeout \"%s\": 1 to 3600 seconds\n", optarg);
					return EXIT_USAGE;
				}
				break;
			case 4:
				if (parse_long(optarg, 1, 86400, &o->backoff_max_s) != 0)
				{
					fprintf(stderr, "vms-ingest: invalid --backoff-max \"%s\": 1 to 86400 seconds\n", optarg);
					return EXIT_USAGE;
				}
				break;
			case 5:
				if (parse_long(optarg, 0, 604800, &o->purge_interval_s) != 0)
				{
					fprintf(stderr, "vms-ingest: invalid --purge-interval \"%s\": 0 to 604800 seconds\n", optarg);
					return EXIT_USAGE;
				}
				break;
			case 6:
				if (parse_long(optarg, 1, 315360000L, &o->duration_s) != 0)
				{
					fprintf(stderr, "vms-ingest: invalid --duration \"%s\": a positive number of seconds\n", optarg);
					return EXIT_USAGE;
				}
				break;
			case 7:
				if ((o->start_time_ms = parse_time(optarg)) < 0)
				{
					fprintf(stderr, "vms-ingest: invalid --start-time \"%s\": YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM]\n",
							optarg);
					return EXIT_USAGE;
				}
				break;
			case 8:
				o->realtime = 0;
				break;
			case 9:
				o->exit_at_eof = 1;
				break;
			case 10:
				o->insecure_db = 1;
				break;
			case 'v':
				o->verbose = 1;
				break;
			case 'h':
				usage(stdout);
				return EXIT_STOPPED;
			case 'V':
				printf("vms-ingest %s\n", PROGVERSION);
				return EXIT_STOPPED;
			case ':':
				fprintf(stderr, "vms-ingest: option \"%s\" needs a value (try \"vms-ingest --help\")\n", argv[optind - 1]);
				return EXIT_USAGE;
			default:
				fprintf(stderr, "vms-ingest: unknown option \"%s\" (try \"vms-ingest --help\")\n", argv[optind - 1]);
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "vms-ingest: unexpected argument \"%s\"\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (o->camera == 0 || o->root == NULL || *o->root == '\0')
	{
		fprintf(stderr, "vms-ingest: --camera and --storage-root are required (try \"vms-ingest --help\")\n");
		return EXIT_USAGE;
	}
	if (o->dbname != NULL && conninfo_has_password(o->dbname) != 0)
	{
		fprintf(stderr, "vms-ingest: refusing --dbname: it is invalid or holds a password (others can read the "
				"command line); use ~/.pgpass, PGPASSFILE or a client certificate\n");
		return EXIT_USAGE;
	}
	log_init(o->camera, o->verbose);

	w.rootfd = open(o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.rootfd < 0)
	{
		log_error("could not open the storage root \"%s\": %s", o->root, strerror(errno));
		return (errno == ENOENT || errno == ENOTDIR) ? EXIT_USAGE : EXIT_STORAGE;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: a blocking call returns at once */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	w.so.io_timeout_us = (int64_t) o->io_timeout_s * 1000000;
	w.so.ca_file = o->ca_file;
	w.so.realtime = o->realtime;
	w.so.stop.terminate = &terminate_flag;
	w.so.stop.reload = &reload_flag;
	w.so.stop.stop_at = o->duration_s > 0 ? av_gettime_relative() + (int64_t) o->duration_s * 1000000 : 0;
	w.file_base_ms = o->start_time_ms;

	/* The database at startup: any failure here is exit 2. */
	conn = db_connect(o->dbname, o->insecure_db, err, sizeof(err));
	if (conn == NULL)
	{
		log_error("%s", err);
		code = EXIT_DB;
		goto end;
	}
	if (config_load(conn, o->camera, &w.cfg, err, sizeof(err), sqlstate) != 0)
	{
		log_error("%s", err);
		code = EXIT_DB;
		goto end;
	}
	if (log_set_secret(w.cfg.username, w.cfg.password) != 0)
	{
		log_error("out of memory");
		code = EXIT_STORAGE;
		goto end;
	}
	if (!w.cfg.enabled)
	{
		log_info("camera is disabled; nothing to record");
		goto end;
	}
	if (w.cfg.stream_url == NULL || *w.cfg.stream_url == '\0')
	{
		log_error("camera %d has no stream address (vms.update_camera)", o->camera);
		code = EXIT_DB;
		goto end;
	}
	/* Released files go first, so that recovery never registers one again. */
	if (o->purge_interval_s > 0)
		registrar_purge(conn, w.rootfd, o->camera);
	if (recovery_resume_point(conn, o->camera, &resume_ms, err, sizeof(err), sqlstate) != 0)
	{
		log_error("could not read the resume point: %s", err);
		code = EXIT_DB;
		goto end;
	}
	if (strncmp(w.cfg.stream_url, "file:", 5) != 0 && (o->start_time_ms >= 0 || !o->realtime || o->exit_at_eof))
		log_warning("--start-time, --no-realtime and --exit-at-eof apply to file:// sources only; ignored");
	log_info("starting: camera \"%s\" (%s, transport %s), %d s segments, storage %s",
			 w.cfg.camera_name ? w.cfg.camera_name : "?", w.cfg.stream_url, w.cfg.transport,
			 w.cfg.segment_seconds, o->root);

	memset(&ro, 0, sizeof(ro));
	ro.dbname = o->dbname;
	ro.insecure_db = o->insecure_db;
	ro.camera = o->camera;
	ro.rootfd = w.rootfd;
	ro.purge_interval_s = (int) o->purge_interval_s;
	ro.backoff_max_s = (int) (o->backoff_max_s < 10 ? o->backoff_max_s : 10);	/* a database comes back fast */
	w.reg = registrar_start(conn, &ro, err, sizeof(err));
	conn = NULL;				/* the registrar's now */
	if (w.reg == NULL)
	{
		log_error("%s", err);
		code = EXIT_DB;
		goto end;
	}
	if (recovery_run(w.rootfd, o->root, o->camera, resume_ms, w.reg, &w.last_end_ms, err, sizeof(err)) != 0)
	{
		log_error("recovery: %s", err);
		code = EXIT_STORAGE;
		goto end;
	}
	if (w.last_end_ms > now_ms() + FUTURE_SLACK_MS)
	{
		log_warning("the newest segment on disk ends in the future; is the clock right?  Ignoring it");
		w.last_end_ms = -1;
	}
	if (w.last_end_ms >= 0)
		w.gap_reason = "restart";

	code = run(&w);

end:
	if (w.reg != NULL)
	{
		int			left;

		report(&w, "stopped", code == EXIT_STORAGE ? "stopped: local storage error" :
			   code == EXIT_CAMERA ? "stopped while the camera was failing" : "stopped on request");
		left = registrar_stop(&w.reg, DRAIN_TIMEOUT_US);
		if (left > 0)
			log_warning("%d items were not registered (the database did not answer); their files stay on disk "
						"and are registered at the next start", left);
	}
	if (code == EXIT_STOPPED || code == EXIT_CAMERA)
		log_info("stopped%s", code == EXIT_CAMERA ? " while the camera was failing" : "");
	PQfinish(conn);
	config_free(&w.cfg);
	log_set_secret(NULL, NULL);
	if (w.rootfd >= 0)
		close(w.rootfd);
	return code;
}
