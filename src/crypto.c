/*-------------------------------------------------------------------------
 * crypto.c
 *	  AES-256-GCM for pg_vms, through OpenSSL EVP only.
 *
 *	  Data keys: 32 random bytes, stored in vms.data_keys wrapped by the
 *	  master key as nonce || ciphertext || tag, with the additional data
 *	  "pg_vms data key:<id>:<purpose>" so a wrapped key moved to another row
 *	  does not unwrap.
 *
 *	  Values: 0x01 || data key id (8 bytes, big-endian) || nonce (12) ||
 *	  ciphertext || tag (16).  The additional data is that 9-byte header and
 *	  the caller's binding, "<table>.<column>:<row id>", so a ciphertext
 *	  copied to another row or column fails to decrypt.  Every encryption
 *	  takes a fresh random 96-bit nonce.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "pg_vms.h"
#include "crypto.h"
#include "keys.h"

#define VALUE_FORMAT	0x01

static void
crypto_fail(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("AES-256-GCM %s failed", what)));
}

/* out receives nonce || ciphertext (plainlen) || tag */
void
gcm_encrypt(const uint8 *key, const uint8 *aad, size_t aadlen,
			const uint8 *plain, size_t plainlen, uint8 *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			len;

	if (ctx == NULL)
		crypto_fail("setup");
	if (RAND_bytes(out, GCM_NONCE_LEN) != 1 ||
		EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) != 1 ||
		EVP_EncryptInit_ex(ctx, NULL, NULL, key, out) != 1 ||
		(aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int) aadlen) != 1) ||
		EVP_EncryptUpdate(ctx, out + GCM_NONCE_LEN, &len, plain, (int) plainlen) != 1 ||
		EVP_EncryptFinal_ex(ctx, out + GCM_NONCE_LEN + len, &len) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN,
							out + GCM_NONCE_LEN + plainlen) != 1)
	{
		EVP_CIPHER_CTX_free(ctx);
		crypto_fail("encryption");
	}
	EVP_CIPHER_CTX_free(ctx);
}

/*
 * in is nonce || ciphertext || tag; false when authentication fails.  ctx is
 * an EVP_CIPHER_CTX set up for AES-256-GCM with a 12-byte IV, reusable
 * across calls (a scan decrypting many values keeps one).
 */
bool
gcm_decrypt_with(void *evp_ctx, const uint8 *key, const uint8 *aad, size_t aadlen,
				 const uint8 *in, size_t inlen, uint8 *plain)
{
	EVP_CIPHER_CTX *ctx = (EVP_CIPHER_CTX *) evp_ctx;
	size_t		ctlen;
	int			len;
	bool		ok;

	if (inlen < GCM_NONCE_LEN + GCM_TAG_LEN)
		return false;
	ctlen = inlen - GCM_NONCE_LEN - GCM_TAG_LEN;
	ok = EVP_DecryptInit_ex(ctx, NULL, NULL, key, in) == 1 &&
		(aadlen == 0 || EVP_DecryptUpdate(ctx, NULL, &len, aad, (int) aadlen) == 1) &&
		EVP_DecryptUpdate(ctx, plain, &len, in + GCM_NONCE_LEN, (int) ctlen) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
							(void *) (in + GCM_NONCE_LEN + ctlen)) == 1 &&
		EVP_DecryptFinal_ex(ctx, plain + len, &len) == 1;
	if (!ok)
		OPENSSL_cleanse(plain, ctlen);
	return ok;
}

bool
gcm_decrypt(const uint8 *key, const uint8 *aad, size_t aadlen,
			const uint8 *in, size_t inlen, uint8 *plain)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	bool		ok;

	if (ctx == NULL ||
		EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) != 1)
	{
		EVP_CIPHER_CTX_free(ctx);
		crypto_fail("setup");
	}
	ok = gcm_decrypt_with(ctx, key, aad, aadlen, in, inlen, plain);
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

static char *
data_key_aad(int64 id, const char *purpose, bool has_subject, int64 subject)
{
	if (has_subject)
		return psprintf("pg_vms data key:" INT64_FORMAT ":%s:" INT64_FORMAT, id, purpose, subject);
	return psprintf("pg_vms data key:" INT64_FORMAT ":%s:", id, purpose);
}

