/*
 * vms-ldap-sync: apply directory (LDAP / Active Directory) group membership
 * to pg_vms.
 *
 * Reads the group mappings from vms.ldap_group_map, reads each mapped group's
 * members and each member's login attribute from the directory, and hands the
 * result to vms.ldap_sync(), which creates missing LOGIN roles and grants or
 * revokes the mapped VMS roles (only of the users the sync created).  The
 * database decides and audits; this program only reads the directory.
 *
 * A group that cannot be read completely is left out of the input, so the
 * database leaves its role alone: a failed search never revokes anyone.
 *
 * Exit codes: 0 done, 1 usage or configuration error, 2 LDAP error (nothing
 * read), 3 database error, 4 done but some groups could not be read (left
 * unchanged), 5 out of memory.  See docs/ldap.md.
 */
#define _DEFAULT_SOURCE			/* explicit_bzero, strdup, getopt_long */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <ldap.h>
#include <libpq-fe.h>

#include "buf.h"
#include "pgutil.h"
#include "secretfile.h"
#include "utf8.h"

#define PROGNAME "vms-ldap-sync"
#define PROGVERSION "1.2"

#define EXIT_DONE		0
#define EXIT_USAGE		1
#define EXIT_LDAP		2
#define EXIT_DB			3
#define EXIT_PARTIAL	4
#define EXIT_NOMEM		5

#define MAX_PASSWORD	1024

/* GnuTLS builds of libldap (Debian) ignore LDAP_OPT_X_TLS_PROTOCOL_MIN. */
#define GNUTLS_TLS12_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

typedef struct Options
{
	const char *dbname;
	const char *ldap_uri;
	const char *ca_file;
	const char *bind_dn;
	const char *password_file;
	const char *member_attr;
	const char *login_attr;
	int			starttls;
	int			lowercase;
	int			allow_empty;
	int			allow_plaintext;
	int			dry_run;
	int			timeout;
} Options;

typedef struct Counts
{
	int			groups_mapped;
	int			groups_read;
	int			members;
	int			created;
	int			granted;
	int			revoked;
	int			skipped;
	int			not_read;
	int			other;
} Counts;

