/*-------------------------------------------------------------------------
 * facex.c
 *	  Face embeddings: validation and packing, and the search that decrypts
 *	  each subject's embedding inside the server and ranks by cosine
 *	  similarity.
 *
 *	  An embedding is stored as the AES-256-GCM encryption (crypto.c) of its
 *	  float4 values in native byte order, under the subject's own data key,
 *	  bound to vms.persons.embedding:<person id>.  The search keeps unwrapped
 *	  subject keys in a backend cache (they are wiped and dropped whenever
 *	  vms.data_keys changes: a rotation, an erasure), so a warm search costs
 *	  one AES-GCM decryption per person.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/rel.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "pg_vms.h"
#include "crypto.h"
#include "facex.h"

#define MAX_EMBEDDING_DIM 4096
#define EMBEDDING_BINDING "vms.persons.embedding:"

typedef struct SubjectKey
{
	int64		key_id;			/* hash key */
	uint8		key[DATA_KEY_LEN];
} SubjectKey;

static HTAB *subject_keys = NULL;
static bool subject_keys_stale = false;
static bool scan_running = false;

/*
 * The keys prefetched for a cold search also go into an array indexed by key
 * id: persons are stored, and scanned, roughly in key id order, so lookups
 * walk memory sequentially.  Keys outside it are found in the hash.
 */
#define DENSE_MAX_SPAN (1024 * 1024)
static SubjectKey *dense_keys = NULL;
static int64 dense_base = 0;
static int64 dense_span = 0;
static Oid	data_keys_relid = InvalidOid;

static void
subject_keys_drop(void)
{
	HASH_SEQ_STATUS status;
	SubjectKey *e;

	if (dense_keys != NULL)
	{
		OPENSSL_cleanse(dense_keys, sizeof(SubjectKey) * dense_span);
		pfree(dense_keys);
		dense_keys = NULL;
		dense_span = 0;
	}
	if (subject_keys == NULL)
		return;
	hash_seq_init(&status, subject_keys);
	while ((e = hash_seq_search(&status)) != NULL)
		OPENSSL_cleanse(e->key, sizeof(e->key));
	hash_destroy(subject_keys);
	subject_keys = NULL;
}

/*
 * Invalidations can arrive in the middle of a scan (autovacuum analysing
 * vms.data_keys is enough): then the callback only marks the cache stale and
 * the scan wipes it when it ends; otherwise it wipes it at once.
 */
static void
facex_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == data_keys_relid)
	{
		/* Not in use: wipe now, so a destroyed key does not linger. */
		if (!scan_running)
			subject_keys_drop();
		else
			subject_keys_stale = true;
		/* The extension may have been dropped and created again. */
		data_keys_relid = InvalidOid;
	}
}

void
facex_install_callbacks(void)
{
	CacheRegisterRelcacheCallback(facex_relcache_callback, (Datum) 0);
}

/* Check an embedding array and return its values; dim < 0: any length. */
static float4 *
embedding_values(ArrayType *arr, int dim, int *n_out)
{
	int			n;

	if (ARR_NDIM(arr) != 1 || ARR_ELEMTYPE(arr) != FLOAT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an embedding must be a one-dimensional real[]")));
	if (ARR_HASNULL(arr) && array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an embedding must not contain nulls")));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (n < 1 || n > MAX_EMBEDDING_DIM || (dim >= 0 && n != dim))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an embedding of %d values does not fit (expected %d)", n, dim < 0 ? n : dim)));
	{
		float4	   *v = (float4 *) ARR_DATA_PTR(arr);
		int			i;
		double		norm = 0;

		for (i = 0; i < n; i++)
		{
			if (isnan(v[i]) || isinf(v[i]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("an embedding must not contain NaN or infinity (value %d)", i + 1)));
			norm += (double) v[i] * v[i];
		}
		if (norm == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an embedding must not be all zeros")));
		*n_out = n;
		return v;
	}
}

PG_FUNCTION_INFO_V1(vms_data_keys_changed);

/*
 * Statement trigger on vms.data_keys: every backend drops its cached subject
 * keys when the transaction commits (an erasure destroys a key by UPDATE,
 * which by itself invalidates nothing).
 */