static bytea *
make_bytea(const uint8 *data, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* Unwrap a data key row's key with the master key version it names. */
void
unwrap_data_key(int64 id, const char *purpose, bool has_subject, int64 subject,
				int32 version, bytea *wrapped, uint8 *key)
{
	uint8		master[MASTER_KEY_LEN];
	char	   *aad = data_key_aad(id, purpose, has_subject, subject);
	bool		ok;

	keys_ensure_version(version);
	if (!keys_get(version, master))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("master key version %d is not loaded", version),
				 errhint("The key source must still provide version %d; see docs/keys.md.", version)));
	ok = VARSIZE_ANY_EXHDR(wrapped) == GCM_NONCE_LEN + DATA_KEY_LEN + GCM_TAG_LEN &&
		gcm_decrypt(master, (uint8 *) aad, strlen(aad),
					(uint8 *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped), key);
	OPENSSL_cleanse(master, sizeof(master));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("data key " INT64_FORMAT " does not unwrap with master key version %d", id, version),
				 errdetail("The wrapped key was altered, moved from another row, or the key source gives a different key for that version.")));
}

/* Look up a data key by id and unwrap it into key; errors if gone. */
void
crypto_fetch_data_key(int64 id, uint8 *key)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		isnull;
	char	   *purpose;
	int32		version;
	bytea	   *wrapped;
	bool		destroyed;
	int64		subject;
	bool		subject_null;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		plan = SPI_prepare("SELECT purpose, master_version, wrapped, destroyed_at IS NOT NULL, subject_id "
						   "FROM vms.data_keys WHERE id OPERATOR(pg_catalog.=) $1", 1, argtypes);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare data key lookup");
	}
	args[0] = Int64GetDatum(id);
	if (SPI_execute_plan(plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "data key lookup failed");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("data key " INT64_FORMAT " does not exist", id)));
	destroyed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	if (destroyed)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("data key " INT64_FORMAT " has been destroyed", id),
				 errdetail("Values encrypted with it cannot be recovered.")));
	purpose = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	wrapped = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	subject = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &subject_null));
	unwrap_data_key(id, purpose, !subject_null, subject, version, wrapped, key);
	SPI_finish();
}

PG_FUNCTION_INFO_V1(vms_new_data_key);
PG_FUNCTION_INFO_V1(vms_rewrap_data_key);
PG_FUNCTION_INFO_V1(vms_encrypt);
PG_FUNCTION_INFO_V1(vms_decrypt);
PG_FUNCTION_INFO_V1(vms_master_key_version);
PG_FUNCTION_INFO_V1(vms_load_master_key_version);
PG_FUNCTION_INFO_V1(vms_set_master_key_version);

/*
 * vms._new_data_key(id bigint, purpose text, subject_id bigint, version integer)
 * returns bytea: a fresh random data key, wrapped by that master key version
 * for that row.
 */
Datum
vms_new_data_key(PG_FUNCTION_ARGS)
{
	int64		id;
	char	   *purpose;
	int32		version;
	uint8		master[MASTER_KEY_LEN];
	uint8		key[DATA_KEY_LEN];
	uint8		wrapped[GCM_NONCE_LEN + DATA_KEY_LEN + GCM_TAG_LEN];
	char	   *aad;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("id, purpose and version must not be null")));
	id = PG_GETARG_INT64(0);
	purpose = text_to_cstring(PG_GETARG_TEXT_PP(1));
	version = PG_GETARG_INT32(3);
	aad = data_key_aad(id, purpose, !PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2));
	keys_ensure_version(version);
	if (!keys_get(version, master))
		elog(ERROR, "current master key version %d is not loaded", version);
	if (RAND_bytes(key, sizeof(key)) != 1)
		crypto_fail("key generation");
	gcm_encrypt(master, (uint8 *) aad, strlen(aad), key, sizeof(key), wrapped);
	OPENSSL_cleanse(master, sizeof(master));
	OPENSSL_cleanse(key, sizeof(key));
	PG_RETURN_BYTEA_P(make_bytea(wrapped, sizeof(wrapped)));
}

/*
 * vms._rewrap_data_key(id bigint, purpose text, subject_id bigint,
 *						master_version integer, wrapped bytea, new_version integer)
 * returns bytea
 */
Datum
vms_rewrap_data_key(PG_FUNCTION_ARGS)
{
	int64		id;
	char	   *purpose;
	bool		has_subject = !PG_ARGISNULL(2);
	int64		subject = has_subject ? PG_GETARG_INT64(2) : 0;
	int32		old_version;
	bytea	   *old_wrapped;
	int32		new_version;
	uint8		key[DATA_KEY_LEN];
	uint8		master[MASTER_KEY_LEN];
	uint8		wrapped[GCM_NONCE_LEN + DATA_KEY_LEN + GCM_TAG_LEN];
	char	   *aad;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("only subject_id may be null")));
	id = PG_GETARG_INT64(0);
	purpose = text_to_cstring(PG_GETARG_TEXT_PP(1));
	old_version = PG_GETARG_INT32(3);
	old_wrapped = PG_GETARG_BYTEA_PP(4);
	new_version = PG_GETARG_INT32(5);
	aad = data_key_aad(id, purpose, has_subject, subject);

	unwrap_data_key(id, purpose, has_subject, subject, old_version, old_wrapped, key);
	keys_ensure_version(new_version);
	if (!keys_get(new_version, master))
	{
		OPENSSL_cleanse(key, sizeof(key));
		elog(ERROR, "master key version %d is not loaded", new_version);
	}
	gcm_encrypt(master, (uint8 *) aad, strlen(aad), key, sizeof(key), wrapped);
	OPENSSL_cleanse(master, sizeof(master));
	OPENSSL_cleanse(key, sizeof(key));
	PG_RETURN_BYTEA_P(make_bytea(wrapped, sizeof(wrapped)));
}

