/*
 * parse.c: the package's files as data (see verify.h): manifest.json into a
 * Manifest, SHA256SUMS into its lines, whether the two agree, and the DER of
 * the signature and of the timestamp.  No file system, no output: the
 * fuzz target (fuzz_package.c) calls these directly.  Each error is one
 * complete line of text for the tool to print (without the tool's name).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "verify.h"

/* The package's own files: never a payload name. */
static const char *const reserved_names[] = {
	"manifest.json", "manifest.json.p7s", "manifest.json.p7s.tsr", "SHA256SUMS", NULL
};

/*
 * A payload file name as vms-export writes them: [A-Za-z0-9._-], 1..200
 * bytes, not starting with a dot, not one of the package's own files.  So a
 * name is safe to open below the package directory, to print, and to find
 * in SHA256SUMS (no escaping, no spaces).
 */
int
safe_file_name(const char *name)
{
	size_t		n = strlen(name), i;

	if (n == 0 || n > 200 || name[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '_' || c == '-'))
			return 0;
	}
	for (i = 0; reserved_names[i]; i++)
		if (strcmp(name, reserved_names[i]) == 0)
			return 0;
	return 1;
}

/* "name" of obj as a string (or, with nullable, null: *out NULL). */
static int
get_str(const JsonValue *obj, const char *path, const char *name, int nullable, const char **out,
		char *err, size_t errlen)
{
	const JsonValue *v = json_get(obj, name);

	if (v != NULL && nullable && v->type == JSON_NULL)
	{
		*out = NULL;
		return 0;
	}
	if (v == NULL || (*out = json_cstr(v)) == NULL)
	{
		snprintf(err, errlen, "manifest.json: \"%s%s\" is %s, not a string%s", path, name,
				 v == NULL ? "missing" : (v->type == JSON_STRING ? "a string holding NUL" : json_type_name(v->type)),
				 nullable ? " or null" : "");
		return -1;
	}
	return 0;
}

static int
get_int(const JsonValue *obj, const char *path, const char *name, long long min, long long max,
		long long *out, char *err, size_t errlen)
{
	const JsonValue *v = json_get(obj, name);

	if (json_int(v, min, max, out) != 0)
	{
		snprintf(err, errlen, "manifest.json: \"%s%s\" is %s, not an integer from %lld to %lld", path, name,
				 v == NULL ? "missing" : json_type_name(v->type), min, max);
		return -1;
	}
	return 0;
}

static int
get_array(const JsonValue *obj, const char *name, size_t *n, char *err, size_t errlen)
{
	const JsonValue *v = json_get(obj, name);
	size_t		i;

	if (v == NULL || v->type != JSON_ARRAY)
	{
		snprintf(err, errlen, "manifest.json: \"%s\" is %s, not an array", name,
				 v == NULL ? "missing" : json_type_name(v->type));
		return -1;
	}
	for (i = 0; i < v->n; i++)
		if (v->items[i]->type != JSON_OBJECT)
		{
			snprintf(err, errlen, "manifest.json: \"%s\" item %zu is %s, not an object", name, i + 1,
					 json_type_name(v->items[i]->type));
			return -1;
		}
	*n = v->n;
	return 0;
}

static const JsonValue *
get_object(const JsonValue *obj, const char *name, char *err, size_t errlen)
{
	const JsonValue *v = json_get(obj, name);

	if (v == NULL || v->type != JSON_OBJECT)
	{
		snprintf(err, errlen, "manifest.json: \"%s\" is %s, not an object", name,
				 v == NULL ? "missing" : json_type_name(v->type));
		return NULL;
	}
	return v;
}

/* file, bytes, sha256 of a payload object; path names it in messages. */
static int
get_payload(const JsonValue *obj, const char *path, Payload *p, char *err, size_t errlen)
{
	const char *hex;

	if (get_str(obj, path, "file", 0, &p->file, err, errlen) != 0 ||
		get_int(obj, path, "bytes", 0, 9223372036854775807LL, &p->bytes, err, errlen) != 0 ||
		get_str(obj, path, "sha256", 0, &hex, err, errlen) != 0)
		return -1;
	if (!safe_file_name(p->file))
	{
		snprintf(err, errlen, "manifest.json: \"%sfile\" is not a payload file name", path);
		return -1;
	}
	if (!is_sha256_hex(hex))
	{
		snprintf(err, errlen, "manifest.json: \"%ssha256\" is not 64 lowercase hex digits", path);
		return -1;
	}
	memcpy(p->sha256, hex, 65);
	return 0;
}

