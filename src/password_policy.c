/*-------------------------------------------------------------------------
 * password_policy.c
 *	  The password policy, enforced in check_password_hook: every CREATE
 *	  ROLE / ALTER ROLE ... PASSWORD in any database of the cluster, and
 *	  vms.create_user / vms.set_password / vms.change_password (which call
 *	  the hook through vms._password_verifier, password.c).
 *
 *	  Rules, cheapest first: length, character classes, the user name, the
 *	  common-password list, cracklib, and the last vms.password_history
 *	  passwords (the current one in pg_authid, and SCRAM verifiers kept in
 *	  vms.password_history in the VMS database).  A password given already
 *	  hashed cannot be checked and is refused unless
 *	  vms.password_allow_hashed; MD5 hashes are always refused.
 *
 *	  The history is written through SPI in the transaction that changes the
 *	  password, so a rolled-back ALTER ROLE records nothing.  It is keyed by
 *	  role name (it must survive pg_dump/pg_dumpall, which renumber roles).
 *	  Only the VMS database has the table: elsewhere the passwords of VMS
 *	  users are refused (they would escape the history) and other roles get
 *	  the content rules only.  See docs/password-policy.md.
 *
 *	  No message built here contains the password.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include <crack.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/user.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/crypt.h"
#include "libpq/scram.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "pg_vms.h"
#include "password_policy.h"

/* A user name shorter than this is not looked for inside the password. */
#define USERNAME_MIN_CHECK	3
/* The common-password list is read whole: bounded memory. */
#define COMMON_LIST_MAX_BYTES (32 * 1024 * 1024)
#define HISTORY_TABLE		"password_history"

/* Settings */
static int	pp_min_length = 12;
static int	pp_min_classes = 3;
static bool pp_reject_username = true;
static char *pp_cracklib_dictionary = NULL;
static char *pp_common_list = NULL;
static int	pp_history = 5;
static bool pp_allow_hashed = false;

static check_password_hook_type prev_check_password_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

/*
 * Backend state, all cleared at the end of every (sub)transaction:
 * check_only while password.c checks a plaintext; the verifier it made,
 * which the next hook call may carry once; the history entry of a role being
 * created, written when CREATE ROLE has given it an OID.
 */
static bool check_only = false;
/* An administrator's reset: the history rule would be a guessing oracle. */
static bool skip_history = false;
static char *expected_user = NULL;
static char *expected_verifier = NULL;
static char *pending_create_user = NULL;
static char *pending_create_verifier = NULL;

/* The common-password list, as last read. */
static MemoryContext common_context = NULL;
static char *common_path = NULL;
static struct stat common_stat;
static char **common_words = NULL;
static int	common_count = 0;

/* One refused rule. */
typedef struct PolicyFailure
{
	char	   *message;
	char	   *detail;
	char	   *detail_log;
} PolicyFailure;

/* ---- Settings --------------------------------------------------------- */

/*
 * A file setting: '' (off) or an absolute path.  Whether the file exists is
 * checked when a superuser sets it; a missing default is reported (and
 * refuses passwords) when a password is checked, not at server start.
 */
static bool
check_policy_file(char **newval, GucSource source, const char *suffix)
{
	char		path[MAXPGPATH];

	if (*newval == NULL || **newval == '\0')
		return true;
	if (!is_absolute_path(*newval))
	{
		GUC_check_errdetail("The path must be absolute.");
		return false;
	}
	if (strlen(*newval) + strlen(suffix) >= MAXPGPATH)
	{
		GUC_check_errdetail("The path is too long.");
		return false;
	}
	if (source == PGC_S_DEFAULT)
		return true;
	snprintf(path, sizeof(path), "%s%s", *newval, suffix);
	if (access(path, R_OK) != 0)
	{
		GUC_check_errdetail("File \"%s\" cannot be read: %m.", path);
		return false;
	}
	return true;
}

static bool
check_cracklib_dictionary(char **newval, void **extra, GucSource source)
{
	return check_policy_file(newval, source, ".pwd");
}

static bool
check_common_list(char **newval, void **extra, GucSource source)
{
	return check_policy_file(newval, source, "");
}

