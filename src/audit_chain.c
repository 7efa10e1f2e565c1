/*-------------------------------------------------------------------------
 * audit_chain.c
 *	  The tamper-evident chain over vms.audit_log.
 *
 *	  Each sealed entry's hash is SHA-256 over a domain tag, the previous
 *	  entry's hash and a canonical, length-prefixed encoding of the entry's
 *	  fields (docs/audit.md gives the exact layout and an SQL recomputation).
 *	  vms.seal_audit() and vms.verify_audit() both use vms.audit_hash(), so
 *	  sealing and verification cannot drift apart.
 *
 *	  The head of the chain as last committed is also kept in shared memory,
 *	  so that cutting entries off the end of the table (which leaves a valid
 *	  shorter chain) is detected while the server keeps running.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "pg_vms.h"
#include "audit_chain.h"
#include "audit_queue.h"

#define AUDIT_CHAIN_TAG "pg_vms audit v1"

/* Head sealed by the current transaction; published at commit. */
static bool pending_head_set = false;
static Oid	pending_head_extension;
static int	pending_head_nest_level;
static int64 pending_head_seq;
static uint8 pending_head_hash[AUDIT_HASH_LEN];

static void
audit_chain_xact_callback(XactEvent event, void *arg)
{
	if (!pending_head_set)
		return;
	if (event == XACT_EVENT_COMMIT)
		audit_queue_set_sealed_head(pending_head_extension, pending_head_seq, pending_head_hash);
	/* A prepared transaction may never commit here: publish nothing. */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
		pending_head_set = false;
}

static void
audit_chain_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg)
{
	/* A seal rolled back to a savepoint did not happen. */
	if (event == SUBXACT_EVENT_ABORT_SUB && pending_head_set &&
		pending_head_nest_level >= GetCurrentTransactionNestLevel())
		pending_head_set = false;
}

void
audit_chain_install_callbacks(void)
{
	RegisterXactCallback(audit_chain_xact_callback, NULL);
	RegisterSubXactCallback(audit_chain_subxact_callback, NULL);
}

static void
digest_update(EVP_MD_CTX *ctx, const void *data, size_t len)
{
	if (EVP_DigestUpdate(ctx, data, len) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("SHA-256 update failed")));
}

static void
digest_u32(EVP_MD_CTX *ctx, uint32 v)
{
	uint8		b[4] = {v >> 24, v >> 16, v >> 8, v};

	digest_update(ctx, b, 4);
}

static void
digest_i64(EVP_MD_CTX *ctx, int64 v)
{
	uint64		u = (uint64) v;
	uint8		b[8];
	int			i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8) (u >> (56 - 8 * i));
	digest_update(ctx, b, 8);
}

/* A field: 0xFFFFFFFF for NULL, else a 4-byte big-endian length and the bytes. */
static void
digest_field(EVP_MD_CTX *ctx, const char *data, size_t len, bool isnull)
{
	if (isnull)
	{
		digest_u32(ctx, 0xFFFFFFFF);
		return;
	}
	digest_u32(ctx, (uint32) len);
	digest_update(ctx, data, len);
}

static void
digest_text_arg(EVP_MD_CTX *ctx, FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		digest_field(ctx, NULL, 0, true);
	else
	{
		text	   *t = PG_GETARG_TEXT_PP(argno);

		digest_field(ctx, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), false);
	}
}

static void
digest_cstring(EVP_MD_CTX *ctx, const char *s, bool isnull)
{
	digest_field(ctx, s, isnull ? 0 : strlen(s), isnull);
}

PG_FUNCTION_INFO_V1(vms_audit_hash);
PG_FUNCTION_INFO_V1(vms_audit_note_head);
PG_FUNCTION_INFO_V1(vms_audit_sealed_head);

/*
 * vms.audit_hash(prev_hash bytea, seq bigint, sealed_at timestamptz,
 *				  logged_at timestamptz, actor text, session_user_name text,
 *				  client_addr inet, action text, camera_id integer,
 *				  target text, outcome text, details jsonb) returns bytea
 */
