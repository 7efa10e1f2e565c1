/*
 * crypto.c: the signature over manifest.json and the timestamp over the
 * signature, with OpenSSL 3.0 (see verify.h).  The signature is checked in
 * three steps so that each failure has its own message:
 *   1. the signature itself (CMS_verify without the certificate check): the
 *      content digest ("the manifest was altered after signing") and the
 *      signature value over the signed attributes;
 *   2. each signer's certificate against the trusted store, as CMS_verify
 *      does it (purpose "smime_sign": no EKU or emailProtection), the
 *      certificates in the signature as untrusted intermediates:
 *      "signer certificate: <X509_verify_cert_error_string>";
 *   3. CMS_verify in full with CMS_CADES: also the signing-certificate(-v2)
 *      attribute of CAdES-BES must name the signer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pkcs7.h>

#include "verify.h"

void
asn1_time_iso(const ASN1_TIME *t, char out[40])
{
	struct tm	tm;

	out[0] = '\0';
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
	{
		ERR_clear_error();
		return;
	}
	snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02dZ", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
sign_info_free(SignInfo *s)
{
	free(s->signer);
	s->signer = NULL;
}

void
stamp_info_free(StampInfo *s)
{
	free(s->tsa);
	s->tsa = NULL;
}

/* Step 1's failure, told apart by OpenSSL's reason codes; empties the queue. */
static void
signature_failure(char *err, size_t errlen)
{
	unsigned long e, last = 0;
	const char *data = NULL;
	int			flags = 0, content = 0, value = 0, nocert = 0;
	char		lastdata[256] = "";

	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0)
	{
		if (ERR_GET_LIB(e) == ERR_LIB_CMS)
		{
			int			r = ERR_GET_REASON(e);

			if (r == CMS_R_CONTENT_VERIFY_ERROR)
				content = 1;
			else if (r == CMS_R_VERIFICATION_FAILURE)
				value = 1;
			else if (r == CMS_R_SIGNER_CERTIFICATE_NOT_FOUND)
				nocert = 1;
		}
		last = e;
		snprintf(lastdata, sizeof(lastdata), "%s", data && (flags & ERR_TXT_STRING) ? data : "");
	}
	if (content)
		snprintf(err, errlen, "signature: the manifest was altered after signing");
	else if (value)
		snprintf(err, errlen, "signature: the signature value does not verify (the signature was altered)");
	else if (nocert)
		snprintf(err, errlen, "signature: the signer's certificate is not in the signature");
	else
	{
		const char *reason = last ? ERR_reason_error_string(last) : NULL;

		snprintf(err, errlen, "signature: does not verify: %s%s%s", reason ? reason : "unknown error",
				 lastdata[0] ? ": " : "", lastdata);
	}
}

/*
 * The manifest as CMS_verify's detached content: a memory BIO under a null
 * filter.  (OpenSSL 3.0's CMS_verify copies a memory BIO into a BIO of its
 * own and leaks that copy when CMS_dataInit fails, e.g. for an unknown
 * digest; the filter keeps it on the path that frees what it allocates.)
 */
static BIO *
content_bio(const char *manifest, size_t len)
{
	BIO		   *mem = BIO_new_mem_buf(manifest, (int) len);
	BIO		   *filter = BIO_new(BIO_f_null());

	if (mem == NULL || filter == NULL)
	{
		BIO_free(mem);
		BIO_free(filter);
		return NULL;
	}
	return BIO_push(filter, mem);
}