void
password_policy_define_settings(void)
{
	DefineCustomIntVariable("vms.password_min_length",
							"Fewest characters a new password may have.",
							NULL,
							&pp_min_length,
							12, 0, PASSWORD_MAX_BYTES,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("vms.password_min_classes",
							"Fewest character classes (lower case, upper case, digits, others) a new password must mix.",
							NULL,
							&pp_min_classes,
							3, 0, 4,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("vms.password_reject_username",
							 "Refuses passwords that contain the role name (in any letter case).",
							 NULL,
							 &pp_reject_username,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("vms.password_cracklib_dictionary",
							   "cracklib dictionary (path without .pwd) that new passwords are checked against; empty: no cracklib check.",
							   NULL,
							   &pp_cracklib_dictionary,
							   "/var/cache/cracklib/cracklib_dict",
							   PGC_SUSET, 0,
							   check_cracklib_dictionary, NULL, NULL);
	DefineCustomStringVariable("vms.password_common_list",
							   "File of common passwords (one a line, '#!comment' lines skipped) that are refused; empty: no list.",
							   NULL,
							   &pp_common_list,
							   "/usr/share/john/password.lst",
							   PGC_SUSET, 0,
							   check_common_list, NULL, NULL);
	DefineCustomIntVariable("vms.password_history",
							"How many of a role's last passwords may not be used again; 0: no history.",
							"Kept as SCRAM verifiers in vms.password_history, in the VMS database.",
							&pp_history,
							5, 0, 100,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("vms.password_allow_hashed",
							 "Accepts passwords given already hashed (SCRAM-SHA-256 verifiers), which the policy cannot check.",
							 NULL,
							 &pp_allow_hashed,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

/* ---- Where we are ------------------------------------------------------ */

static bool
in_vms_database(void)
{
	char	   *dbname = get_database_name(MyDatabaseId);

	return dbname != NULL && vms_database_name != NULL &&
		strcmp(dbname, vms_database_name) == 0;
}

/* vms.password_history here, or InvalidOid (other database, older version). */
static Oid
history_table(void)
{
	Oid			nsp;

	if (!IsTransactionState() || creating_extension || !in_vms_database())
		return InvalidOid;
	nsp = vms_schema_oid(true);
	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid(HISTORY_TABLE, nsp);
}

/* History can be written: on, here, and a writable transaction. */
static bool
history_writable(void)
{
	return pp_history > 0 && !RecoveryInProgress() && !XactReadOnly &&
		OidIsValid(history_table());
}

static bool
role_is_vms_user(Oid roleid)
{
	Oid			vms_user = get_role_oid("vms_user", true);

	return OidIsValid(vms_user) && roleid != vms_user &&
		is_member_of_role_nosuper(roleid, vms_user);
}

/* ---- History ----------------------------------------------------------- */

/* Is the plaintext the role's password now (pg_authid, any database)? */
static bool
matches_current_password(Oid roleid, const char *username, const char *password)
{
	HeapTuple	tup;
	Datum		d;
	bool		isnull;
	bool		match = false;

	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(roleid));
	if (!HeapTupleIsValid(tup))
		return false;
	d = SysCacheGetAttr(AUTHOID, tup, Anum_pg_authid_rolpassword, &isnull);
	if (!isnull)
	{
		char	   *secret = TextDatumGetCString(d);

		if (get_password_type(secret) == PASSWORD_TYPE_SCRAM_SHA_256)
			match = scram_verify_plain_password(username, password, secret);
		pfree(secret);
	}
	ReleaseSysCache(tup);
	return match;
}

/* Does the plaintext match one of the role's last N stored verifiers? */
static bool
matches_history(const char *username, const char *password)
{
	OwnerSpi	oc;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	bool		match = false;
	uint64		i;

	if (!OidIsValid(history_table()))
		return false;
	args[0] = CStringGetTextDatum(username);
	args[1] = Int32GetDatum(pp_history);
	owner_spi_begin(&oc);
	if (SPI_execute_with_args("SELECT h.verifier FROM vms.password_history h"
							  " WHERE h.role_name OPERATOR(pg_catalog.=) $1"
							  " ORDER BY h.id DESC LIMIT $2",
							  2, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the password history");
	for (i = 0; i < SPI_processed && !match; i++)
	{
		char	   *verifier = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (verifier != NULL && get_password_type(verifier) == PASSWORD_TYPE_SCRAM_SHA_256)
			match = scram_verify_plain_password(username, password, verifier);
	}
	owner_spi_end(&oc);
	return match;
}

/*
 * Record a SCRAM verifier as the role's newest password and keep only the
 * newest N.  replace: a role just created; rows left by a dropped role of
 * the same name go first.
 */
static void
history_record(const char *username, const char *verifier, bool replace)
{
	OwnerSpi	oc;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2];

	if (!history_writable())
		return;
	args[0] = CStringGetTextDatum(username);
	args[1] = CStringGetTextDatum(verifier);
	owner_spi_begin(&oc);
	if (replace &&
		SPI_execute_with_args("DELETE FROM vms.password_history h WHERE h.role_name OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear the password history");
	if (SPI_execute_with_args("INSERT INTO vms.password_history (role_name, verifier) VALUES ($1, $2)",
							  2, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the password history");
	types[1] = INT4OID;
	args[1] = Int32GetDatum(pp_history);
	if (SPI_execute_with_args("DELETE FROM vms.password_history h"
							  " WHERE h.role_name OPERATOR(pg_catalog.=) $1"
							  "   AND h.id OPERATOR(pg_catalog.<>) ALL (ARRAY("
							  "       SELECT x.id FROM vms.password_history x"
							  "        WHERE x.role_name OPERATOR(pg_catalog.=) $1"
							  "        ORDER BY x.id DESC LIMIT $2))",
							  2, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not trim the password history");
	owner_spi_end(&oc);
}

static void
history_forget(const char *username)
{
	OwnerSpi	oc;
	Oid			types[1] = {TEXTOID};
	Datum		args[1];

	if (!history_writable())
		return;
	args[0] = CStringGetTextDatum(username);
	owner_spi_begin(&oc);
	if (SPI_execute_with_args("DELETE FROM vms.password_history h WHERE h.role_name OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear the password history");
	owner_spi_end(&oc);
}

/* ---- The common-password list ------------------------------------------ */

static int
compare_words(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
ascii_lower(char *s)
{
	for (; *s; s++)
		*s = pg_ascii_tolower((unsigned char) *s);
}

/* (Re)read the list when the setting or the file changed. */
static void
common_list_load(const char *path)
{
	struct stat st;
	FILE	   *f;
	char	   *buf;
	char	   *p;
	size_t		got;
	int			n = 0;
	int			cap;
	MemoryContext old;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the password policy cannot be applied: common-password list \"%s\" cannot be read", path),
				 errhint("Install it (Debian package john-data) or set vms.password_common_list to '' to switch the list off.")));
	if (common_path != NULL && strcmp(common_path, path) == 0 &&
		st.st_dev == common_stat.st_dev && st.st_ino == common_stat.st_ino &&
		st.st_size == common_stat.st_size && st.st_mtime == common_stat.st_mtime &&
		st.st_mtim.tv_nsec == common_stat.st_mtim.tv_nsec)
		return;
	if (st.st_size > COMMON_LIST_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the password policy cannot be applied: common-password list \"%s\" is too large", path),
				 errdetail("At most %d MB are read.", COMMON_LIST_MAX_BYTES / (1024 * 1024))));

	if (common_context == NULL)
		common_context = AllocSetContextCreate(TopMemoryContext, "pg_vms common passwords",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(common_context);
	common_path = NULL;
	common_words = NULL;
	common_count = 0;

	old = MemoryContextSwitchTo(common_context);
	buf = palloc(st.st_size + 1);
	f = AllocateFile(path, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("the password policy cannot be applied: could not open common-password list \"%s\": %m", path)));
	got = fread(buf, 1, st.st_size, f);
	FreeFile(f);
	buf[got] = '\0';

	cap = 1024;
	common_words = palloc(cap * sizeof(char *));
	for (p = buf; *p;)
	{
		char	   *line = p;
		char	   *end = strchr(p, '\n');
		size_t		len;

		if (end != NULL)
		{
			*end = '\0';
			p = end + 1;
		}
		else
			p += strlen(p);
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0 || strncmp(line, "#!comment", 9) == 0)
			continue;
		ascii_lower(line);
		if (n == cap)
		{
			cap *= 2;
			common_words = repalloc(common_words, cap * sizeof(char *));
		}
		common_words[n++] = line;
	}
	qsort(common_words, n, sizeof(char *), compare_words);
	common_count = n;
	common_stat = st;
	common_path = pstrdup(path);
	MemoryContextSwitchTo(old);
}

static bool
on_common_list(const char *password)
{
	char	   *lower;
	bool		found;

	common_list_load(pp_common_list);
	lower = pstrdup(password);
	ascii_lower(lower);
	found = common_count > 0 &&
		bsearch(&lower, common_words, common_count, sizeof(char *), compare_words) != NULL;
	explicit_bzero(lower, strlen(lower));
	pfree(lower);
	return found;
}

/* ---- The rules --------------------------------------------------------- */

void
password_policy_check_size(const char *password)
{
	if (strlen(password) > PASSWORD_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password is too long"),
				 errdetail("At most %d bytes are accepted.", PASSWORD_MAX_BYTES)));
}

static void
fail(PolicyFailure *f, char *message, char *detail, char *detail_log)
{
	f->message = message;
	f->detail = detail;
	f->detail_log = detail_log;
}

static bool
rule_length(const char *username, const char *password, Oid roleid, PolicyFailure *f)
{
	if (pg_mbstrlen_with_len(password, strlen(password)) >= pp_min_length)
		return true;
	fail(f, psprintf("password is too short"),
		 psprintf("The password policy asks for at least %d characters.", pp_min_length), NULL);
	return false;
}

static bool
rule_classes(const char *username, const char *password, Oid roleid, PolicyFailure *f)
{
	bool		lower = false,
				upper = false,
				digit = false,
				other = false;
	const char *p;

	for (p = password; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c >= 'a' && c <= 'z')
			lower = true;
		else if (c >= 'A' && c <= 'Z')
			upper = true;
		else if (c >= '0' && c <= '9')
			digit = true;
		else
			other = true;
	}
	if ((int) lower + (int) upper + (int) digit + (int) other >= pp_min_classes)
		return true;
	fail(f, psprintf("password mixes too few kinds of characters"),
		 psprintf("The password policy asks for at least %d of: lower-case letters, upper-case letters, digits, other characters.",
				  pp_min_classes), NULL);
	return false;
}

static bool
rule_username(const char *username, const char *password, Oid roleid, PolicyFailure *f)
{
	char	   *u;
	char	   *p;
	bool		found;

	if (!pp_reject_username ||
		pg_mbstrlen_with_len(username, strlen(username)) < USERNAME_MIN_CHECK)
		return true;
	u = str_tolower(username, strlen(username), DEFAULT_COLLATION_OID);
	p = str_tolower(password, strlen(password), DEFAULT_COLLATION_OID);
	found = strstr(p, u) != NULL;
	explicit_bzero(p, strlen(p));
	pfree(p);
	pfree(u);
	if (!found)
		return true;
	fail(f, psprintf("password must not contain the user name"), NULL, NULL);
	return false;
}

static bool
rule_common_list(const char *username, const char *password, Oid roleid, PolicyFailure *f)
{
	if (pp_common_list == NULL || pp_common_list[0] == '\0' || !on_common_list(password))
		return true;
	fail(f, psprintf("password is on the list of common passwords"),
		 psprintf("Passwords on the list \"%s\" are refused, in any letter case.", pp_common_list), NULL);
	return false;
}

static bool
rule_cracklib(const char *username, const char *password, Oid roleid, PolicyFailure *f)
{
	char		path[MAXPGPATH];
	const char *reason;

	if (pp_cracklib_dictionary == NULL || pp_cracklib_dictionary[0] == '\0')
		return true;
	/* Older cracklib exits the process when it cannot open the dictionary. */
	snprintf(path, sizeof(path), "%s.pwd", pp_cracklib_dictionary);
	if (access(path, R_OK) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the password policy cannot be applied: cracklib dictionary \"%s\" cannot be read",
						pp_cracklib_dictionary),
				 errhint("Install it (Debian package cracklib-runtime) or set vms.password_cracklib_dictionary to '' to switch the check off.")));
	reason = FascistCheck(password, pp_cracklib_dictionary);
	if (reason == NULL)
		return true;
	fail(f, psprintf("password is too weak"),
		 psprintf("cracklib found it easy to guess."),
		 psprintf("cracklib: %s", reason));
	return false;
}

static bool
rule_history(const char *username, const char *password, Oid roleid, PolicyFailure *f)
{
	if (pp_history <= 0 || !OidIsValid(roleid) || skip_history)
		return true;
	if (!matches_current_password(roleid, username, password) &&
		!matches_history(username, password))
		return true;
	fail(f, psprintf("password was used recently"),
		 psprintf("None of a role's last %d passwords may be used again.", pp_history), NULL);
	return false;
}

typedef struct PolicyRule
{
	const char *name;
	bool		(*check) (const char *username, const char *password, Oid roleid, PolicyFailure *f);
} PolicyRule;

static const PolicyRule policy_rules[] = {
	{"length", rule_length},
	{"classes", rule_classes},
	{"username", rule_username},
	{"common_list", rule_common_list},
	{"cracklib", rule_cracklib},
	{"history", rule_history},
	{NULL, NULL}
};

static void
raise_failure(const PolicyFailure *f)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", f->message),
			 f->detail ? errdetail("%s", f->detail) : 0,
			 f->detail_log ? errdetail_log("%s", f->detail_log) : 0,
			 errhint("See vms.password_* settings and docs/password-policy.md.")));
}

