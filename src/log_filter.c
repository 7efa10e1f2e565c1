/*-------------------------------------------------------------------------
 * log_filter.c
 *	  Keep passwords given to pg_vms out of the server log.
 *
 *	  pg_vms never puts a password into a statement it builds, but the
 *	  caller's own statement, SELECT vms.create_user('bob', '...'), is what
 *	  log_statement, log_min_duration_statement and the STATEMENT line of an
 *	  error report print, and bind parameters are printed as DETAIL.  For a
 *	  statement that calls a password-taking pg_vms function this hook hides
 *	  the statement text, its STATEMENT line and its parameters.  It only
 *	  reads debug_query_string, so it is safe in any process.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "tcop/tcopprot.h"
#include "utils/elog.h"

#include "log_filter.h"

static emit_log_hook_type prev_emit_log_hook = NULL;

/* Functions whose arguments may carry a secret. */
static const char *const secret_functions[] = {"create_user", "set_camera_credential",
	"change_password", "set_password", "check_password", "totp_verify", NULL};

static bool
statement_carries_secret(const char *query)
{
	int			i;

	if (query == NULL)
		return false;
	for (i = 0; secret_functions[i] != NULL; i++)
	{
		const char *name = secret_functions[i];
		size_t		len = strlen(name);
		const char *p;

		/* case-insensitive substring search; names are plain ASCII */
		for (p = query; *p; p++)
			if (pg_strncasecmp(p, name, len) == 0)
				return true;
	}
	return false;
}

static void
vms_emit_log_hook(ErrorData *edata)
{
	/* A call built by dynamic SQL shows up in the context or internal query. */
	if (edata->context && statement_carries_secret(edata->context))
		edata->context = pstrdup("context hidden by pg_vms: it may show a password");
	if (edata->internalquery && statement_carries_secret(edata->internalquery))
		edata->internalquery = NULL;
	if (statement_carries_secret(debug_query_string))
	{
		/* With log_parameter_max_length_on_error, the context lists parameters. */
		if (edata->context)
			edata->context = pstrdup("context hidden by pg_vms: it may show a password");
		edata->hide_stmt = true;
		/* "statement: ...", "execute <name>: ...", "duration: ... statement: ..." */
		if (edata->message && statement_carries_secret(edata->message))
			edata->message = pstrdup("statement hidden by pg_vms: it passes a password");
		if (edata->detail && strncmp(edata->detail, "parameters:", 11) == 0)
			edata->detail = pstrdup("parameters: hidden by pg_vms");
		if (edata->detail_log && strncmp(edata->detail_log, "parameters:", 11) == 0)
			edata->detail_log = pstrdup("parameters: hidden by pg_vms");
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
log_filter_install_hook(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = vms_emit_log_hook;
}