int
signature_verify(CMS_ContentInfo *cms, const char *manifest, size_t len, X509_STORE *store,
				 SignInfo *info, char *err, size_t errlen)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	BIO		   *content = NULL;
	char		why[512];
	int			i, ret = -1;

	memset(info, 0, sizeof(*info));
	ERR_clear_error();
	if (len > JSON_MAX_SIZE)
	{
		snprintf(err, errlen, "signature: the manifest is too large");
		goto end;
	}
	/* 1. The signature: content digest and signature value. */
	content = content_bio(manifest, len);
	if (content == NULL)
		goto oom;
	if (CMS_verify(cms, NULL, store, content, NULL, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1)
	{
		signature_failure(err, errlen);
		goto end;
	}
	BIO_free_all(content);
	content = NULL;

	/* 2. Each signer's certificate (CMS_verify has attached them to the SignerInfos). */
	untrusted = CMS_get1_certs(cms);
	ctx = X509_STORE_CTX_new();
	if (ctx == NULL)
		goto oom;
	for (i = 0; i < sk_CMS_SignerInfo_num(sis); i++)
	{
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, i);
		X509	   *signer = NULL;

		CMS_SignerInfo_get0_algs(si, NULL, &signer, NULL, NULL);
		if (signer == NULL)
		{
			snprintf(err, errlen, "signature: the signer's certificate is not in the signature");
			goto end;
		}
		if (X509_STORE_CTX_init(ctx, store, signer, untrusted) != 1 ||
			X509_STORE_CTX_set_default(ctx, "smime_sign") != 1)
			goto crypto;
		if (X509_verify_cert(ctx) <= 0)
		{
			int			e = X509_STORE_CTX_get_error(ctx);

			ERR_clear_error();
			snprintf(err, errlen, "signer certificate: %s", X509_verify_cert_error_string(e));
			goto end;
		}
		X509_STORE_CTX_cleanup(ctx);
	}

	/* 3. Everything again, with the CAdES signing-certificate attribute. */
	content = content_bio(manifest, len);
	if (content == NULL)
		goto oom;
	if (CMS_verify(cms, NULL, store, content, NULL, CMS_BINARY | CMS_CADES) != 1)
	{
		ossl_reason(why, sizeof(why));
		snprintf(err, errlen, "signature: the CAdES signing-certificate attribute does not name the signer: %s", why);
		goto end;
	}

	/* For the summary: who signed, and when they say they did. */
	for (i = 0; i < sk_CMS_SignerInfo_num(sis); i++)
	{
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, i);
		X509	   *signer = NULL;
		char	   *subject, *joined;
		size_t		n;

		CMS_SignerInfo_get0_algs(si, NULL, &signer, NULL, NULL);
		subject = signer ? name_oneline(X509_get_subject_name(signer)) : NULL;
		if (subject == NULL)
			goto oom;
		n = (info->signer ? strlen(info->signer) + 2 : 0) + strlen(subject) + 1;
		joined = malloc(n);
		if (joined == NULL)
		{
			free(subject);
			goto oom;
		}
		snprintf(joined, n, "%s%s%s", info->signer ? info->signer : "", info->signer ? "; " : "", subject);
		free(subject);
		free(info->signer);
		info->signer = joined;
		if (info->signing_time[0] == '\0')
		{
			const ASN1_TIME *t = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_signingTime), -3,
															 V_ASN1_UTCTIME);

			if (t == NULL)
				t = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_signingTime), -3,
												V_ASN1_GENERALIZEDTIME);
			asn1_time_iso(t, info->signing_time);
		}
	}
	ERR_clear_error();
	ret = 0;
	goto end;
oom:
	snprintf(err, errlen, "out of memory");
	goto end;
crypto:
	ossl_reason(why, sizeof(why));
	snprintf(err, errlen, "signature: %s", why);
end:
	if (ret != 0)
		sign_info_free(info);
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	BIO_free_all(content);
	ERR_clear_error();
	return ret;
}

/*
 * The timestamp: granted, version 1, its imprint is the SHA-256 (or whatever
 * hash it names) of manifest.json.p7s, signed by a TSA certificate that chains
 * to store and has the critical timeStamping EKU, the TSA name (if given)
 * that of its signer.  As `openssl ts -verify -data manifest.json.p7s`.
 */
int
timestamp_verify(TS_RESP *resp, const unsigned char *p7s, size_t p7s_len, X509_STORE *store,
				 StampInfo *info, char *err, size_t errlen)
{
	TS_VERIFY_CTX *ctx = NULL;
	BIO		   *data = NULL;
	TS_TST_INFO *tst;
	char		why[512];
	int			ret = -1;

	memset(info, 0, sizeof(*info));
	ERR_clear_error();
	if (p7s_len > MAX_P7S_SIZE)
	{
		snprintf(err, errlen, "timestamp: the signature is too large");
		return -1;
	}
	ctx = TS_VERIFY_CTX_new();
	data = BIO_new_mem_buf(p7s, (int) p7s_len);
	if (ctx == NULL || data == NULL || X509_STORE_up_ref(store) != 1)
	{
		BIO_free(data);
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	TS_VERIFY_CTX_set_data(ctx, data);	/* the context owns data and the store reference */
	TS_VERIFY_CTX_set_store(ctx, store);
	TS_VERIFY_CTX_set_flags(ctx, TS_VFY_VERSION | TS_VFY_SIGNER | TS_VFY_DATA | TS_VFY_SIGNATURE);
	if (TS_RESP_verify_response(ctx, resp) != 1)
	{
		ossl_reason(why, sizeof(why));
		snprintf(err, errlen, "timestamp: does not verify: %s", why);
		goto end;
	}
	tst = TS_RESP_get_tst_info(resp);
	asn1_time_iso(tst ? TS_TST_INFO_get_time(tst) : NULL, info->gen_time);
	{
		PKCS7	   *token = TS_RESP_get_token(resp);
		STACK_OF(X509) *signers = token ? PKCS7_get0_signers(token, NULL, 0) : NULL;

		if (signers != NULL && sk_X509_num(signers) > 0)
			info->tsa = name_oneline(X509_get_subject_name(sk_X509_value(signers, 0)));
		sk_X509_free(signers);
	}
	ret = 0;
end:
	TS_VERIFY_CTX_free(ctx);
	ERR_clear_error();
	return ret;
}