/* ---- The hook ---------------------------------------------------------- */

static void
clear_expected(void)
{
	if (expected_verifier)
		pfree(expected_verifier);
	if (expected_user)
		pfree(expected_user);
	expected_verifier = expected_user = NULL;
}

static void
clear_pending_create(void)
{
	if (pending_create_verifier)
		pfree(pending_create_verifier);
	if (pending_create_user)
		pfree(pending_create_user);
	pending_create_verifier = pending_create_user = NULL;
}

/* The role gets this verifier: into the history now, or once it exists. */
static void
record_password(const char *username, Oid roleid, const char *verifier)
{
	if (!history_writable())
		return;
	if (OidIsValid(roleid))
	{
		history_record(username, verifier, false);
		return;
	}
	clear_pending_create();
	pending_create_user = MemoryContextStrdup(TopMemoryContext, username);
	pending_create_verifier = MemoryContextStrdup(TopMemoryContext, verifier);
}

static void
check_password_body(const char *username, const char *shadow_pass,
					PasswordType password_type, Datum validuntil_time,
					bool validuntil_null)
{
	bool		only_check = check_only;
	bool		announced;
	Oid			roleid;
	int			i;
	PolicyFailure f;

	if (prev_check_password_hook)
		prev_check_password_hook(username, shadow_pass, password_type,
								 validuntil_time, validuntil_null);

	/* The verifier vms._password_verifier just made for this role, once. */
	announced = !only_check && expected_verifier != NULL &&
		strcmp(expected_user, username) == 0 &&
		strcmp(expected_verifier, shadow_pass) == 0;
	clear_expected();

	/* pg_upgrade restores roles as they were. */
	if (IsBinaryUpgrade)
		return;

	roleid = get_role_oid(username, true);

	/* Outside the VMS database a VMS user's password would escape the history. */
	if (OidIsValid(roleid) && !in_vms_database() && role_is_vms_user(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the password of VMS user \"%s\" can be changed only in database \"%s\"",
						username, vms_database_name),
				 errdetail("pg_vms keeps the password history there."),
				 errhint("Connect to database \"%s\" and use ALTER ROLE, vms.change_password() or vms.set_password().",
						 vms_database_name)));

	if (announced)
	{
		record_password(username, roleid, shadow_pass);
		return;
	}

	if (password_type == PASSWORD_TYPE_MD5)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("MD5-hashed passwords are not accepted"),
				 errdetail("pg_vms requires SCRAM-SHA-256."),
				 errhint("Send the password in plain text over a TLS connection, or use vms.change_password() or vms.set_password().")));
	if (password_type == PASSWORD_TYPE_SCRAM_SHA_256)
	{
		if (!pp_allow_hashed)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("password must be given in plain text, not already hashed"),
					 errdetail("The password policy cannot check a hashed password; psql's \\password sends one."),
					 errhint("Send the password in plain text over a TLS connection (ALTER ROLE ... PASSWORD '...'), or use vms.change_password() or vms.set_password().")));
		if (!only_check)
			record_password(username, roleid, shadow_pass);
		return;
	}

	/* A plaintext password. */
	password_policy_check_size(shadow_pass);
	if (!only_check && Password_encryption != PASSWORD_TYPE_SCRAM_SHA_256)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password_encryption must be scram-sha-256"),
				 errdetail("pg_vms does not let passwords be stored as MD5 hashes.")));
	for (i = 0; policy_rules[i].name != NULL; i++)
		if (!policy_rules[i].check(username, shadow_pass, roleid, &f))
			raise_failure(&f);

	if (!only_check && shadow_pass[0] != '\0' && history_writable())
	{
		char	   *verifier = encrypt_password(PASSWORD_TYPE_SCRAM_SHA_256, username, shadow_pass);

		record_password(username, roleid, verifier);
		pfree(verifier);
	}
}

