/*
 * utf8.c: UTF-8 checks for the pg_vms tools (see utf8.h).
 */
#include "utf8.h"

/*
 * The length of the well-formed UTF-8 sequence at p (at most left bytes, left
 * > 0), or 0: overlong forms, surrogates and code points above U+10FFFF are
 * not well-formed.  A NUL byte is a sequence of length 1; callers that cannot
 * pass it on check for it themselves.
 */
size_t
utf8_len(const unsigned char *p, size_t left)
{
	unsigned int cp;
	size_t		n;
	size_t		k;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 1;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 2;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 3;
	else
		return 0;
	cp = p[0] & (0x3f >> n);
	if (n >= left)
		return 0;
	for (k = 1; k <= n; k++)
	{
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}
