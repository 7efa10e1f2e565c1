/*-------------------------------------------------------------------------
 * password.c
 *	  Turning a new password into a SCRAM-SHA-256 verifier inside the
 *	  server, so that the plaintext never appears in an SQL statement that
 *	  pg_vms builds (statement text shows up in error context lines and in
 *	  the log).  The password policy (check_password_hook) still sees the
 *	  plaintext, as CREATE ROLE would give it; the CREATE/ALTER ROLE that
 *	  follows carries the verifier, which the hook accepts exactly once
 *	  (password_policy.c).  Also: checking a role's current password for
 *	  vms.change_password().
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/user.h"
#include "fmgr.h"
#include "libpq/crypt.h"
#include "utils/builtins.h"

#include "audit.h"
#include "auth_guard.h"
#include "password_policy.h"

PG_FUNCTION_INFO_V1(vms_password_verifier);
PG_FUNCTION_INFO_V1(vms_password_reset_verifier);
PG_FUNCTION_INFO_V1(vms_password_matches);

static Datum
make_verifier(FunctionCallInfo fcinfo, bool check_history)
{
	char	   *username = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *password = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *verifier;

	if (get_password_type(password) != PASSWORD_TYPE_PLAINTEXT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password must be given in plain text"),
				 errhint("pg_vms hashes it with SCRAM-SHA-256 itself, after the password policy has checked it.")));
	password_policy_check_plaintext(username, password, check_history);
	verifier = encrypt_password(PASSWORD_TYPE_SCRAM_SHA_256, username, password);
	explicit_bzero(password, strlen(password));
	password_policy_expect_verifier(username, verifier);
	PG_RETURN_TEXT_P(cstring_to_text(verifier));
}

/* vms._password_verifier(username text, password text) returns text */
Datum
vms_password_verifier(PG_FUNCTION_ARGS)
{
	return make_verifier(fcinfo, true);
}

/*
 * vms._password_reset_verifier(username text, password text) returns text:
 * the same for an administrator's reset (vms.set_password), without the
 * history rule, which would tell the administrator whether a guess is one
 * of the user's recent passwords.
 */
Datum
vms_password_reset_verifier(PG_FUNCTION_ARGS)
{
	return make_verifier(fcinfo, false);
}

/*
 * vms._password_matches(username text, password text) returns boolean:
 * is this the role's current password?  False alike for a wrong password,
 * no password, an expired one, an unknown role, or a role locked out by the
 * login lockout; a wrong guess counts against the lockout as a failed login.
 */
Datum
vms_password_matches(PG_FUNCTION_ARGS)
{
	char	   *username = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *password = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char		address[AUDIT_ADDR_LEN];
	const char *logdetail = NULL;
	char	   *secret;
	bool		ok = false;

	password_policy_check_size(password);
	audit_client_addr(address, sizeof(address));
	if (!lockout_is_locked(username, address))
	{
		secret = get_role_password(username, &logdetail);
		if (secret != NULL)
			ok = plain_crypt_verify(username, secret, password, &logdetail) == STATUS_OK;
		if (!ok)
			lockout_note_failure(username, address, "change_password");
	}
	explicit_bzero(password, strlen(password));
	PG_RETURN_BOOL(ok);
}
