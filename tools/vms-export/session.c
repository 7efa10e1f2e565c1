/*
 * session.c: the database side of an export.  vms.begin_export() answers
 * with one jsonb document; it is taken apart by the server
 * (jsonb_to_recordset), never by a JSON parser here.  Every value is checked
 * for the shape the rest of the tool relies on (hex digests, sizes).
 */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "pgutil.h"

static char *
dup_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

/* strdup that never returns NULL for a non-NULL value: sets *oom instead. */
static char *
dupv(const PGresult *res, int row, int col, int *oom)
{
	char	   *v = dup_or_null(res, row, col);

	if (v == NULL && !PQgetisnull(res, row, col))
		*oom = 1;
	return v;
}

/* Runs sql with text parameters; the result, or NULL with err described. */
static PGresult *
run(Session *s, const char *what, const char *sql, int nparams, const char *const *params,
	char *err, size_t errlen)
{
	PGresult   *res = PQexecParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		pgutil_describe_failure(err, errlen, what, res, s->conn);
		PQclear(res);
		return NULL;
	}
	return res;
}

int
session_connect(Session *s, const char *dbname, char *err, size_t errlen)
{
	PGresult   *res;

	s->conn = pgutil_connect(dbname, "UTF8", PROGNAME);
	if (s->conn == NULL)
	{
		snprintf(err, errlen, "could not connect to the database: out of memory");
		return -1;
	}
	if (PQstatus(s->conn) != CONNECTION_OK)
	{
		char	   *m = PQerrorMessage(s->conn);
		size_t		n = strlen(m);

		while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
			m[--n] = '\0';
		snprintf(err, errlen, "could not connect to the database: %s", m);
		return -1;
	}
	/* Times come back as the functions format them; nothing here depends on TimeZone. */
	res = PQexec(s->conn, "SET search_path = pg_catalog, pg_temp");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		pgutil_describe_failure(err, errlen, "SET search_path", res, s->conn);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static int
fill_profile(Profile *p, const PGresult *res, int c, char *err, size_t errlen)
{
	int			oom = 0;
	const char *sha;

	/* columns c..: name, cert, chain, sha256 hex, needs pass, mp4, png, enc required, tsa */
	p->name = dupv(res, 0, c, &oom);
	p->signer_certificate = dupv(res, 0, c + 1, &oom);
	p->signer_chain = dupv(res, 0, c + 2, &oom);
	sha = PQgetvalue(res, 0, c + 3);
	p->key_needs_passphrase = strcmp(PQgetvalue(res, 0, c + 4), "t") == 0;
	p->has_mp4 = strcmp(PQgetvalue(res, 0, c + 5), "t") == 0;
	p->has_png = strcmp(PQgetvalue(res, 0, c + 6), "t") == 0;
	p->encryption_required = strcmp(PQgetvalue(res, 0, c + 7), "t") == 0;
	p->tsa_url = dupv(res, 0, c + 8, &oom);
	if (oom)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (p->name == NULL || p->signer_certificate == NULL || !is_sha256_hex(sha))
	{
		snprintf(err, errlen, "the export profile is incomplete (no name, certificate or signer_sha256)");
		return -1;
	}
	memcpy(p->signer_sha256, sha, 65);
	return 0;
}

int
session_peek_profile(Session *s, const char *name, Profile *p, char *err, size_t errlen)
{
	const char *params[1] = {name};
	PGresult   *res;
	int			ret;

	res = run(s, "reading the export profile",
			  "SELECT name, signer_certificate, signer_chain, encode(signer_sha256, 'hex'),"
			  "       coalesce(key_needs_passphrase, true), 'mp4' = ANY (formats), 'png' = ANY (formats),"
			  "       coalesce(encryption_required, false), tsa_url"
			  "  FROM vms.export_profiles WHERE name = $1",
			  1, params, err, errlen);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0)
		ret = 0;
	else
		ret = fill_profile(p, res, 0, err, errlen) == 0 ? 1 : -1;
	PQclear(res);
	return ret;
}