static int
parse_encryption(const JsonValue *enc, Manifest *m, char *err, size_t errlen)
{
	const JsonValue *rec = json_get(enc, "recipients");
	const JsonValue *chunks = json_get(enc, "chunks");
	const char *scheme;
	long long	offset = 0;
	size_t		i;

	if (get_str(enc, "encryption.", "scheme", 0, &scheme, err, errlen) != 0)
		return -1;
	if (strcmp(scheme, SCHEME_ID) != 0)
	{
		snprintf(err, errlen, "manifest.json: \"encryption.scheme\" is not " SCHEME_ID);
		return -1;
	}
	m->encrypted = 1;
	if (rec != NULL && rec->type == JSON_STRING && json_cstr(rec) && strcmp(rec->str, "password") == 0)
		m->password = 1;
	else if (rec != NULL && rec->type == JSON_ARRAY && rec->n > 0)
	{
		m->recipients = calloc(rec->n, sizeof(char *));
		if (m->recipients == NULL)
		{
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (i = 0; i < rec->n; i++)
			if ((m->recipients[i] = json_cstr(rec->items[i])) == NULL)
			{
				snprintf(err, errlen, "manifest.json: \"encryption.recipients\" item %zu is not a string", i + 1);
				return -1;
			}
		m->nrecipients = rec->n;
	}
	else
	{
		snprintf(err, errlen, "manifest.json: \"encryption.recipients\" is neither \"password\" nor a list of subjects");
		return -1;
	}
	if (chunks == NULL || chunks->type != JSON_ARRAY || chunks->n == 0 || chunks->n > MAX_CHUNKS)
	{
		snprintf(err, errlen, "manifest.json: \"encryption.chunks\" is not an array of 1 to %d chunks", MAX_CHUNKS);
		return -1;
	}
	m->chunks = calloc(chunks->n, sizeof(Payload));
	if (m->chunks == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->nchunks = chunks->n;
	for (i = 0; i < chunks->n; i++)
	{
		const JsonValue *c = chunks->items[i];
		Payload    *p = &m->chunks[i];
		char		path[64], want[256];

		snprintf(path, sizeof(path), "encryption.chunks[%zu].", i);
		if (c->type != JSON_OBJECT)
		{
			snprintf(err, errlen, "manifest.json: \"encryption.chunks\" item %zu is not an object", i + 1);
			return -1;
		}
		if (get_payload(c, path, p, err, errlen) != 0 ||
			get_int(c, path, "plain_offset", 0, 9223372036854775807LL, &p->plain_offset, err, errlen) != 0 ||
			get_int(c, path, "plain_bytes", 0, 9223372036854775807LL, &p->plain_bytes, err, errlen) != 0)
			return -1;
		snprintf(want, sizeof(want), "%s.%04zu.p7m", m->output.file, i + 1);
		if (strcmp(p->file, want) != 0)
		{
			snprintf(err, errlen, "manifest.json: chunk %zu is \"%s\", not \"%s\"", i + 1, p->file, want);
			return -1;
		}
		if (p->plain_offset != offset || p->plain_bytes > m->output.bytes - offset)
		{
			snprintf(err, errlen, "manifest.json: chunk %zu does not continue the plaintext"
					 " (plain_offset %lld, plain_bytes %lld)", i + 1, p->plain_offset, p->plain_bytes);
			return -1;
		}
		if (p->plain_bytes == 0 && m->output.bytes != 0)
		{
			snprintf(err, errlen, "manifest.json: chunk %zu holds no plaintext", i + 1);
			return -1;
		}
		offset += p->plain_bytes;
	}
	if (offset != m->output.bytes)
	{
		snprintf(err, errlen, "manifest.json: the chunks hold %lld bytes of plaintext, the output %lld",
				 offset, m->output.bytes);
		return -1;
	}
	return 0;
}

int
manifest_parse(const char *text, size_t len, Manifest *m, char *err, size_t errlen)
{
	const JsonValue *root, *camera, *tool, *output, *enc;
	const char *format;
	char		jerr[256];

	memset(m, 0, sizeof(*m));
	m->root = json_parse(text, len, jerr, sizeof(jerr));
	if (m->root == NULL)
	{
		snprintf(err, errlen, "manifest.json: not valid JSON (%s)", jerr);
		return -1;
	}
	root = m->root;
	if (root->type != JSON_OBJECT)
	{
		snprintf(err, errlen, "manifest.json: %s, not an object", json_type_name(root->type));
		return -1;
	}
	if (get_str(root, "", "format", 0, &format, err, errlen) != 0)
		return -1;
	if (strcmp(format, FORMAT_ID) != 0)
	{
		snprintf(err, errlen, "manifest.json: the format is not " FORMAT_ID);
		return -1;
	}
	if (get_int(root, "", "export_id", 1, 9223372036854775807LL, &m->export_id, err, errlen) != 0 ||
		get_str(root, "", "kind", 0, &m->kind, err, errlen) != 0)
		return -1;
	if (strcmp(m->kind, "video") != 0 && strcmp(m->kind, "snapshot") != 0)
	{
		snprintf(err, errlen, "manifest.json: \"kind\" is neither video nor snapshot");
		return -1;
	}
	if ((camera = get_object(root, "camera", err, errlen)) == NULL ||
		get_int(camera, "camera.", "id", 1, 9223372036854775807LL, &m->camera_id, err, errlen) != 0 ||
		get_str(camera, "camera.", "name", 1, &m->camera_name, err, errlen) != 0 ||
		get_str(root, "", "from", 0, &m->from, err, errlen) != 0 ||
		get_str(root, "", "to", 0, &m->to, err, errlen) != 0 ||
		get_str(root, "", "exported_by", 1, &m->exported_by, err, errlen) != 0 ||
		get_str(root, "", "session_user", 1, &m->session_user, err, errlen) != 0 ||
		get_str(root, "", "reason", 1, &m->reason, err, errlen) != 0 ||
		get_str(root, "", "profile", 1, &m->profile, err, errlen) != 0 ||
		get_str(root, "", "created_at", 0, &m->created_at, err, errlen) != 0 ||
		(tool = get_object(root, "tool", err, errlen)) == NULL ||
		get_str(tool, "tool.", "name", 0, &m->tool_name, err, errlen) != 0 ||
		get_str(tool, "tool.", "version", 0, &m->tool_version, err, errlen) != 0 ||
		get_array(root, "segments", &m->nsegments, err, errlen) != 0 ||
		get_array(root, "masks", &m->nmasks, err, errlen) != 0 ||
		get_array(root, "lifts", &m->nlifts, err, errlen) != 0 ||
		get_array(root, "holds", &m->nholds, err, errlen) != 0 ||
		(output = get_object(root, "output", err, errlen)) == NULL ||
		get_payload(output, "output.", &m->output, err, errlen) != 0)
		return -1;
	enc = json_get(root, "encryption");
	if (enc == NULL || (enc->type != JSON_NULL && enc->type != JSON_OBJECT))
	{
		snprintf(err, errlen, "manifest.json: \"encryption\" is %s, not null or an object",
				 enc == NULL ? "missing" : json_type_name(enc->type));
		return -1;
	}
	if (enc->type == JSON_OBJECT && parse_encryption(enc, m, err, errlen) != 0)
		return -1;
	return 0;
}

void
manifest_free(Manifest *m)
{
	json_free(m->root);
	free(m->recipients);
	free(m->chunks);
	memset(m, 0, sizeof(*m));
}

/*
 * SHA256SUMS as vms-export writes it: lines "<64 lowercase hex>  <name>\n",
 * names as safe_file_name() allows, each once, nothing else (no blank line,
 * no CR, no "*" binary marker, a newline at the end).
 */
int
sums_parse(const char *text, size_t len, Sums *s, char *err, size_t errlen)
{
	size_t		pos = 0, cap = 0, i;
	int			line = 0;

	memset(s, 0, sizeof(*s));
	if (len == 0)
	{
		snprintf(err, errlen, "SHA256SUMS: empty");
		return -1;
	}
	if (len > MAX_SUMS_SIZE)
	{
		snprintf(err, errlen, "SHA256SUMS: larger than %d bytes", MAX_SUMS_SIZE);
		return -1;
	}
	while (pos < len)
	{
		const char *l = text + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t		n;
		char		hex[65];
		SumLine    *sl;

		line++;
		if (nl == NULL)
		{
			snprintf(err, errlen, "SHA256SUMS: line %d does not end with a newline", line);
			goto bad;
		}
		n = (size_t) (nl - l);
		pos += n + 1;
		if (n < 67 || l[64] != ' ' || l[65] != ' ')
		{
			snprintf(err, errlen, "SHA256SUMS: line %d is not \"<SHA-256>  <file>\"", line);
			goto bad;
		}
		memcpy(hex, l, 64);
		hex[64] = '\0';
		if (!is_sha256_hex(hex))
		{
			snprintf(err, errlen, "SHA256SUMS: line %d: not 64 lowercase hex digits", line);
			goto bad;
		}
		if (s->n == cap)
		{
			size_t		ncap = cap ? cap * 2 : 8;
			SumLine    *nlines = realloc(s->lines, ncap * sizeof(SumLine));

			if (nlines == NULL)
			{
				snprintf(err, errlen, "out of memory");
				goto bad;
			}
			s->lines = nlines;
			cap = ncap;
		}
		sl = &s->lines[s->n];
		sl->file = malloc(n - 66 + 1);
		if (sl->file == NULL)
		{
			snprintf(err, errlen, "out of memory");
			goto bad;
		}
		memcpy(sl->file, l + 66, n - 66);
		sl->file[n - 66] = '\0';
		memcpy(sl->sha256, hex, 65);
		s->n++;
		if (strlen(sl->file) != n - 66 || !safe_file_name(sl->file))
		{
			snprintf(err, errlen, "SHA256SUMS: line %d: not a payload file name", line);
			goto bad;
		}
		for (i = 0; i + 1 < s->n; i++)
			if (strcmp(s->lines[i].file, sl->file) == 0)
			{
				snprintf(err, errlen, "SHA256SUMS: line %d: %s is listed twice", line, sl->file);
				goto bad;
			}
		if (s->n > MAX_CHUNKS + 1)
		{
			snprintf(err, errlen, "SHA256SUMS: more than %d lines", MAX_CHUNKS + 1);
			goto bad;
		}
	}
	return 0;
bad:
	sums_free(s);
	return -1;
}

void
sums_free(Sums *s)
{
	size_t		i;

	for (i = 0; i < s->n; i++)
		free(s->lines[i].file);
	free(s->lines);
	memset(s, 0, sizeof(*s));
}

/* SHA256SUMS lists exactly the manifest's payload files, with its hashes. */
int
sums_agree(const Manifest *m, const Sums *s, char *err, size_t errlen)
{
	const Payload *want = m->encrypted ? m->chunks : &m->output;
	size_t		nwant = m->encrypted ? m->nchunks : 1;
	size_t		i, j;

	for (i = 0; i < nwant; i++)
	{
		for (j = 0; j < s->n; j++)
			if (strcmp(s->lines[j].file, want[i].file) == 0)
				break;
		if (j == s->n)
		{
			snprintf(err, errlen, "SHA256SUMS: %s is not listed (the manifest lists it)", want[i].file);
			return -1;
		}
		if (strcmp(s->lines[j].sha256, want[i].sha256) != 0)
		{
			snprintf(err, errlen, "SHA256SUMS: the SHA-256 of %s differs from the manifest", want[i].file);
			return -1;
		}
	}
	for (j = 0; j < s->n; j++)
	{
		for (i = 0; i < nwant; i++)
			if (strcmp(s->lines[j].file, want[i].file) == 0)
				break;
		if (i == nwant)
		{
			snprintf(err, errlen, "SHA256SUMS: %s is listed, but not in the manifest", s->lines[j].file);
			return -1;
		}
	}
	return 0;
}

CMS_ContentInfo *
signature_parse(const unsigned char *der, size_t len, char *err, size_t errlen)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL;
	int			i;

	if (len > 0 && len <= MAX_P7S_SIZE)
		cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
	if (cms == NULL || p != der + len)
	{
		snprintf(err, errlen, "signature: not a CMS signature");
		goto bad;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
	{
		snprintf(err, errlen, "signature: not a CMS signature (not SignedData)");
		goto bad;
	}
	if (CMS_is_detached(cms) != 1)
	{
		snprintf(err, errlen, "signature: not a detached signature (it holds content)");
		goto bad;
	}
	if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data)
	{
		snprintf(err, errlen, "signature: the signed content type is not id-data");
		goto bad;
	}
	if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) <= 0)
	{
		snprintf(err, errlen, "signature: no signer");
		goto bad;
	}
	/*
	 * Every signer signs SHA-256 with signed attributes: without them
	 * OpenSSL's CAdES check (the signing-certificate attribute naming the
	 * signer) is skipped, and the package format asks for SHA-256.
	 */
	for (i = 0; i < sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)); i++)
	{
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), i);
		X509_ALGOR *dig = NULL;

		if (CMS_signed_get_attr_count(si) <= 0)
		{
			snprintf(err, errlen, "signature: no signed attributes (a CAdES signature names its signer in them)");
			goto bad;
		}
		CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
		if (dig == NULL || OBJ_obj2nid(dig->algorithm) != NID_sha256)
		{
			snprintf(err, errlen, "signature: the digest is not SHA-256");
			goto bad;
		}
	}
	ERR_clear_error();
	return cms;
bad:
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return NULL;
}

TS_RESP *
timestamp_parse(const unsigned char *der, size_t len, char *err, size_t errlen)
{
	const unsigned char *p = der;
	TS_RESP    *resp = NULL;

	if (len > 0 && len <= MAX_TSR_SIZE)
		resp = d2i_TS_RESP(NULL, &p, (long) len);
	if (resp == NULL || p != der + len)
	{
		snprintf(err, errlen, "timestamp: not an RFC 3161 time-stamp response");
		TS_RESP_free(resp);
		resp = NULL;
	}
	ERR_clear_error();
	return resp;
}