static void
complain(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A JSON string (RFC 8259): quotes, backslashes and control characters escaped. */
static void
buf_json_string(Buf *b, const char *s)
{
	const unsigned char *p;

	buf_add(b, "\"", 1);
	for (p = (const unsigned char *) s; *p; p++)
	{
		char		esc[8];

		if (*p == '"' || *p == '\\')
		{
			esc[0] = '\\';
			esc[1] = (char) *p;
			buf_add(b, esc, 2);
		}
		else if (*p < 0x20 || *p == 0x7f)
		{
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			buf_add(b, esc, 6);
		}
		else
			buf_add(b, (const char *) p, 1);
	}
	buf_add(b, "\"", 1);
}

/* Well-formed UTF-8 (the database rejects anything else, and all of the input with it). */
static int
valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < len)
	{
		/* utf8_len() passes a NUL byte; text in the database cannot hold it. */
		size_t		n = p[i] ? utf8_len(p + i, len - i) : 0;

		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* A berval as a NUL-terminated string, or NULL if it holds a NUL or bad UTF-8. */
static char *
bv_string(const struct berval *bv, int *oom)
{
	char	   *s;

	if (bv->bv_len == 0 || memchr(bv->bv_val, '\0', bv->bv_len) != NULL ||
		!valid_utf8(bv->bv_val, bv->bv_len))
		return NULL;
	s = malloc(bv->bv_len + 1);
	if (s == NULL)
	{
		*oom = 1;
		return NULL;
	}
	memcpy(s, bv->bv_val, bv->bv_len);
	s[bv->bv_len] = '\0';
	return s;
}

static void
usage(FILE *out)
{
	fprintf(out,
			"%s applies directory group membership to pg_vms (see docs/ldap.md).\n"
			"\n"
			"Usage: %s -H URI [OPTION]...\n"
			"\n"
			"Database (libpq; PG* environment variables and service files apply):\n"
			"  -d, --dbname=CONNINFO          database name or connection string\n"
			"\n"
			"Directory:\n"
			"  -H, --ldap-uri=URI             ldaps://host[:port] or ldap://host[:port]\n"
			"  -Z, --starttls                 upgrade ldap:// with StartTLS (required)\n"
			"      --ca-file=FILE             CA certificates to trust (PEM)\n"
			"  -D, --bind-dn=DN               bind as DN (default: anonymous)\n"
			"  -y, --bind-password-file=FILE  the bind password (file mode 0600 or stricter)\n"
			"      --member-attribute=ATTR    group attribute listing members (default member;\n"
			"                                 uniqueMember for groupOfUniqueNames)\n"
			"      --login-attribute=ATTR     member attribute holding the login (default uid;\n"
			"                                 Active Directory: sAMAccountName)\n"
			"      --lowercase-logins         lower-case logins (ASCII letters)\n"
			"      --allow-empty-groups       apply groups that list no member (default: such a\n"
			"                                 group is treated as unreadable and left alone)\n"
			"      --allow-plaintext          allow a password bind over ldap:// without TLS\n"
			"      --timeout=SECONDS          network and search time limit (default 10)\n"
			"\n"
			"  -n, --dry-run                  show what would change, change nothing\n"
			"  -h, --help                     show this help and exit\n"
			"  -V, --version                  show the version and exit\n"
			"\n"
			"TLS: certificates are always verified (TLS_REQCERT demand), TLS 1.2 or later.\n"
			"Output: one line per action: ACTION<TAB>LOGIN<TAB>VMS_ROLE<TAB>DETAIL; summary on stderr.\n"
			"Exit status: 0 done, 1 usage or configuration error, 2 LDAP error, 3 database error,\n"
			"4 done but some groups could not be read (left unchanged), 5 out of memory.\n",
			PROGNAME, PROGNAME);
}

static int
valid_attribute(const char *a)
{
	const char *p;

	if (a == NULL || *a == '\0' || strlen(a) > 100 || !isalpha((unsigned char) *a))
		return 0;
	for (p = a; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '-')
			return 0;
	return 1;
}

/* Does any URI of the (blank- or comma-separated) list use plain ldap://? */
static int
uri_has_plain_ldap(const char *uris)
{
	const char *p = uris;

	while (*p)
	{
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (strncasecmp(p, "ldap://", 7) == 0)
			return 1;
		while (*p && *p != ' ' && *p != ',' && *p != '\t')
			p++;
	}
	return 0;
}

/* Connects, sets up TLS and binds.  Returns EXIT_DONE or an exit code. */
static int
ldap_open(const Options *o, const char *password, LDAP **ldp)
{
	LDAP	   *ld = NULL;
	struct timeval tv;
	struct berval cred;
	int			version = LDAP_VERSION3;
	int			demand = LDAP_OPT_X_TLS_DEMAND;
	int			tlsmin = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
	int			is_server = 0;
	char	   *package = NULL;
	int			rc;

	*ldp = NULL;
	rc = ldap_initialize(&ld, o->ldap_uri);
	if (rc != LDAP_SUCCESS)
	{
		complain("bad LDAP URI \"%s\": %s", o->ldap_uri, ldap_err2string(rc));
		return EXIT_USAGE;
	}
	tv.tv_sec = o->timeout;
	tv.tv_usec = 0;
	if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
		ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
		ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
		ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
		ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
		ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tlsmin) != LDAP_OPT_SUCCESS)
	{
		complain("could not set LDAP options");
		rc = EXIT_LDAP;
		goto fail;
	}
	if (ldap_get_option(ld, LDAP_OPT_X_TLS_PACKAGE, &package) == LDAP_OPT_SUCCESS &&
		package != NULL && strcasecmp(package, "GnuTLS") == 0 &&
		ldap_set_option(ld, LDAP_OPT_X_TLS_CIPHER_SUITE, GNUTLS_TLS12_PRIORITY) != LDAP_OPT_SUCCESS)
	{
		complain("could not restrict TLS to version 1.2 or later");
		rc = EXIT_LDAP;
		goto fail;
	}
	if (o->ca_file != NULL &&
		ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, o->ca_file) != LDAP_OPT_SUCCESS)
	{
		complain("could not use CA file \"%s\"", o->ca_file);
		rc = EXIT_USAGE;
		goto fail;
	}
	/* The TLS options above apply to this handle only through a new context. */
	rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server);
	if (rc != LDAP_OPT_SUCCESS)
	{
		complain("could not set up TLS (CA file \"%s\"): %s",
			  o->ca_file ? o->ca_file : "(default)", ldap_err2string(rc));
		rc = EXIT_LDAP;
		goto fail;
	}
	if (o->starttls)
	{
		rc = ldap_start_tls_s(ld, NULL, NULL);
		if (rc != LDAP_SUCCESS)
		{
			complain("StartTLS with %s failed: %s", o->ldap_uri, ldap_err2string(rc));
			rc = EXIT_LDAP;
			goto fail;
		}
	}
	if (o->bind_dn != NULL)
	{
		cred.bv_val = (char *) password;
		cred.bv_len = strlen(password);
	}
	else
	{
		cred.bv_val = NULL;
		cred.bv_len = 0;
	}
	rc = ldap_sasl_bind_s(ld, o->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	cred.bv_val = NULL;
	if (rc != LDAP_SUCCESS)
	{
		complain("could not bind to %s as %s: %s", o->ldap_uri,
			  o->bind_dn ? o->bind_dn : "anonymous", ldap_err2string(rc));
		rc = EXIT_LDAP;
		goto fail;
	}
	if (package)
		ldap_memfree(package);
	*ldp = ld;
	return EXIT_DONE;

fail:
	if (package)
		ldap_memfree(package);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return rc;
}