Datum
vms_data_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("vms._data_keys_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(vms_embedding_pack);
PG_FUNCTION_INFO_V1(vms_embedding_unpack);
PG_FUNCTION_INFO_V1(vms_face_scan);

/* vms._embedding_pack(embedding real[], dim integer) returns bytea */
Datum
vms_embedding_pack(PG_FUNCTION_ARGS)
{
	int			n;
	float4	   *v = embedding_values(PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_INT32(1), &n);
	bytea	   *out = palloc(VARHDRSZ + n * sizeof(float4));

	SET_VARSIZE(out, VARHDRSZ + n * sizeof(float4));
	memcpy(VARDATA(out), v, n * sizeof(float4));
	PG_RETURN_BYTEA_P(out);
}

/* vms._embedding_unpack(packed bytea) returns real[] */
Datum
vms_embedding_unpack(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	int			n = VARSIZE_ANY_EXHDR(b) / sizeof(float4);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	float4		f;
	int			i;

	if (VARSIZE_ANY_EXHDR(b) % sizeof(float4) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("not a packed embedding")));
	for (i = 0; i < n; i++)
	{
		memcpy(&f, VARDATA_ANY(b) + i * sizeof(float4), sizeof(float4));
		elems[i] = Float4GetDatum(f);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
}

typedef struct Hit
{
	int64		person_id;
	float4		score;
} Hit;

/* Keep the k best in a min-heap on score. */
static void
heap_offer(Hit *heap, int *size, int k, int64 id, float4 score)
{
	int			i;

	if (*size < k)
	{
		i = (*size)++;
		while (i > 0 && heap[(i - 1) / 2].score > score)
		{
			heap[i] = heap[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		heap[i].person_id = id;
		heap[i].score = score;
		return;
	}
	if (score <= heap[0].score)
		return;
	i = 0;
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i;
		float4		ms = score;

		if (l < *size && heap[l].score < ms)
			m = l, ms = heap[l].score;
		if (r < *size && heap[r].score < ms)
			m = r;
		if (m == i)
			break;
		heap[i] = heap[m];
		i = m;
	}
	heap[i].person_id = id;
	heap[i].score = score;
}

static int
hit_desc(const void *a, const void *b)
{
	float4		x = ((const Hit *) a)->score,
				y = ((const Hit *) b)->score;

	return (x < y) - (x > y);
}

/*
 * The next batch of a scan cursor.  The tuple table is kept in a local:
 * nested SPI calls (a key lookup) replace the global SPI_tuptable.
 */
static uint64
next_batch(Portal portal, SPITupleTable **tt)
{
	SPI_cursor_fetch(portal, true, 1000);
	*tt = SPI_tuptable;
	return SPI_processed;
}

/* Unwrap every live subject key of the lists into the cache (a cold search). */
static void
prefill_subject_keys(Datum lists)
{
	SPIPlanPtr	plan;
	Portal		portal;

	plan = SPI_prepare("SELECT d.id, d.purpose, d.subject_id, d.master_version, d.wrapped "
					   "FROM vms.data_keys d JOIN vms.persons p ON p.key_id OPERATOR(pg_catalog.=) d.id "
					   "WHERE p.watch_list_id OPERATOR(pg_catalog.=) ANY ($1) AND d.destroyed_at IS NULL",
					   1, (Oid[]) {INT4ARRAYOID});
	if (plan == NULL)
		elog(ERROR, "could not prepare the subject key scan");

	/* The dense array, when the key ids of these lists span little enough. */
	if (SPI_execute_with_args("SELECT pg_catalog.min(p.key_id), pg_catalog.max(p.key_id), pg_catalog.count(*) "
							  "FROM vms.persons p WHERE p.watch_list_id OPERATOR(pg_catalog.=) ANY ($1)",
							  1, (Oid[]) {INT4ARRAYOID}, &lists, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		null_lo,
					null_hi;
		int64		lo = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &null_lo));
		int64		hi = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &null_hi));
		int64		count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &null_hi));

		/* Only when the ids are dense: at most twice as many slots as keys. */
		if (!null_lo && hi - lo + 1 <= DENSE_MAX_SPAN && hi - lo + 1 <= 2 * count)
		{
			dense_base = lo;
			dense_span = hi - lo + 1;
			dense_keys = MemoryContextAllocZero(TopMemoryContext, sizeof(SubjectKey) * dense_span);
		}
	}
	portal = SPI_cursor_open(NULL, plan, &lists, NULL, true);
	for (;;)
	{
		SPITupleTable *tt;
		uint64		r,
					nrows = next_batch(portal, &tt);

		if (nrows == 0)
			break;
		for (r = 0; r < nrows; r++)
		{
			bool		isnull,
						subj_null,
						found;
			HeapTuple	tup = tt->vals[r];
			int64		key_id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
			SubjectKey *sk = hash_search(subject_keys, &key_id, HASH_ENTER, &found);

			if (!found)
			{
				int64		subject = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 3, &subj_null));

				PG_TRY();
				{
					unwrap_data_key(key_id, TextDatumGetCString(SPI_getbinval(tup, tt->tupdesc, 2, &isnull)),
									!subj_null, subject,
									DatumGetInt32(SPI_getbinval(tup, tt->tupdesc, 4, &isnull)),
									DatumGetByteaPP(SPI_getbinval(tup, tt->tupdesc, 5, &isnull)), sk->key);
				}
				PG_CATCH();
				{
					hash_search(subject_keys, &key_id, HASH_REMOVE, NULL);
					PG_RE_THROW();
				}
				PG_END_TRY();
			}
			if (dense_keys != NULL && key_id >= dense_base && key_id - dense_base < dense_span)
			{
				dense_keys[key_id - dense_base].key_id = key_id;
				memcpy(dense_keys[key_id - dense_base].key, sk->key, DATA_KEY_LEN);
			}
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
}

