/*
 * export.h: what the parts of vms-export share.
 *
 *   main.c      options, secrets, the flow, the package directory, exit codes
 *   session.c   the database: profile, begin_export (parsed server-side), finish/fail
 *   input.c     the recorded segments in order as one packet stream (continuous timestamps)
 *   remux.c     segments -> one MP4, no re-encoding; the fd-backed AVIO both use
 *   masked.c    decode + privacy masks + libx264 -> MP4; the masked PNG snapshot
 *   package.c   manifest.json (RFC 8259), SHA256SUMS, file helpers
 *   sign.c      the signer key, CMS signature, RFC 3161 timestamp
 *   encrypt.c   CMS AuthEnvelopedData chunks
 *   progress.c  the terminal progress bar
 */
#ifndef VMS_EXPORT_H
#define VMS_EXPORT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <libavformat/avformat.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "filehash.h"
#include "ossltext.h"
#include "readfile.h"
#include "secretfile.h"
#include "zonemask.h"

#define PROGNAME			"vms-export"
#define PROGVERSION			"1.5.0"

#define EXIT_OK				0
#define EXIT_USAGE			1
#define EXIT_REFUSED		2	/* the database refused (or could not be reached) */
#define EXIT_INTEGRITY		3	/* a segment differs from the index */
#define EXIT_FAILURE_OTHER	4	/* I/O, media, crypto, TSA */

#define ERRLEN				1024
#define HASH_BUFSIZE		(1024 * 1024)
#define DEFAULT_CHUNK_SIZE	(64LL * 1024 * 1024)
#define MAX_CHUNK_SIZE		(1024LL * 1024 * 1024)

/* Set by the signal handler only; long loops and FFmpeg's I/O poll it. */
extern volatile sig_atomic_t export_interrupted;

/* ---- progress.c ---- */
typedef struct Progress
{
	int			on;
	const char *label;
	int64_t		total;
	int64_t		done;
	double		start;
	double		last;
	int			drawn;
} Progress;

extern void progress_begin(Progress *p, const char *label, int64_t total);
extern void progress_add(Progress *p, int64_t bytes);
extern void progress_set(Progress *p, int64_t done);
extern void progress_end(Progress *p);
/* Ends the line of a bar left half drawn (before an error message). */
extern void progress_abort(Progress *p);

/* ---- session.c ---- */
typedef struct Segment
{
	long long	id;
	char	   *start,
			   *end,
			   *path;
	long long	bytes;
	char		sha256[65];
	int64_t		start_ms,
				end_ms;
	char	   *codec;
	int			width,
				height;
} Segment;

typedef struct Mask
{
	long long	zone_id;
	char	   *name;
	int			liftable;
	char	   *fill;
	char	   *points;			/* JSON text as the server gave it */
} Mask;

typedef struct Lift
{
	long long	lift_id;
	char	   *zone_id;		/* NULL = every liftable zone */
	char	   *reason,
			   *requested_by,
			   *approved_by,	/* may be NULL */
			   *starts_at,
			   *ends_at;
} Lift;

typedef struct Hold
{
	long long	hold_id;
	char	   *reason,
			   *from,
			   *to;
} Hold;

typedef struct Profile
{
	char	   *name;
	char	   *signer_certificate;
	char	   *signer_chain;	/* may be NULL */
	char		signer_sha256[65];
	int			key_needs_passphrase;
	int			has_mp4,
				has_png;
	int			encryption_required;
	char	   *tsa_url;		/* may be NULL */
} Profile;

typedef struct SegCheck SegCheck;

typedef struct Session
{
	PGconn	   *conn;
	long long	export_id;		/* 0 until begin_export succeeded */
	int			camera_id;
	char	   *camera_name;
	char	   *from,
			   *to,
			   *kind,
			   *reason,
			   *exported_by,
			   *session_user,
			   *started_at;
	Profile		profile;
	Segment    *segs;
	int			nsegs;
	Mask	   *masks;
	PrivacyZone *zones;			/* the masks as polygons, same order */
	int			nmasks;
	Lift	   *lifts;
	int			nlifts;
	Hold	   *holds;
	int			nholds;
	SegCheck   *check;			/* the segments' re-hash, running beside the export */
	int64_t		from_ms,		/* the range, ms since the epoch (main.c) */
				to_ms;
} Session;