/*
 * The hook.  The statement being run carries the password (ALTER ROLE ...
 * PASSWORD '...'), so an error raised here must not be logged with its
 * STATEMENT line or context, whoever raised it (a rule, a previous hook).
 */
static void
vms_check_password(const char *username, const char *shadow_pass,
				   PasswordType password_type, Datum validuntil_time,
				   bool validuntil_null)
{
	MemoryContext oldcontext = CurrentMemoryContext;

	PG_TRY();
	{
		check_password_body(username, shadow_pass, password_type,
							validuntil_time, validuntil_null);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		edata->hide_stmt = true;
		edata->hide_ctx = true;
		ReThrowError(edata);
	}
	PG_END_TRY();
}

void
password_policy_check_plaintext(const char *username, const char *password,
								bool check_history)
{
	password_policy_check_size(password);
	if (check_password_hook == NULL)
		return;
	check_only = true;
	skip_history = !check_history;
	PG_TRY();
	{
		(*check_password_hook) (username, password, PASSWORD_TYPE_PLAINTEXT, (Datum) 0, true);
	}
	PG_FINALLY();
	{
		check_only = false;
		skip_history = false;
	}
	PG_END_TRY();
}

void
password_policy_expect_verifier(const char *username, const char *verifier)
{
	clear_expected();
	expected_user = MemoryContextStrdup(TopMemoryContext, username);
	expected_verifier = MemoryContextStrdup(TopMemoryContext, verifier);
}

