/*-------------------------------------------------------------------------
 * password_policy.h
 *	  The password policy: check_password_hook rules and password history.
 *-------------------------------------------------------------------------
 */
#ifndef PASSWORD_POLICY_H
#define PASSWORD_POLICY_H

extern void password_policy_define_settings(void);
extern void password_policy_install_hook(void);

#endif							/* PASSWORD_POLICY_H */
