/*-------------------------------------------------------------------------
 * password_policy.h
 *	  The password policy: check_password_hook rules and password history.
 *-------------------------------------------------------------------------
 */
#ifndef PASSWORD_POLICY_H
#define PASSWORD_POLICY_H

/* Longest password (in bytes) pg_vms accepts anywhere. */
#define PASSWORD_MAX_BYTES 1024

extern void password_policy_define_settings(void);
extern void password_policy_install_hook(void);

/*
 * For vms._password_verifier (password.c): run check_password_hook on a
 * plaintext without recording it in the history, then announce the SCRAM
 * verifier that the next CREATE/ALTER ROLE of that role will carry, so that
 * the hook accepts exactly that one pre-hashed value, once.
 */
extern void password_policy_check_plaintext(const char *username, const char *password,
											bool check_history);
extern void password_policy_expect_verifier(const char *username, const char *verifier);

/* Refuse an oversized password with the policy's error. */
extern void password_policy_check_size(const char *password);

#endif							/* PASSWORD_POLICY_H */