static void
value_aad(StringInfo aad, const uint8 *header, text *binding)
{
	initStringInfo(aad);
	appendBinaryStringInfo(aad, (const char *) header, VALUE_HEADER);
	appendBinaryStringInfo(aad, VARDATA_ANY(binding), VARSIZE_ANY_EXHDR(binding));
}

/* vms._encrypt(key_id bigint, plaintext bytea, binding text) returns bytea */
Datum
vms_encrypt(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	bytea	   *plain = PG_GETARG_BYTEA_PP(1);
	text	   *binding = PG_GETARG_TEXT_PP(2);
	size_t		plainlen = VARSIZE_ANY_EXHDR(plain);
	uint8		key[DATA_KEY_LEN];
	uint8		header[VALUE_HEADER];
	StringInfoData aad;
	bytea	   *out;
	int			i;

	crypto_fetch_data_key(id, key);
	header[0] = VALUE_FORMAT;
	for (i = 0; i < 8; i++)
		header[1 + i] = (uint8) ((uint64) id >> (56 - 8 * i));
	value_aad(&aad, header, binding);

	out = palloc(VARHDRSZ + VALUE_HEADER + GCM_NONCE_LEN + plainlen + GCM_TAG_LEN);
	SET_VARSIZE(out, VARHDRSZ + VALUE_HEADER + GCM_NONCE_LEN + plainlen + GCM_TAG_LEN);
	memcpy(VARDATA(out), header, VALUE_HEADER);
	PG_TRY();
	{
		gcm_encrypt(key, (uint8 *) aad.data, aad.len, (uint8 *) VARDATA_ANY(plain), plainlen,
					(uint8 *) VARDATA(out) + VALUE_HEADER);
	}
	PG_FINALLY();
	{
		OPENSSL_cleanse(key, sizeof(key));
	}
	PG_END_TRY();
	PG_RETURN_BYTEA_P(out);
}

/* vms._decrypt(ciphertext bytea, binding text) returns bytea */
Datum
vms_decrypt(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	text	   *binding = PG_GETARG_TEXT_PP(1);
	const uint8 *data = (const uint8 *) VARDATA_ANY(in);
	size_t		len = VARSIZE_ANY_EXHDR(in);
	uint8		key[DATA_KEY_LEN];
	StringInfoData aad;
	bytea	   *out;
	int64		id = 0;
	int			i;
	bool		ok;

	if (len < VALUE_HEADER + GCM_NONCE_LEN + GCM_TAG_LEN || data[0] != VALUE_FORMAT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("not a pg_vms ciphertext (too short or unknown format)")));
	for (i = 0; i < 8; i++)
		id = (int64) (((uint64) id << 8) | data[1 + i]);
	crypto_fetch_data_key(id, key);
	value_aad(&aad, data, binding);

	out = palloc(VARHDRSZ + len - VALUE_HEADER - GCM_NONCE_LEN - GCM_TAG_LEN);
	SET_VARSIZE(out, VARHDRSZ + len - VALUE_HEADER - GCM_NONCE_LEN - GCM_TAG_LEN);
	ok = gcm_decrypt(key, (uint8 *) aad.data, aad.len, data + VALUE_HEADER, len - VALUE_HEADER,
					 (uint8 *) VARDATA(out));
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("decryption failed for %s", text_to_cstring(binding)),
				 errdetail("The ciphertext was altered, or was copied from another row or column.")));
	PG_RETURN_BYTEA_P(out);
}

/* vms._master_key_version() returns integer (error without a key) */
Datum
vms_master_key_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(keys_current_version());
}

/* vms._load_master_key_version(version integer): fetch it from the key source */
Datum
vms_load_master_key_version(PG_FUNCTION_ARGS)
{
	keys_load_version(PG_GETARG_INT32(0));
	PG_RETURN_VOID();
}

/* vms._set_master_key_version(version integer): current from commit on */
Datum
vms_set_master_key_version(PG_FUNCTION_ARGS)
{
	keys_set_current(PG_GETARG_INT32(0));
	PG_RETURN_VOID();
}
