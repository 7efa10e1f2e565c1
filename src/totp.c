/*-------------------------------------------------------------------------
 * totp.c
 *	  Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP) as a
 *	  second factor, and the session elevation a valid code grants.
 *
 *	  HMAC is OpenSSL's.  Secrets are stored encrypted by the SQL layer (a
 *	  data key of purpose totp_secrets); this file sees them only for the
 *	  duration of one call.  Elevation is per backend, for the role that
 *	  verified, for vms.totp_elevation_time, and takes effect only when the
 *	  transaction that verified the code commits (which is also when the
 *	  code is recorded as used, so a code cannot be used twice).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "access/xact.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "pg_vms.h"
#include "audit.h"
#include "auth_guard.h"
#include "invoker.h"
#include "totp.h"

#define TOTP_SECRET_BYTES	20		/* 160 bits, RFC 4226's recommendation */
#define TOTP_MAX_SECRET		64
#define TOTP_MAX_DIGITS		10

static int	totp_elevation_time_s = 900;
static int	totp_window_steps = 1;
static char *totp_issuer = NULL;

static Oid	elevated_role = InvalidOid;
static TimestampTz elevated_until = 0;
static Oid	pending_role = InvalidOid;
static TimestampTz pending_until = 0;
static SubTransactionId pending_subxid = InvalidSubTransactionId;

void
totp_define_settings(void)
{
	DefineCustomIntVariable("vms.totp_elevation_time",
							"How long a verified second-factor code elevates the session.",
							NULL,
							&totp_elevation_time_s,
							900, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("vms.totp_window",
							"Time steps before and after now in which a code is accepted (clock drift).",
							NULL,
							&totp_window_steps,
							1, 0, 10,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("vms.totp_issuer",
							   "Issuer name written into otpauth:// enrollment URIs.",
							   NULL,
							   &totp_issuer,
							   "pg_vms",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
}

static void
clear_pending(void)
{
	pending_role = InvalidOid;
	pending_until = 0;
	pending_subxid = InvalidSubTransactionId;
}

static void
totp_xact_callback(XactEvent event, void *arg)
{
	if (!OidIsValid(pending_role))
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			/* The code's use would commit later, in another session. */
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that verified a second-factor code")));
			break;
		case XACT_EVENT_COMMIT:
			elevated_role = pending_role;
			elevated_until = pending_until;
			clear_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			clear_pending();
			break;
		default:
			break;
	}
}

/*
 * A verification inside a subtransaction that rolls back (ROLLBACK TO
 * SAVEPOINT) elevates nothing: its use of the code and its audit entry are
 * gone with it.
 */
static void
totp_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (!OidIsValid(pending_role) || pending_subxid != mySubid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		clear_pending();
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		pending_subxid = parentSubid;
}

void
totp_install_callbacks(void)
{
	RegisterXactCallback(totp_xact_callback, NULL);
	RegisterSubXactCallback(totp_subxact_callback, NULL);
}

bool
totp_session_elevated(Oid roleid)
{
	return OidIsValid(elevated_role) && elevated_role == roleid &&
		GetCurrentTimestamp() < elevated_until;
}

static const EVP_MD *
totp_digest(const char *algorithm)
{
	if (pg_strcasecmp(algorithm, "SHA1") == 0)
		return EVP_sha1();
	if (pg_strcasecmp(algorithm, "SHA256") == 0)
		return EVP_sha256();
	if (pg_strcasecmp(algorithm, "SHA512") == 0)
		return EVP_sha512();
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown TOTP algorithm \"%s\"", algorithm),
			 errhint("Use SHA1, SHA256 or SHA512.")));
	return NULL;				/* keep the compiler quiet */
}

/* HOTP value of one counter (RFC 4226 section 5.3), as a number. */
static uint32
hotp(const EVP_MD *md, const unsigned char *key, int keylen, uint64 counter, int digits)
{
	unsigned char msg[8];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	uint32		binary;
	uint32		modulus = 1;
	int			offset;
	int			i;

	for (i = 7; i >= 0; i--)
	{
		msg[i] = (unsigned char) (counter & 0xff);
		counter >>= 8;
	}
	if (HMAC(md, key, keylen, msg, sizeof(msg), mac, &maclen) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("HMAC computation failed")));
	offset = mac[maclen - 1] & 0x0f;
	binary = ((uint32) (mac[offset] & 0x7f) << 24) |
		((uint32) mac[offset + 1] << 16) |
		((uint32) mac[offset + 2] << 8) |
		(uint32) mac[offset + 3];
	OPENSSL_cleanse(mac, sizeof(mac));
	for (i = 0; i < digits && i < 9; i++)
		modulus *= 10;
	return digits >= 10 ? binary : binary % modulus;
}

