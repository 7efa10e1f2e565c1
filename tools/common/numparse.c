/*
 * numparse.c: strict number parsing (see numparse.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "numparse.h"

int
parse_int64(const char *s, long long min, long long max, long long *out)
{
	char	   *end;
	long long	v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
parse_long(const char *s, long min, long max, long *out)
{
	long long	v;

	if (parse_int64(s, min, max, &v) != 0)
		return -1;
	*out = (long) v;
	return 0;
}

int
parse_fixed_digits(const char *s, int n)
{
	int			v = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}
