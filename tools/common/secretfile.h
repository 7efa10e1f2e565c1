/*
 * secretfile.h: a password or passphrase read from a file, so that it never
 * stands on a command line or in the environment.
 */
#ifndef VMS_TOOLS_SECRETFILE_H
#define VMS_TOOLS_SECRETFILE_H

#include <stddef.h>

/*
 * The secret in file: one line of 1..max bytes, with or without a final
 * "\n" or "\r\n".  A NUL or a second line is refused, and with
 * owner_only a file that its group or others may access.  Returns a
 * malloc'ed copy for secret_free(), or NULL with err (never the secret).
 */
extern char *secret_from_file(const char *file, size_t max, int owner_only, char *err, size_t errlen);

/* Overwrites and frees a secret (NULL is fine). */
extern void secret_free(char *secret);

#endif							/* VMS_TOOLS_SECRETFILE_H */