/* CREATE ROLE has given the role an OID; DROP ROLE forgets its history. */
static void
vms_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (classId != AuthIdRelationId || IsBinaryUpgrade)
		return;
	if (access == OAT_POST_CREATE && pending_create_user != NULL)
	{
		char	   *user = pstrdup(pending_create_user);
		char	   *verifier = pstrdup(pending_create_verifier);

		clear_pending_create();
		history_record(user, verifier, true);
	}
	else if (access == OAT_DROP)
	{
		char	   *name = GetUserNameFromId(objectId, true);

		if (name != NULL)
			history_forget(name);
	}
}

static void
vms_policy_xact_callback(XactEvent event, void *arg)
{
	check_only = false;
	clear_expected();
	clear_pending_create();
}

static void
vms_policy_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		clear_expected();
		clear_pending_create();
	}
}

void
password_policy_install_hook(void)
{
	prev_check_password_hook = check_password_hook;
	check_password_hook = vms_check_password;
	prev_object_access_hook = object_access_hook;
	object_access_hook = vms_object_access;
	RegisterXactCallback(vms_policy_xact_callback, NULL);
	RegisterSubXactCallback(vms_policy_subxact_callback, NULL);
}

/* ---- Dry run ------------------------------------------------------------ */

PG_FUNCTION_INFO_V1(vms_password_policy_report);