static void
check_secret(bytea *secret)
{
	int			len = VARSIZE_ANY_EXHDR(secret);

	if (len < 10 || len > TOTP_MAX_SECRET)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("TOTP secret must be 10 to %d bytes long", TOTP_MAX_SECRET)));
}

static int64
time_step(TimestampTz at, int period)
{
	/* Unix time in seconds, floored, then divided by the period (T0 = 0). */
	int64		unix_s = (at / USECS_PER_SEC) +
		(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;

	if (at < 0 && at % USECS_PER_SEC != 0)
		unix_s--;
	if (unix_s < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("TOTP time must not be before 1970")));
	return unix_s / period;
}

PG_FUNCTION_INFO_V1(vms_totp_code);
PG_FUNCTION_INFO_V1(vms_totp_new_secret);
PG_FUNCTION_INFO_V1(vms_totp_uri);
PG_FUNCTION_INFO_V1(vms_totp_match);
PG_FUNCTION_INFO_V1(vms_totp_elevate);
PG_FUNCTION_INFO_V1(vms_totp_lockout);
PG_FUNCTION_INFO_V1(vms_elevated_until);

/*
 * vms._totp_code(secret bytea, at timestamptz, digits integer,
 *				  algorithm text, period integer) returns text
 */
Datum
vms_totp_code(PG_FUNCTION_ARGS)
{
	bytea	   *secret = PG_GETARG_BYTEA_PP(0);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(1);
	int			digits = PG_GETARG_INT32(2);
	const EVP_MD *md = totp_digest(text_to_cstring(PG_GETARG_TEXT_PP(3)));
	int			period = PG_GETARG_INT32(4);
	uint32		value;

	check_secret(secret);
	if (digits < 6 || digits > 8)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("TOTP codes have 6 to 8 digits")));
	if (period < 1 || period > 3600)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("TOTP period must be 1 to 3600 seconds")));
	value = hotp(md, (unsigned char *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
				 (uint64) time_step(at, period), digits);
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%0*u", digits, value)));
}

/* vms._totp_new_secret() returns bytea: 160 random bits from OpenSSL */
Datum
vms_totp_new_secret(PG_FUNCTION_ARGS)
{
	bytea	   *secret = palloc(VARHDRSZ + TOTP_SECRET_BYTES);

	SET_VARSIZE(secret, VARHDRSZ + TOTP_SECRET_BYTES);
	if (RAND_bytes((unsigned char *) VARDATA(secret), TOTP_SECRET_BYTES) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes for a TOTP secret")));
	PG_RETURN_BYTEA_P(secret);
}

static void
append_base32(StringInfo out, const unsigned char *data, int len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint32		buffer = 0;
	int			bits = 0;
	int			i;

	for (i = 0; i < len; i++)
	{
		buffer = (buffer << 8) | data[i];
		bits += 8;
		while (bits >= 5)
		{
			appendStringInfoChar(out, alphabet[(buffer >> (bits - 5)) & 31]);
			bits -= 5;
		}
	}
	if (bits > 0)
		appendStringInfoChar(out, alphabet[(buffer << (5 - bits)) & 31]);
}

/* RFC 3986 percent-encoding of everything but unreserved characters. */
static void
append_uri_component(StringInfo out, const char *s)
{
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~')
			appendStringInfoChar(out, c);
		else
			appendStringInfo(out, "%%%02X", c);
	}
}

/*
 * vms._totp_uri(secret bytea, account text) returns text: the otpauth://
 * URI authenticator apps read (Key Uri Format: SHA1, 6 digits, 30 s).
 */