/* Look up one subject key the cache lacks (a person added since). */
static void
fetch_subject_key(int64 key_id, SubjectKey *sk)
{
	PG_TRY();
	{
		crypto_fetch_data_key(key_id, sk->key);
	}
	PG_CATCH();
	{
		hash_search(subject_keys, &key_id, HASH_REMOVE, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * vms._face_scan(probe real[], k integer, min_score real, lists integer[],
 *				  encrypted boolean) returns setof (person_id bigint, score real)
 *
 * encrypted = false scans vms._face_bench_plain instead (the benchmark's
 * baseline: the same code over plaintext embeddings).
 */
Datum
vms_face_scan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n;
	float4	   *probe = embedding_values(PG_GETARG_ARRAYTYPE_P(0), -1, &n);
	int			k = PG_GETARG_INT32(1);
	float4		min_score = PG_GETARG_FLOAT4(2);
	Datum		lists = PG_GETARG_DATUM(3);
	bool		encrypted = PG_GETARG_BOOL(4);
	double		pnorm = 0;
	float4	   *unit;
	Hit		   *heap;
	int			size = 0;
	int			i;
	Portal		portal;
	SPIPlanPtr	plan;
	float4	   *plain;
	size_t		expected = VALUE_HEADER + GCM_NONCE_LEN + n * sizeof(float4) + GCM_TAG_LEN;
	EVP_CIPHER_CTX *ctx;

	if (k < 1 || k > 100)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and 100")));
	if (isnan(min_score) || min_score < -1 || min_score > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_score must be between -1 and 1")));

	InitMaterializedSRF(fcinfo, 0);
	unit = palloc(sizeof(float4) * n);
	for (i = 0; i < n; i++)
		pnorm += (double) probe[i] * probe[i];
	pnorm = sqrt(pnorm);
	for (i = 0; i < n; i++)
		unit[i] = (float4) (probe[i] / pnorm);
	heap = palloc(sizeof(Hit) * k);
	plain = palloc(sizeof(float4) * n);

	if (subject_keys_stale)
	{
		subject_keys_drop();
		subject_keys_stale = false;
	}
	if (!OidIsValid(data_keys_relid))
		data_keys_relid = get_relname_relid("data_keys", vms_schema_oid(false));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (encrypted)
		/* The caller passes only lists of the probe's dimension. */
		plan = SPI_prepare("SELECT p.id, p.embedding, p.key_id FROM vms.persons p "
						   "WHERE p.watch_list_id OPERATOR(pg_catalog.=) ANY ($1) AND $2 IS NOT NULL",
						   2, (Oid[]) {INT4ARRAYOID, INT4OID});
	else
		plan = SPI_prepare("SELECT person_id, embedding, key_id FROM vms._face_bench_plain "
						   "WHERE watch_list_id OPERATOR(pg_catalog.=) ANY ($1) AND $2 IS NOT NULL",
						   2, (Oid[]) {INT4ARRAYOID, INT4OID});
	if (plan == NULL)
		elog(ERROR, "could not prepare the face scan");

	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
		EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) != 1)
		elog(ERROR, "AES-256-GCM setup failed");

	scan_running = true;
	PG_TRY();
	{
		if (encrypted && subject_keys == NULL)
		{
			HASHCTL		ctl;

			ctl.keysize = sizeof(int64);
			ctl.entrysize = sizeof(SubjectKey);
			ctl.hcxt = TopMemoryContext;
			subject_keys = hash_create("pg_vms subject keys", 1024, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
			prefill_subject_keys(lists);
		}
		portal = SPI_cursor_open(NULL, plan, (Datum[]) {lists, Int32GetDatum(n)}, NULL, true);
		for (;;)
		{
			SPITupleTable *tt;
			uint64		r,
						nrows = next_batch(portal, &tt);

			if (nrows == 0)
				break;
			for (r = 0; r < nrows; r++)
			{
				HeapTuple	tup = tt->vals[r];
				bool		isnull;
				int64		person = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
				Datum		raw = SPI_getbinval(tup, tt->tupdesc, 2, &isnull);
				bytea	   *emb = DatumGetByteaPP(raw);
				const uint8 *data = (const uint8 *) VARDATA_ANY(emb);
				size_t		len = VARSIZE_ANY_EXHDR(emb);
				double		dot = 0,
							norm = 0;
				int			j;

				CHECK_FOR_INTERRUPTS();
				if (encrypted)
				{
					int64		key_id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
					bool		found;
					SubjectKey *sk;
					uint8		aad[VALUE_HEADER + 64];
					int			aadlen;

					if (dense_keys != NULL && key_id >= dense_base && key_id - dense_base < dense_span &&
						dense_keys[key_id - dense_base].key_id == key_id)
						sk = &dense_keys[key_id - dense_base];
					else
					{
						sk = hash_search(subject_keys, &key_id, HASH_ENTER, &found);
						if (!found)
							fetch_subject_key(key_id, sk);
					}
					if (len != expected)
						ereport(ERROR,
								(errcode(ERRCODE_DATA_EXCEPTION),
								 errmsg("the embedding of person " INT64_FORMAT " has the wrong size", person)));
					memcpy(aad, data, VALUE_HEADER);
					memcpy(aad + VALUE_HEADER, EMBEDDING_BINDING, sizeof(EMBEDDING_BINDING) - 1);
					aadlen = VALUE_HEADER + sizeof(EMBEDDING_BINDING) - 1;
					aadlen += pg_lltoa(person, (char *) aad + aadlen);
					if (!gcm_decrypt_with(ctx, sk->key, aad, aadlen, data + VALUE_HEADER,
										  len - VALUE_HEADER, (uint8 *) plain))
						ereport(ERROR,
								(errcode(ERRCODE_DATA_EXCEPTION),
								 errmsg("decryption failed for vms.persons.embedding:" INT64_FORMAT, person)));
				}
				else
				{
					if (len != n * sizeof(float4))
						continue;
					memcpy(plain, data, n * sizeof(float4));
				}
				for (j = 0; j < n; j++)
				{
					dot += (double) unit[j] * plain[j];
					norm += (double) plain[j] * plain[j];
				}
				if ((Pointer) emb != DatumGetPointer(raw))
					pfree(emb);
				if (norm > 0)
				{
					float4		score = (float4) (dot / sqrt(norm));

					if (score >= min_score)
						heap_offer(heap, &size, k, person, score);
				}
			}
			SPI_freetuptable(tt);
		}
		SPI_cursor_close(portal);
	}
	PG_FINALLY();
	{
		EVP_CIPHER_CTX_free(ctx);
		OPENSSL_cleanse(plain, sizeof(float4) * n);
		scan_running = false;
		if (subject_keys_stale)
		{
			subject_keys_drop();
			subject_keys_stale = false;
		}
	}
	PG_END_TRY();
	SPI_finish();

	qsort(heap, size, sizeof(Hit), hit_desc);
	for (i = 0; i < size; i++)
	{
		Datum		values[2] = {Int64GetDatum(heap[i].person_id), Float4GetDatum(heap[i].score)};
		bool		nulls[2] = {false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
