/*
 * verify.h: the parts of vms-verify.
 *
 *   parse.c    the package's files as data, no file system: manifest.json
 *              (strict JSON, then the package format), SHA256SUMS (strict
 *              lines) and whether it agrees with the manifest, the DER of
 *              the CMS signature and of the RFC 3161 response
 *   crypto.c   the checks on them with OpenSSL: the signature over the
 *              manifest, the signer's certificate chain, the timestamp over
 *              the signature
 *   main.c     options, reading the package directory, the payload files,
 *              decryption, the summary
 *   fuzz_package.c  the libFuzzer target over parse.c and crypto.c
 *                   (make -C tools fuzz), not part of the tool
 *
 * Every function here prints nothing; failures come back as one line of
 * text in err, the tool prints it.
 */
#ifndef VMS_VERIFY_H
#define VMS_VERIFY_H

#include <stddef.h>

#include <openssl/cms.h>
#include <openssl/ts.h>
#include <openssl/x509.h>

#include "filehash.h"
#include "json.h"
#include "ossltext.h"
#include "readfile.h"
#include "secretfile.h"

#define PROGNAME		"vms-verify"
#define PROGVERSION		"1.5.0"
#define ERRLEN			1024
#define FORMAT_ID		"pg_vms-evidence/1"
#define SCHEME_ID		"cms-authenveloped-aes-256-gcm"

#define MAX_SUMS_SIZE	(1024 * 1024)
#define MAX_P7S_SIZE	(4 * 1024 * 1024)
#define MAX_TSR_SIZE	(1024 * 1024)
#define MAX_CHUNKS		9999

/* Exit codes */
#define EXIT_OK			0
#define EXIT_USAGE		1
#define EXIT_INVALID	2
#define EXIT_DECRYPT	3
#define EXIT_IO			4

/* A payload file the manifest lists: the output, or a chunk of it. */
typedef struct Payload
{
	const char *file;			/* points into the JSON tree */
	long long	bytes;
	char		sha256[65];		/* lowercase hex */
	long long	plain_offset;	/* chunks only */
	long long	plain_bytes;
} Payload;

typedef struct Manifest
{
	JsonValue  *root;
	long long	export_id;
	const char *kind;
	long long	camera_id;
	const char *camera_name;	/* NULL when null */
	const char *from;
	const char *to;
	const char *exported_by;
	const char *session_user;
	const char *reason;
	const char *profile;
	const char *created_at;
	const char *tool_name;
	const char *tool_version;
	size_t		nsegments;
	size_t		nmasks;
	size_t		nlifts;
	size_t		nholds;
	Payload		output;
	int			encrypted;
	int			password;		/* encrypted for a password (PWRI) */
	size_t		nrecipients;	/* subjects, when for certificates */
	const char **recipients;
	size_t		nchunks;
	Payload    *chunks;
} Manifest;

/* SHA256SUMS: its lines in order. */
typedef struct SumLine
{
	char	   *file;
	char		sha256[65];
} SumLine;

typedef struct Sums
{
	size_t		n;
	SumLine    *lines;
} Sums;

/* What the signature check learns, for the summary. */
typedef struct SignInfo
{
	char	   *signer;			/* the subject (RFC 2253) of each signer, "; " between */
	char		signing_time[40];	/* the signingTime attribute, or "" */
} SignInfo;

typedef struct StampInfo
{
	char		gen_time[40];	/* ISO UTC */
	char	   *tsa;			/* the TSA's subject, or NULL */
} StampInfo;

/* parse.c */
extern int	safe_file_name(const char *name);
extern int	manifest_parse(const char *text, size_t len, Manifest *m, char *err, size_t errlen);
extern void manifest_free(Manifest *m);
extern int	sums_parse(const char *text, size_t len, Sums *s, char *err, size_t errlen);
extern void sums_free(Sums *s);
extern int	sums_agree(const Manifest *m, const Sums *s, char *err, size_t errlen);
extern CMS_ContentInfo *signature_parse(const unsigned char *der, size_t len, char *err, size_t errlen);
extern TS_RESP *timestamp_parse(const unsigned char *der, size_t len, char *err, size_t errlen);

/* crypto.c */
extern int	signature_verify(CMS_ContentInfo *cms, const char *manifest, size_t len, X509_STORE *store,
							 SignInfo *info, char *err, size_t errlen);
extern int	timestamp_verify(TS_RESP *resp, const unsigned char *p7s, size_t p7s_len, X509_STORE *store,
							 StampInfo *info, char *err, size_t errlen);
extern void sign_info_free(SignInfo *s);
extern void stamp_info_free(StampInfo *s);
extern void asn1_time_iso(const ASN1_TIME *t, char out[40]);

#endif							/* VMS_VERIFY_H */