Datum
vms_totp_uri(PG_FUNCTION_ARGS)
{
	bytea	   *secret = PG_GETARG_BYTEA_PP(0);
	char	   *account = text_to_cstring(PG_GETARG_TEXT_PP(1));
	StringInfoData uri;

	check_secret(secret);
	initStringInfo(&uri);
	appendStringInfoString(&uri, "otpauth://totp/");
	append_uri_component(&uri, totp_issuer);
	appendStringInfoChar(&uri, ':');
	append_uri_component(&uri, account);
	appendStringInfoString(&uri, "?secret=");
	append_base32(&uri, (unsigned char *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret));
	appendStringInfoString(&uri, "&issuer=");
	append_uri_component(&uri, totp_issuer);
	appendStringInfoString(&uri, "&algorithm=SHA1&digits=6&period=30");
	PG_RETURN_TEXT_P(cstring_to_text(uri.data));
}

/*
 * vms._totp_match(secret bytea, code text, last_step bigint) returns bigint:
 * the time step whose code equals code, within vms.totp_window steps of now
 * and after last_step (a used code never matches again); NULL otherwise.
 * Every candidate is computed and compared in constant time.
 */
Datum
vms_totp_match(PG_FUNCTION_ARGS)
{
	bytea	   *secret = PG_GETARG_BYTEA_PP(0);
	char	   *code = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		last_step = PG_GETARG_INT64(2);
	int64		now_step = time_step(GetCurrentTimestamp(), 30);
	int64		matched = -1;
	int64		step;
	int			len = strlen(code);

	check_secret(secret);
	if (len != 6 || strspn(code, "0123456789") != 6)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a second-factor code is 6 digits")));
	for (step = now_step - totp_window_steps; step <= now_step + totp_window_steps; step++)
	{
		char		candidate[TOTP_MAX_DIGITS + 1];

		snprintf(candidate, sizeof(candidate), "%06u",
				 hotp(EVP_sha1(), (unsigned char *) VARDATA_ANY(secret),
					  VARSIZE_ANY_EXHDR(secret), (uint64) step, 6));
		if (CRYPTO_memcmp(candidate, code, 6) == 0 && step > last_step)
			matched = step;
		explicit_bzero(candidate, sizeof(candidate));
	}
	explicit_bzero(code, len);
	if (matched < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(matched);
}

/*
 * vms._totp_elevate(role regrole) returns timestamptz: elevates the role in
 * this session when the transaction commits; returns when it will end.
 */
Datum
vms_totp_elevate(PG_FUNCTION_ARGS)
{
	pending_role = PG_GETARG_OID(0);
	pending_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												(int64) totp_elevation_time_s * 1000);
	pending_subxid = GetCurrentSubTransactionId();
	PG_RETURN_TIMESTAMPTZ(pending_until);
}

/*
 * vms._totp_lockout(role text, outcome text) returns boolean: shares the
 * login lockout.  outcome 'check' asks whether the role is locked now;
 * 'failure' counts a wrong code; 'success' clears the role's failures.
 */
Datum
vms_totp_lockout(PG_FUNCTION_ARGS)
{
	char	   *role = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *outcome = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char		address[AUDIT_ADDR_LEN];

	audit_client_addr(address, sizeof(address));
	if (strcmp(outcome, "failure") == 0)
		lockout_note_failure(role, address, "totp");
	else if (strcmp(outcome, "success") == 0)
		lockout_note_success(role, address);
	else if (strcmp(outcome, "check") != 0)
		elog(ERROR, "unknown lockout outcome \"%s\"", outcome);
	PG_RETURN_BOOL(lockout_is_locked(role, address));
}

/* vms.elevated_until() returns timestamptz: the current user's elevation end, NULL if none */
Datum
vms_elevated_until(PG_FUNCTION_ARGS)
{
	if (!totp_session_elevated(GetUserId()))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(elevated_until);
}

PG_FUNCTION_INFO_V1(vms_totp_session_elevated);

/* vms._session_elevated(role regrole) returns boolean */
Datum
vms_totp_session_elevated(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(totp_session_elevated(PG_GETARG_OID(0)));
}

PG_FUNCTION_INFO_V1(vms_second_factor_identity);

/*
 * vms._second_factor_identity() returns regrole: whose second factor counts
 * in this session.  The session user (a second factor belongs to a person,
 * not to a role one may SET ROLE to); in a superuser's session, the role it
 * acts as.
 */
Datum
vms_second_factor_identity(PG_FUNCTION_ARGS)
{
	Oid			session = GetSessionUserId();

	PG_RETURN_OID(superuser_arg(session) ? invoker_current() : session);
}