/* Searches one entry (base scope) for one attribute. */
static int
read_entry(LDAP *ld, const Options *o, const char *dn, const char *attr, LDAPMessage **res)
{
	char	   *attrs[2];
	struct timeval tv;

	attrs[0] = (char *) attr;
	attrs[1] = NULL;
	tv.tv_sec = o->timeout;
	tv.tv_usec = 0;
	*res = NULL;
	return ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0,
							 NULL, NULL, &tv, 1, res);
}

/*
 * Reads one group into out as a JSON object.  Returns 1 if the group was read
 * completely, 0 if not (a warning says why; the group is left out), -1 when
 * out of memory.
 */
static int
read_group(LDAP *ld, const Options *o, const char *group_dn, Buf *out, int *members)
{
	LDAPMessage *res = NULL;
	LDAPMessage *entry;
	BerElement *ber = NULL;
	struct berval **vals = NULL;
	char	   *a;
	size_t		alen = strlen(o->member_attr);
	int			nmembers = 0;
	int			ret = 0;
	int			oom = 0;
	int			rc;
	int			i;

	rc = read_entry(ld, o, group_dn, o->member_attr, &res);
	if (rc != LDAP_SUCCESS || (entry = ldap_first_entry(ld, res)) == NULL)
	{
		complain("warning: could not read group \"%s\": %s; its VMS role is left unchanged",
			  group_dn, rc != LDAP_SUCCESS ? ldap_err2string(rc) : "no such entry");
		goto cleanup;
	}
	/* Active Directory pages large groups ("member;range=0-1499"): not followed. */
	for (a = ldap_first_attribute(ld, entry, &ber); a != NULL; a = ldap_next_attribute(ld, entry, ber))
	{
		int			ranged = strncasecmp(a, o->member_attr, alen) == 0 && a[alen] == ';';

		ldap_memfree(a);
		if (ranged)
		{
			complain("warning: group \"%s\" is too large to be read in one search (ranged %s); left unchanged",
				  group_dn, o->member_attr);
			goto cleanup;
		}
	}
	vals = ldap_get_values_len(ld, entry, o->member_attr);
	if ((vals == NULL || vals[0] == NULL) && !o->allow_empty)
	{
		complain("warning: group \"%s\" lists no %s (empty, or not readable by this account); "
			  "left unchanged (--allow-empty-groups applies it)", group_dn, o->member_attr);
		goto cleanup;
	}

	buf_puts(out, "{\"dn\":");
	buf_json_string(out, group_dn);
	buf_puts(out, ",\"members\":[");
	for (i = 0; vals != NULL && vals[i] != NULL; i++)
	{
		LDAPMessage *mres = NULL;
		LDAPMessage *mentry;
		struct berval **logins = NULL;
		char	   *member_dn;
		char	   *login = NULL;
		char	   *c;

		member_dn = bv_string(vals[i], &oom);
		if (oom)
			goto cleanup;
		if (member_dn == NULL)
		{
			complain("warning: group \"%s\" has a member value that is not a valid DN; skipped", group_dn);
			continue;
		}
		rc = read_entry(ld, o, member_dn, o->login_attr, &mres);
		if (rc == LDAP_NO_SUCH_OBJECT)
		{
			/* A dangling reference: that entry is gone, so it is no member. */
			complain("warning: member \"%s\" of group \"%s\" does not exist; skipped", member_dn, group_dn);
			ldap_msgfree(mres);
			free(member_dn);
			continue;
		}
		if (rc != LDAP_SUCCESS || (mentry = ldap_first_entry(ld, mres)) == NULL)
		{
			complain("warning: could not read member \"%s\" of group \"%s\": %s; group left unchanged",
				  member_dn, group_dn, rc != LDAP_SUCCESS ? ldap_err2string(rc) : "no entry");
			ldap_msgfree(mres);
			free(member_dn);
			goto cleanup;
		}
		logins = ldap_get_values_len(ld, mentry, o->login_attr);
		if (logins != NULL && logins[0] != NULL)
			login = bv_string(logins[0], &oom);
		if (logins != NULL)
			ldap_value_free_len(logins);
		ldap_msgfree(mres);
		if (oom)
		{
			free(member_dn);
			goto cleanup;
		}
		if (login == NULL)
		{
			/* Nested groups have no login attribute; they are not followed. */
			complain("warning: member \"%s\" of group \"%s\" has no usable %s; skipped",
				  member_dn, group_dn, o->login_attr);
			free(member_dn);
			continue;
		}
		if (o->lowercase)
			for (c = login; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char) (*c - 'A' + 'a');
		buf_puts(out, nmembers ? ",{\"login\":" : "{\"login\":");
		buf_json_string(out, login);
		buf_puts(out, ",\"dn\":");
		buf_json_string(out, member_dn);
		buf_puts(out, "}");
		nmembers++;
		free(login);
		free(member_dn);
	}
	buf_puts(out, "]}");
	*members += nmembers;
	ret = 1;

cleanup:
	if (ber)
		ber_free(ber, 0);
	if (vals)
		ldap_value_free_len(vals);
	ldap_msgfree(res);
	if (oom || out->oom)
		return -1;
	return ret;
}