extern int	session_connect(Session *s, const char *dbname, char *err, size_t errlen);
/* 1 and the profile if the caller can read it, 0 if not (begin_export decides), -1 on error. */
extern int	session_peek_profile(Session *s, const char *name, Profile *p, char *err, size_t errlen);
/* EXIT_OK, or EXIT_REFUSED / EXIT_FAILURE_OTHER with err. */
extern int	session_begin(Session *s, int camera, const char *from, const char *to,
						  const char *reason, const char *profile, int snapshot,
						  char *err, size_t errlen);
/* Milliseconds since the epoch of a timestamptz text, as the server reads it; -1 on error. */
extern int	session_time_ms(Session *s, const char *text, int64_t *ms, char *err, size_t errlen);
extern int	session_finish(Session *s, const unsigned char manifest_md[32],
						   const unsigned char output_md[32], const char *signer_pem,
						   const char *signer_subject, int timestamped, const char *encrypted,
						   char *err, size_t errlen);
extern int	session_fail(Session *s, const char *failure, char *err, size_t errlen);
extern void profile_free(Profile *p);
extern void session_free(Session *s);

/* ---- input.c ---- */
/* segcheck.c: the segments re-hashed against the index on a thread. */
extern SegCheck *segcheck_start(int rootfd, const Session *s, char *err, size_t errlen);
/*
 * Waits until segment index is checked, then hands over the file it checked
 * (open, at offset 0; the caller closes it): EXIT_OK, or the failure with err.
 */
extern int	segcheck_take(SegCheck *c, int index, int *fd, char *err, size_t errlen);
/* Waits for every segment: EXIT_OK, or the failure with err; frees it. */
extern int	segcheck_finish(SegCheck **c, char *err, size_t errlen);
/* Stops it early and frees it (no-op for NULL). */
extern void segcheck_cancel(SegCheck **c);

typedef struct SegReader SegReader;

/*
 * Opens segments [first, last] of s below rootfd in turn; packets of the first
 * video stream come out in its time base with timestamps continuous across
 * the files (each file continues where the previous one ended), starting at
 * 0.  With cut_to_range, only s->from_ms .. s->to_ms: from the last keyframe
 * at or before the start to the last packet before the end.  Each file is
 * opened only once s->check has found it as indexed.  Bytes read go to
 * progress (may be NULL).
 */
extern SegReader *segreader_open(int rootfd, const Session *s, int first, int last,
								 int cut_to_range, Progress *progress, char *err, size_t errlen);
/* The first segment's stream parameters (extradata included) and time base. */
extern const AVCodecParameters *segreader_params(const SegReader *r);
extern AVRational segreader_time_base(const SegReader *r);
/* 0 and a packet, AVERROR_EOF at the end, else an error with err filled. */
extern int	segreader_next(SegReader *r, AVPacket *pkt, char *err, size_t errlen);
/* The open file's stream parameters. */
extern const AVCodecParameters *segreader_file_params(const SegReader *r);
/* Index (into s->segs) of the segment the last packet came from; its first packet's output dts. */
extern int	segreader_current(const SegReader *r, int64_t *first_dts);
extern void segreader_close(SegReader **r);

/* ---- remux.c ---- */
/* A muxer writing to name below dirfd (created 0600, O_EXCL); NULL with err on error. */
typedef struct OutFile OutFile;
extern OutFile *outfile_open(int dirfd, const char *name, const char *format,
							 const AVCodecParameters *par, AVRational tb,
							 char *err, size_t errlen);