static int
parse_top(Session *s, const char *doc, char *err, size_t errlen)
{
	const char *params[1] = {doc};
	PGresult   *res;
	int			oom = 0, ret = -1;

	res = run(s, "reading begin_export's answer",
			  "SELECT (j->>'export_id')::bigint, (j->'camera'->>'id')::integer, j->'camera'->>'name',"
			  "       j->>'from', j->>'to', j->>'kind', j->>'reason', j->>'exported_by',"
			  "       j->>'session_user', j->>'started_at',"
			  "       p->>'name', p->>'signer_certificate', p->>'signer_chain', lower(p->>'signer_sha256'),"
			  "       coalesce((p->>'key_needs_passphrase')::boolean, true),"
			  "       coalesce(p->'formats' ? 'mp4', false), coalesce(p->'formats' ? 'png', false),"
			  "       coalesce((p->>'encryption_required')::boolean, false), p->>'tsa_url'"
			  "  FROM (SELECT $1::jsonb AS j) d, LATERAL (SELECT d.j->'profile' AS p) q",
			  1, params, err, errlen);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1))
	{
		snprintf(err, errlen, "begin_export's answer has no export_id or camera");
		goto end;
	}
	s->export_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	s->camera_id = atoi(PQgetvalue(res, 0, 1));
	s->camera_name = dupv(res, 0, 2, &oom);
	s->from = dupv(res, 0, 3, &oom);
	s->to = dupv(res, 0, 4, &oom);
	s->kind = dupv(res, 0, 5, &oom);
	s->reason = dupv(res, 0, 6, &oom);
	s->exported_by = dupv(res, 0, 7, &oom);
	s->session_user = dupv(res, 0, 8, &oom);
	s->started_at = dupv(res, 0, 9, &oom);
	if (oom)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	if (!s->camera_name || !s->from || !s->to || !s->kind || !s->reason || !s->exported_by ||
		!s->session_user)
	{
		snprintf(err, errlen, "begin_export's answer lacks a required member");
		goto end;
	}
	ret = fill_profile(&s->profile, res, 10, err, errlen);
end:
	PQclear(res);
	return ret;
}

static int
parse_segments(Session *s, const char *doc, char *err, size_t errlen)
{
	const char *params[1] = {doc};
	PGresult   *res;
	int			i, oom = 0, ret = -1;

	res = run(s, "reading the segments",
			  "SELECT id, start, \"end\", path, bytes, lower(sha256), codec, coalesce(width, 0),"
			  "       coalesce(height, 0),"
			  "       round(extract(epoch FROM start::timestamptz) * 1000)::bigint,"
			  "       round(extract(epoch FROM \"end\"::timestamptz) * 1000)::bigint"
			  "  FROM jsonb_to_recordset($1::jsonb->'segments') AS x(id bigint, start text, \"end\" text,"
			  "       path text, bytes bigint, sha256 text, codec text, width integer, height integer)"
			  " ORDER BY 10, 1",
			  1, params, err, errlen);
	if (res == NULL)
		return -1;
	s->nsegs = PQntuples(res);
	if (s->nsegs == 0)
	{
		snprintf(err, errlen, "begin_export's answer lists no segments");
		goto end;
	}
	s->segs = calloc(s->nsegs, sizeof(Segment));
	if (s->segs == NULL)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	for (i = 0; i < s->nsegs; i++)
	{
		Segment    *g = &s->segs[i];
		int			c;

		for (c = 0; c <= 5; c++)
			if (PQgetisnull(res, i, c))
			{
				snprintf(err, errlen, "segment %d of begin_export's answer lacks %s", i + 1,
						 PQfname(res, c));
				goto end;
			}
		g->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		g->start = dupv(res, i, 1, &oom);
		g->end = dupv(res, i, 2, &oom);
		g->path = dupv(res, i, 3, &oom);
		g->bytes = strtoll(PQgetvalue(res, i, 4), NULL, 10);
		g->codec = dupv(res, i, 6, &oom);
		g->width = atoi(PQgetvalue(res, i, 7));
		g->height = atoi(PQgetvalue(res, i, 8));
		g->start_ms = strtoll(PQgetvalue(res, i, 9), NULL, 10);
		g->end_ms = strtoll(PQgetvalue(res, i, 10), NULL, 10);
		if (oom)
		{
			snprintf(err, errlen, "out of memory");
			goto end;
		}
		if (!is_sha256_hex(PQgetvalue(res, i, 5)) || g->bytes < 0)
		{
			snprintf(err, errlen, "segment %lld of begin_export's answer has no valid sha256 or size", g->id);
			goto end;
		}
		memcpy(g->sha256, PQgetvalue(res, i, 5), 65);
	}
	ret = 0;
end:
	PQclear(res);
	return ret;
}

