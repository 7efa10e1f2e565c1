/*
 * fuzz_package.c: the libFuzzer target over vms-verify's package parsing
 * (make -C tools fuzz builds bin/fuzz-vms-verify with clang
 * -fsanitize=fuzzer,address,undefined; not part of the tool itself).
 *
 * Input format: up to four parts, in this order
 *     manifest.json, SHA256SUMS, manifest.json.p7s, manifest.json.p7s.tsr
 * each as a 4-byte little-endian length followed by that many bytes.  A
 * length beyond the end of the input takes what is left; missing parts are
 * empty.  So "\x05\x00\x00\x00{...}" alone is a manifest with nothing else.
 * vms-verify/fuzz-corpus/ holds seeds in this format made from real packages
 * (vms-verify/make-fuzz-seed.sh PACKAGE_DIR > SEED).
 *
 * Each input goes through what vms-verify does with the files before it
 * touches the payload: manifest_parse (strict JSON, then the package format),
 * sums_parse and sums_agree, signature_parse (d2i CMS) and signature_verify
 * over the manifest part, timestamp_parse (d2i TS_RESP) and timestamp_verify
 * over the p7s part, against an empty trust store (so chains fail, but
 * everything before the chain is exercised).  Any crash, sanitizer report or
 * leak is a finding.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>

#include "verify.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Part
{
	const uint8_t *p;
	size_t		len;
} Part;

static size_t
take_part(const uint8_t *data, size_t size, size_t pos, Part *part)
{
	uint32_t	n;

	part->p = data + pos;
	part->len = 0;
	if (size - pos < 4)
		return size;
	n = (uint32_t) data[pos] | ((uint32_t) data[pos + 1] << 8) | ((uint32_t) data[pos + 2] << 16) |
		((uint32_t) data[pos + 3] << 24);
	pos += 4;
	part->p = data + pos;
	part->len = n < size - pos ? n : size - pos;
	return pos + part->len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static X509_STORE *store = NULL;
	Part		parts[4];
	Manifest	m;
	Sums		sums;
	SignInfo	si;
	StampInfo	st;
	CMS_ContentInfo *cms;
	TS_RESP    *resp;
	char		err[ERRLEN];
	size_t		pos = 0;
	int			i, have_manifest;

	if (store == NULL && (store = X509_STORE_new()) == NULL)
		return 0;
	for (i = 0; i < 4; i++)
		pos = take_part(data, size, pos, &parts[i]);

	have_manifest = manifest_parse((const char *) parts[0].p, parts[0].len, &m, err, sizeof(err)) == 0;
	if (sums_parse((const char *) parts[1].p, parts[1].len, &sums, err, sizeof(err)) == 0)
	{
		if (have_manifest)
			(void) sums_agree(&m, &sums, err, sizeof(err));
		sums_free(&sums);
	}
	manifest_free(&m);

	cms = signature_parse(parts[2].p, parts[2].len, err, sizeof(err));
	if (cms != NULL)
	{
		if (signature_verify(cms, (const char *) parts[0].p, parts[0].len, store, &si, err, sizeof(err)) == 0)
			sign_info_free(&si);
		CMS_ContentInfo_free(cms);
	}
	resp = timestamp_parse(parts[3].p, parts[3].len, err, sizeof(err));
	if (resp != NULL)
	{
		if (timestamp_verify(resp, parts[2].p, parts[2].len, store, &st, err, sizeof(err)) == 0)
			stamp_info_free(&st);
		TS_RESP_free(resp);
	}
	ERR_clear_error();
	return 0;
}