static void
count_action(Counts *c, const char *action)
{
	if (strcmp(action, "create_user") == 0)
		c->created++;
	else if (strcmp(action, "grant") == 0)
		c->granted++;
	else if (strcmp(action, "revoke") == 0)
		c->revoked++;
	else if (strcmp(action, "skipped") == 0)
		c->skipped++;
	else if (strcmp(action, "not_read") == 0)
		c->not_read++;
	else
		c->other++;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"ldap-uri", required_argument, NULL, 'H'},
		{"starttls", no_argument, NULL, 'Z'},
		{"ca-file", required_argument, NULL, 1},
		{"bind-dn", required_argument, NULL, 'D'},
		{"bind-password-file", required_argument, NULL, 'y'},
		{"member-attribute", required_argument, NULL, 2},
		{"login-attribute", required_argument, NULL, 3},
		{"lowercase-logins", no_argument, NULL, 4},
		{"allow-empty-groups", no_argument, NULL, 5},
		{"allow-plaintext", no_argument, NULL, 6},
		{"timeout", required_argument, NULL, 7},
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	Options		o;
	Counts		counts;
	Buf			json = {NULL, 0, 0, 0};
	Buf			group = {NULL, 0, 0, 0};
	char		password[MAX_PASSWORD];
	const char *params[2];
	PGconn	   *conn = NULL;
	PGresult   *res = NULL;
	LDAP	   *ld = NULL;
	int			status = EXIT_DONE;
	int			c;
	int			i;

	memset(&o, 0, sizeof(o));
	memset(&counts, 0, sizeof(counts));
	memset(password, 0, sizeof(password));
	o.member_attr = "member";
	o.login_attr = "uid";
	o.timeout = 10;

	while ((c = getopt_long(argc, argv, "d:H:ZD:y:nhV", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				o.dbname = optarg;
				break;
			case 'H':
				o.ldap_uri = optarg;
				break;
			case 'Z':
				o.starttls = 1;
				break;
			case 1:
				o.ca_file = optarg;
				break;
			case 'D':
				o.bind_dn = optarg;
				break;
			case 'y':
				o.password_file = optarg;
				break;
			case 2:
				o.member_attr = optarg;
				break;
			case 3:
				o.login_attr = optarg;
				break;
			case 4:
				o.lowercase = 1;
				break;
			case 5:
				o.allow_empty = 1;
				break;
			case 6:
				o.allow_plaintext = 1;
				break;
			case 7:
				{
					char	   *end;
					long		t;

					errno = 0;
					t = strtol(optarg, &end, 10);
					if (errno != 0 || *end != '\0' || t < 1 || t > 3600)
					{
						complain("--timeout must be a number of seconds from 1 to 3600");
						status = EXIT_USAGE;
						goto cleanup;
					}
					o.timeout = (int) t;
				}
				break;
			case 'n':
				o.dry_run = 1;
				break;
			case 'h':
				usage(stdout);
				goto cleanup;
			case 'V':
				printf("%s %s\n", PROGNAME, PROGVERSION);
				goto cleanup;
			default:
				fprintf(stderr, "Try \"%s --help\" for more information.\n", PROGNAME);
				status = EXIT_USAGE;
				goto cleanup;
		}
	}
	if (optind < argc)
	{
		complain("unexpected argument \"%s\"", argv[optind]);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (o.ldap_uri == NULL || *o.ldap_uri == '\0')
	{
		complain("--ldap-uri is required");
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (!valid_attribute(o.member_attr) || !valid_attribute(o.login_attr))
	{
		complain("--member-attribute and --login-attribute take an attribute name");
		status = EXIT_USAGE;
		goto cleanup;
	}
	if ((o.bind_dn == NULL) != (o.password_file == NULL))
	{
		complain("--bind-dn and --bind-password-file go together");
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (o.bind_dn != NULL && !o.starttls && !o.allow_plaintext && uri_has_plain_ldap(o.ldap_uri))
	{
		complain("refusing to send the bind password over plain ldap://; use ldaps://, --starttls, "
			  "or (on a trusted network only) --allow-plaintext");
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (o.password_file != NULL)
	{
		char		why[512];
		char	   *pw = secret_from_file(o.password_file, sizeof(password) - 1, 1, why, sizeof(why));

		if (pw == NULL)
		{
			complain("bind password file: %s", why);
			status = EXIT_USAGE;
			goto cleanup;
		}
		memcpy(password, pw, strlen(pw) + 1);
		secret_free(pw);
	}

	/* The mapped groups. */
	conn = pgutil_connect(o.dbname, NULL, PROGNAME);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		complain("could not connect to the database: %s", conn ? PQerrorMessage(conn) : "out of memory");
		status = EXIT_DB;
		goto cleanup;
	}
	res = PQexec(conn, "SELECT group_dn, vms_role FROM vms.ldap_group_map ORDER BY group_dn");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		complain("could not read vms.ldap_group_map: %s", PQresultErrorMessage(res));
		status = EXIT_DB;
		goto cleanup;
	}
	counts.groups_mapped = PQntuples(res);
	if (counts.groups_mapped == 0)
	{
		complain("no directory group is mapped (vms.map_ldap_group); nothing to do");
		goto cleanup;
	}

	/* The directory. */
	status = ldap_open(&o, password, &ld);
	explicit_bzero(password, sizeof(password));
	if (status != EXIT_DONE)
		goto cleanup;

	buf_puts(&json, "{\"groups\":[");
	for (i = 0; i < counts.groups_mapped; i++)
	{
		int			r;

		group.len = 0;
		r = read_group(ld, &o, PQgetvalue(res, i, 0), &group, &counts.members);
		if (r < 0)
		{
			status = EXIT_NOMEM;
			goto cleanup;
		}
		if (r == 0)
			continue;
		if (counts.groups_read++ > 0)
			buf_puts(&json, ",");
		buf_add(&json, group.data, group.len);
	}
	buf_puts(&json, "]}");
	if (json.oom)
	{
		complain("out of memory");
		status = EXIT_NOMEM;
		goto cleanup;
	}
	ldap_unbind_ext_s(ld, NULL, NULL);
	ld = NULL;
	if (counts.groups_read == 0)
	{
		complain("no mapped group could be read from %s; nothing changed", o.ldap_uri);
		status = EXIT_LDAP;
		goto cleanup;
	}

	/* The database decides, applies and audits. */
	PQclear(res);
	params[0] = json.data;
	params[1] = o.dry_run ? "true" : "false";
	res = PQexecParams(conn,
					   "SELECT action, login, vms_role, detail FROM vms.ldap_sync($1::jsonb, $2::boolean)",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		complain("vms.ldap_sync() failed: %s", PQresultErrorMessage(res));
		status = EXIT_DB;
		goto cleanup;
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		int			f;

		for (f = 0; f < 4; f++)
			printf("%s%s", f ? "\t" : "", PQgetisnull(res, i, f) ? "-" : PQgetvalue(res, i, f));
		putchar('\n');
		count_action(&counts, PQgetvalue(res, i, 0));
	}
	fflush(stdout);
	fprintf(stderr, "%s: %d mapped groups, %d read, %d members; %s%d users created, %d grants, "
			"%d revokes, %d skipped\n", PROGNAME, counts.groups_mapped, counts.groups_read,
			counts.members, o.dry_run ? "dry run, would be: " : "", counts.created,
			counts.granted, counts.revoked, counts.skipped);
	if (counts.groups_read < counts.groups_mapped)
		status = EXIT_PARTIAL;

cleanup:
	explicit_bzero(password, sizeof(password));
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	PQclear(res);
	PQfinish(conn);
	free(group.data);
	free(json.data);
	return status;
}