static int
parse_masks(Session *s, const char *doc, char *err, size_t errlen)
{
	const char *params[1] = {doc};
	PGresult   *res;
	int			i, oom = 0, ret = -1;

	res = run(s, "reading the masks",
			  "SELECT zone_id, name, coalesce(liftable, false), fill, points::text"
			  "  FROM ROWS FROM (jsonb_to_recordset(coalesce($1::jsonb->'masks', '[]'))"
			  "       AS (zone_id bigint, name text, liftable boolean, fill text, points jsonb))"
			  "       WITH ORDINALITY AS x(zone_id, name, liftable, fill, points, i)"
			  " ORDER BY i",
			  1, params, err, errlen);
	if (res == NULL)
		return -1;
	s->nmasks = PQntuples(res);
	if (s->nmasks > ZONEMASK_MAX_ZONES)
	{
		snprintf(err, errlen, "%d masks apply; at most %d are supported", s->nmasks, ZONEMASK_MAX_ZONES);
		goto end;
	}
	s->masks = calloc(s->nmasks + 1, sizeof(Mask));
	s->zones = calloc(s->nmasks + 1, sizeof(PrivacyZone));
	if (!s->masks || !s->zones)
	{
		snprintf(err, errlen, "out of memory");
		goto end;
	}
	for (i = 0; i < s->nmasks; i++)
	{
		Mask	   *m = &s->masks[i];

		if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 3) || PQgetisnull(res, i, 4))
		{
			snprintf(err, errlen, "mask %d of begin_export's answer lacks zone_id, fill or points", i + 1);
			goto end;
		}
		m->zone_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		m->name = dupv(res, i, 1, &oom);
		m->liftable = strcmp(PQgetvalue(res, i, 2), "t") == 0;
		m->fill = dupv(res, i, 3, &oom);
		m->points = dupv(res, i, 4, &oom);
		if (oom)
		{
			snprintf(err, errlen, "out of memory");
			goto end;
		}
		if (strcmp(m->fill, "black") != 0 && strcmp(m->fill, "blur") != 0)
		{
			snprintf(err, errlen, "mask of zone %lld: unknown fill \"%s\"", m->zone_id, m->fill);
			goto end;
		}
		s->zones[i].blur = strcmp(m->fill, "blur") == 0;
	}
	PQclear(res);

	/* The polygons, point by point. */
	res = run(s, "reading the mask points",
			  "SELECT m.i, (p.pt->>0)::float8, (p.pt->>1)::float8"
			  "  FROM jsonb_array_elements(coalesce($1::jsonb->'masks', '[]')) WITH ORDINALITY m(z, i),"
			  "       jsonb_array_elements(m.z->'points') WITH ORDINALITY p(pt, j)"
			  " ORDER BY m.i, p.j",
			  1, params, err, errlen);
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
	{
		int			z = atoi(PQgetvalue(res, i, 0)) - 1;
		PrivacyZone *pz;

		if (z < 0 || z >= s->nmasks || PQgetisnull(res, i, 1) || PQgetisnull(res, i, 2))
		{
			snprintf(err, errlen, "a mask point of begin_export's answer is not an [x, y] pair");
			goto end;
		}
		pz = &s->zones[z];
		if (pz->npoints >= ZONEMASK_MAX_POINTS)
		{
			snprintf(err, errlen, "mask of zone %lld has more than %d points", s->masks[z].zone_id,
					 ZONEMASK_MAX_POINTS);
			goto end;
		}
		pz->x[pz->npoints] = strtod(PQgetvalue(res, i, 1), NULL);
		pz->y[pz->npoints] = strtod(PQgetvalue(res, i, 2), NULL);
		pz->npoints++;
	}
	ret = 0;