/*
 * vms._password_policy_report(username text, password text)
 *   RETURNS TABLE(rule text, ok boolean, detail text)
 * Every rule's verdict on a plaintext, changing nothing.  The history is not
 * consulted: that would let an administrator test guesses of a user's
 * current or past passwords without changing anything.
 */
Datum
vms_password_policy_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *username = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *password = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Oid			roleid = get_role_oid(username, true);
	int			i;

	password_policy_check_size(password);
	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; policy_rules[i].name != NULL; i++)
	{
		PolicyFailure f;
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		bool		ok;

		values[0] = CStringGetTextDatum(policy_rules[i].name);
		if (policy_rules[i].check == rule_history)
		{
			/* An oracle for a user's passwords if answered without a change. */
			nulls[1] = true;
			values[2] = CStringGetTextDatum("checked only when the password is set");
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			continue;
		}
		memset(&f, 0, sizeof(f));
		ok = policy_rules[i].check(username, password, roleid, &f);
		values[1] = BoolGetDatum(ok);
		if (ok)
			nulls[2] = true;
		else
			values[2] = CStringGetTextDatum(f.detail_log ? psprintf("%s (%s)", f.message, f.detail_log) : f.message);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	explicit_bzero(password, strlen(password));
	PG_RETURN_NULL();
}
