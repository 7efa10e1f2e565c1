/*
 * numparse.h: strict number parsing for the pg_vms tools' options and file
 * names: digits only, no sign, no spaces, no trailing text, within bounds.
 */
#ifndef VMS_TOOLS_NUMPARSE_H
#define VMS_TOOLS_NUMPARSE_H

/* A whole decimal number in [min, max] and nothing else: 0, or -1. */
extern int	parse_int64(const char *s, long long min, long long max, long long *out);
extern int	parse_long(const char *s, long min, long max, long *out);
/* Exactly n decimal digits at s (n <= 9): their value, or -1. */
extern int	parse_fixed_digits(const char *s, int n);

#endif							/* VMS_TOOLS_NUMPARSE_H */