end:
	PQclear(res);
	return ret;
}

static int
parse_lifts_holds(Session *s, const char *doc, char *err, size_t errlen)
{
	const char *params[1] = {doc};
	PGresult   *res;
	int			i, oom = 0, ret = -1;

	res = run(s, "reading the lifts",
			  "SELECT lift_id, zone_id::text, reason, requested_by, approved_by, starts_at, ends_at"
			  "  FROM ROWS FROM (jsonb_to_recordset(coalesce($1::jsonb->'lifts', '[]'))"
			  "       AS (lift_id bigint, zone_id bigint, reason text, requested_by text,"
			  "           approved_by text, starts_at text, ends_at text))"
			  "       WITH ORDINALITY AS x(lift_id, zone_id, reason, requested_by, approved_by, starts_at, ends_at, i)"
			  " ORDER BY i",
			  1, params, err, errlen);
	if (res == NULL)
		return -1;
	s->nlifts = PQntuples(res);
	s->lifts = calloc(s->nlifts + 1, sizeof(Lift));
	if (!s->lifts)
		goto oom;
	for (i = 0; i < s->nlifts; i++)
	{
		Lift	   *l = &s->lifts[i];

		l->lift_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		l->zone_id = dupv(res, i, 1, &oom);
		l->reason = dupv(res, i, 2, &oom);
		l->requested_by = dupv(res, i, 3, &oom);
		l->approved_by = dupv(res, i, 4, &oom);
		l->starts_at = dupv(res, i, 5, &oom);
		l->ends_at = dupv(res, i, 6, &oom);
	}
	if (oom)
		goto oom;
	PQclear(res);

	res = run(s, "reading the holds",
			  "SELECT hold_id, reason, \"from\", \"to\""
			  "  FROM ROWS FROM (jsonb_to_recordset(coalesce($1::jsonb->'holds', '[]'))"
			  "       AS (hold_id bigint, reason text, \"from\" text, \"to\" text))"
			  "       WITH ORDINALITY AS x(hold_id, reason, \"from\", \"to\", i)"
			  " ORDER BY i",
			  1, params, err, errlen);
	if (res == NULL)
		return -1;
	s->nholds = PQntuples(res);
	s->holds = calloc(s->nholds + 1, sizeof(Hold));
	if (!s->holds)
		goto oom;
	for (i = 0; i < s->nholds; i++)
	{
		Hold	   *h = &s->holds[i];

		h->hold_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		h->reason = dupv(res, i, 1, &oom);
		h->from = dupv(res, i, 2, &oom);
		h->to = dupv(res, i, 3, &oom);
	}
	if (oom)
		goto oom;
	ret = 0;
	goto end;
oom:
	snprintf(err, errlen, "out of memory");
end:
	PQclear(res);
	return ret;
}

int
session_begin(Session *s, int camera, const char *from, const char *to, const char *reason,
			  const char *profile, int snapshot, char *err, size_t errlen)
{
	char		cam[16];
	const char *params[6];
	PGresult   *res;
	char	   *doc = NULL;
	int			ret = EXIT_FAILURE_OTHER;

	snprintf(cam, sizeof(cam), "%d", camera);
	params[0] = cam;
	params[1] = from;
	params[2] = to;
	params[3] = reason;
	params[4] = profile;
	params[5] = snapshot ? "true" : "false";
	res = PQexecParams(s->conn,
					   "SELECT vms.begin_export($1::integer, $2::timestamptz, $3::timestamptz, $4, $5,"
					   " $6::boolean)::text",
					   6, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		PQgetisnull(res, 0, 0))
	{
		pgutil_describe_failure(err, errlen, "vms.begin_export()", res, s->conn);
		PQclear(res);
		return EXIT_REFUSED;
	}
	doc = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (doc == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return EXIT_FAILURE_OTHER;
	}
	if (parse_top(s, doc, err, errlen) == 0 && parse_segments(s, doc, err, errlen) == 0 &&
		parse_masks(s, doc, err, errlen) == 0 && parse_lifts_holds(s, doc, err, errlen) == 0)
		ret = EXIT_OK;
	free(doc);
	return ret;
}

