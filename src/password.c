/*-------------------------------------------------------------------------
 * password.c
 *	  Turning a new user's password into a SCRAM-SHA-256 verifier inside
 *	  the server, so that the plaintext never appears in an SQL statement
 *	  that pg_vms builds (statement text shows up in error context lines and
 *	  in the log).  The password policy (check_password_hook) still sees the
 *	  plaintext, as CREATE ROLE would give it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/user.h"
#include "fmgr.h"
#include "libpq/crypt.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(vms_password_verifier);

/* vms._password_verifier(username text, password text) returns text */
Datum
vms_password_verifier(PG_FUNCTION_ARGS)
{
	char	   *username = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *password = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *verifier;

	if (get_password_type(password) != PASSWORD_TYPE_PLAINTEXT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password must be given in plain text"),
				 errhint("pg_vms hashes it with SCRAM-SHA-256 itself, after the password policy has checked it.")));
	if (check_password_hook)
		(*check_password_hook) (username, password, PASSWORD_TYPE_PLAINTEXT,
								(Datum) 0, true);
	verifier = encrypt_password(PASSWORD_TYPE_SCRAM_SHA_256, username, password);
	memset(password, 0, strlen(password));
	PG_RETURN_TEXT_P(cstring_to_text(verifier));
}