extern int	outfile_write(OutFile *o, AVPacket *pkt, AVRational tb, char *err, size_t errlen);
/* Trailer, fsync, close; 0 or -1 with err.  Always frees o. */
extern int	outfile_close(OutFile **o, char *err, size_t errlen);
extern void outfile_abort(OutFile **o);
/* AVIO interrupt callback polling export_interrupted. */
extern int	export_interrupt_cb(void *opaque);

extern int	remux_segments(int rootfd, const Session *s, int dirfd, const char *name,
						   Progress *progress, char *err, size_t errlen);

/* ---- masked.c ---- */
extern int	masked_export(int rootfd, const Session *s, int dirfd, const char *name,
						  Progress *progress, char *err, size_t errlen);
extern int	snapshot_export(int rootfd, const Session *s, int64_t at_ms, int dirfd,
							const char *name, char *err, size_t errlen);

/* ---- package.c ---- */
typedef struct Chunk
{
	char		file[64];
	long long	bytes;
	char		sha256[65];
	long long	plain_offset;
	long long	plain_bytes;
} Chunk;

typedef struct Output
{
	char		file[32];		/* video.mp4 or snapshot.png */
	long long	bytes;
	unsigned char md[32];
	char		sha256[65];
	/* encryption */
	const char *scheme_kind;	/* NULL, "recipients" or "password" */
	char	  **recipients;		/* subjects, nrecipients */
	int			nrecipients;
	Chunk	   *chunks;
	int			nchunks;
} Output;

/* Writes data (len bytes) as a new file name below dirfd (mode), fsynced; 0 or -1 with err. */
extern int	write_file_at(int dirfd, const char *name, const char *data, size_t len, int mode,
						  char *err, size_t errlen);
/* Builds manifest.json's text (malloc'ed) or NULL when out of memory. */
extern char *manifest_build(const Session *s, const Output *o, const char *created_at);
extern char *sha256sums_build(const Output *o);
/* Now, UTC, ISO 8601 with milliseconds and Z. */
extern void utc_now_iso(char out[32]);

/* ---- sign.c ---- */
/* Reads a secret: the first line of file, or (file NULL) from the terminal; NULL with err. */
extern char *read_secret(const char *file, const char *prompt, int confirm, char *err, size_t errlen);
/*
 * Loads the signer key (PEM).  Reads the passphrase (passphrase_file, or the
 * terminal when NULL) only when the key is encrypted; sets *was_encrypted.
 * NULL with err.
 */
extern EVP_PKEY *load_signer_key(const char *file, const char *passphrase_file,
								 int *was_encrypted, char *err, size_t errlen);
extern X509 *cert_from_pem(const char *pem, char *err, size_t errlen);
extern STACK_OF(X509) *certs_from_pem(const char *pem, char *err, size_t errlen);
extern STACK_OF(X509) *certs_from_file(const char *file, char *err, size_t errlen);
extern int	cert_sha256_hex(X509 *cert, char out[65]);
extern char *cert_subject(X509 *cert);
/* Writes manifest.json.p7s; *p7s (malloc'ed) gets its bytes. */
extern int	sign_manifest(int dirfd, const char *manifest, size_t len, X509 *cert, EVP_PKEY *key,
						  STACK_OF(X509) *chain, char **p7s, size_t *p7s_len, char *err, size_t errlen);
/* Writes manifest.json.p7s.tsr from the TSA at url. */
extern int	timestamp_signature(int dirfd, const char *url, const char *p7s, size_t p7s_len,
								char *err, size_t errlen);

/* ---- encrypt.c ---- */
/*
 * Encrypts name below dirfd into name.NNNN.p7m chunks of at most chunk_size
 * plaintext bytes, for recips or (recips NULL) password; fills o's chunks,
 * bytes, md/sha256 (of the plaintext) and unlinks the plaintext.  0 or -1.
 */
extern int	encrypt_output(int dirfd, Output *o, long long chunk_size, STACK_OF(X509) *recips,
						   const char *password, Progress *progress, char *err, size_t errlen);

#endif							/* VMS_EXPORT_H */