int
session_time_ms(Session *s, const char *text, int64_t *ms, char *err, size_t errlen)
{
	const char *params[1] = {text};
	PGresult   *res;

	res = run(s, "reading a time", "SELECT round(extract(epoch FROM $1::timestamptz) * 1000)::bigint",
			  1, params, err, errlen);
	if (res == NULL)
		return -1;
	*ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int
session_finish(Session *s, const unsigned char manifest_md[32], const unsigned char output_md[32],
			   const char *signer_pem, const char *signer_subject, int timestamped,
			   const char *encrypted, char *err, size_t errlen)
{
	char		id[24], mhex[65], ohex[65];
	const char *params[7];
	PGresult   *res;

	snprintf(id, sizeof(id), "%lld", s->export_id);
	hex_of(manifest_md, 32, mhex);
	hex_of(output_md, 32, ohex);
	params[0] = id;
	params[1] = mhex;
	params[2] = ohex;
	params[3] = signer_pem;
	params[4] = timestamped ? "true" : "false";
	params[5] = encrypted;
	params[6] = signer_subject;
	res = PQexecParams(s->conn,
					   "SELECT vms.finish_export($1::bigint, decode($2, 'hex'), decode($3, 'hex'), $4,"
					   " $5::boolean, $6, $7)",
					   7, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		pgutil_describe_failure(err, errlen, "vms.finish_export()", res, s->conn);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

int
session_fail(Session *s, const char *failure, char *err, size_t errlen)
{
	char		id[24];
	const char *params[2];
	PGresult   *res;

	if (s->conn == NULL || s->export_id == 0)
		return 0;
	snprintf(id, sizeof(id), "%lld", s->export_id);
	params[0] = id;
	params[1] = failure;
	res = PQexecParams(s->conn, "SELECT vms.fail_export($1::bigint, $2)", 2, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		pgutil_describe_failure(err, errlen, "vms.fail_export()", res, s->conn);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

void
profile_free(Profile *p)
{
	free(p->name);
	free(p->signer_certificate);
	free(p->signer_chain);
	free(p->tsa_url);
	memset(p, 0, sizeof(*p));
}

void
session_free(Session *s)
{
	int			i;

	for (i = 0; s->segs && i < s->nsegs; i++)
	{
		free(s->segs[i].start);
		free(s->segs[i].end);
		free(s->segs[i].path);
		free(s->segs[i].codec);
	}
	free(s->segs);
	for (i = 0; s->masks && i < s->nmasks; i++)
	{
		free(s->masks[i].name);
		free(s->masks[i].fill);
		free(s->masks[i].points);
	}
	free(s->masks);
	free(s->zones);
	for (i = 0; s->lifts && i < s->nlifts; i++)
	{
		free(s->lifts[i].zone_id);
		free(s->lifts[i].reason);
		free(s->lifts[i].requested_by);
		free(s->lifts[i].approved_by);
		free(s->lifts[i].starts_at);
		free(s->lifts[i].ends_at);
	}
	free(s->lifts);
	for (i = 0; s->holds && i < s->nholds; i++)
	{
		free(s->holds[i].reason);
		free(s->holds[i].from);
		free(s->holds[i].to);
	}
	free(s->holds);
	free(s->camera_name);
	free(s->from);
	free(s->to);
	free(s->kind);
	free(s->reason);
	free(s->exported_by);
	free(s->session_user);
	free(s->started_at);
	profile_free(&s->profile);
	PQfinish(s->conn);
	memset(s, 0, sizeof(*s));
}