Datum
vms_audit_hash(PG_FUNCTION_ARGS)
{
	EVP_MD_CTX *ctx;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bytea	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("prev_hash, seq, sealed_at and logged_at must not be null")));
	if (VARSIZE_ANY_EXHDR(PG_GETARG_BYTEA_PP(0)) != AUDIT_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("prev_hash must be %d bytes", AUDIT_HASH_LEN)));

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PG_TRY();
	{
		if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("SHA-256 initialisation failed")));
		digest_field(ctx, AUDIT_CHAIN_TAG, strlen(AUDIT_CHAIN_TAG), false);
		digest_update(ctx, VARDATA_ANY(PG_GETARG_BYTEA_PP(0)), AUDIT_HASH_LEN);
		digest_i64(ctx, PG_GETARG_INT64(1));
		digest_i64(ctx, PG_GETARG_TIMESTAMPTZ(2));
		digest_i64(ctx, PG_GETARG_TIMESTAMPTZ(3));
		digest_text_arg(ctx, fcinfo, 4);	/* actor */
		digest_text_arg(ctx, fcinfo, 5);	/* session user */
		if (PG_ARGISNULL(6))
			digest_cstring(ctx, NULL, true);
		else
			digest_cstring(ctx, DatumGetCString(DirectFunctionCall1(inet_out,
																	PG_GETARG_DATUM(6))), false);
		digest_text_arg(ctx, fcinfo, 7);	/* action */
		if (PG_ARGISNULL(8))
			digest_cstring(ctx, NULL, true);
		else
		{
			char		buf[16];

			snprintf(buf, sizeof(buf), "%d", PG_GETARG_INT32(8));
			digest_cstring(ctx, buf, false);
		}
		digest_text_arg(ctx, fcinfo, 9);	/* target */
		digest_text_arg(ctx, fcinfo, 10);	/* outcome */
		if (PG_ARGISNULL(11))
			digest_cstring(ctx, NULL, true);
		else
			digest_cstring(ctx, DatumGetCString(DirectFunctionCall1(jsonb_out,
																	PG_GETARG_DATUM(11))), false);
		if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != AUDIT_HASH_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("SHA-256 finalisation failed")));
	}
	PG_FINALLY();
	{
		EVP_MD_CTX_free(ctx);
	}
	PG_END_TRY();

	result = palloc(VARHDRSZ + AUDIT_HASH_LEN);
	SET_VARSIZE(result, VARHDRSZ + AUDIT_HASH_LEN);
	memcpy(VARDATA(result), md, AUDIT_HASH_LEN);
	PG_RETURN_BYTEA_P(result);
}

/* vms._audit_note_head(seq bigint, hash bytea): publish at commit */
Datum
vms_audit_note_head(PG_FUNCTION_ARGS)
{
	bytea	   *hash = PG_GETARG_BYTEA_PP(1);

	if (VARSIZE_ANY_EXHDR(hash) != AUDIT_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hash must be %d bytes", AUDIT_HASH_LEN)));
	pending_head_extension = get_extension_oid(PG_VMS_EXTENSION, false);
	pending_head_seq = PG_GETARG_INT64(0);
	memcpy(pending_head_hash, VARDATA_ANY(hash), AUDIT_HASH_LEN);
	pending_head_nest_level = GetCurrentTransactionNestLevel();
	pending_head_set = true;
	PG_RETURN_VOID();
}

/* vms._audit_sealed_head(OUT seq bigint, OUT hash bytea) */
Datum
vms_audit_sealed_head(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {true, true};
	int64		seq;
	uint8		hash[AUDIT_HASH_LEN];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (audit_queue_get_sealed_head(get_extension_oid(PG_VMS_EXTENSION, false), &seq, hash))
	{
		bytea	   *b = palloc(VARHDRSZ + AUDIT_HASH_LEN);

		SET_VARSIZE(b, VARHDRSZ + AUDIT_HASH_LEN);
		memcpy(VARDATA(b), hash, AUDIT_HASH_LEN);
		values[0] = Int64GetDatum(seq);
		values[1] = PointerGetDatum(b);
		nulls[0] = nulls[1] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
