/*
 * json.c: a strict JSON parser (see json.h).  Recursive descent, bounded by
 * JSON_MAX_DEPTH; duplicate keys found by sorting each object's keys once
 * it is complete (n log n, so a hostile object of a million keys is cheap).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utf8.h"

typedef struct Parser
{
	const unsigned char *s;
	size_t		len;
	size_t		pos;
	char	   *err;
	size_t		errlen;
	int			failed;
} Parser;

static JsonValue *parse_value(Parser *p, int depth);

static void
fail(Parser *p, size_t at, const char *what)
{
	if (p->failed)
		return;
	p->failed = 1;
	snprintf(p->err, p->errlen, "at byte %zu: %s", at, what);
}

static void
oom(Parser *p)
{
	if (p->failed)
		return;
	p->failed = 1;
	snprintf(p->err, p->errlen, "out of memory");
}

const char *
json_type_name(JsonType t)
{
	switch (t)
	{
		case JSON_NULL:
			return "null";
		case JSON_FALSE:
		case JSON_TRUE:
			return "a boolean";
		case JSON_NUMBER:
			return "a number";
		case JSON_STRING:
			return "a string";
		case JSON_ARRAY:
			return "an array";
		case JSON_OBJECT:
			return "an object";
	}
	return "?";
}

void
json_free(JsonValue *v)
{
	size_t		i;

	if (v == NULL)
		return;
	if (v->type == JSON_ARRAY)
		for (i = 0; i < v->n; i++)
			json_free(v->items[i]);
	if (v->type == JSON_OBJECT)
		for (i = 0; i < v->n; i++)
		{
			free(v->members[i].key);
			json_free(v->members[i].value);
		}
	free(v->items);
	free(v->members);
	free(v->str);
	free(v);
}

static void
skip_ws(Parser *p)
{
	while (p->pos < p->len)
	{
		unsigned char c = p->s[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static JsonValue *
new_value(Parser *p, JsonType t)
{
	JsonValue  *v = calloc(1, sizeof(JsonValue));

	if (v == NULL)
		oom(p);
	else
		v->type = t;
	return v;
}

static int
hex4(const unsigned char *s, unsigned int *out)
{
	unsigned int v = 0;
	int			i;

	for (i = 0; i < 4; i++)
	{
		unsigned char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned int) (c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned int) (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned int) (c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t
put_utf8(unsigned int cp, char *out)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xc0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xe0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char) (0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char) (0xf0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char) (0x80 | (cp & 0x3f));
	return 4;
}

/*
 * A string at p->pos (the opening quote): the decoded text, malloc'ed and
 * NUL-terminated, its length in *outlen.  Decoded text is never longer than
 * the raw text (an escape of 6 or 12 bytes gives at most 4).
 */
static char *
parse_string(Parser *p, size_t *outlen)
{
	size_t		start = p->pos;
	size_t		end;
	char	   *out;
	size_t		o = 0;

	p->pos++;					/* the quote */
	/* Find the closing quote: any byte but an unescaped one. */
	for (end = p->pos; end < p->len && p->s[end] != '"'; end++)
		if (p->s[end] == '\\')
			end++;
	if (end >= p->len)
	{
		fail(p, start, "unterminated string");
		return NULL;
	}
	out = malloc(end - p->pos + 1);
	if (out == NULL)
	{
		oom(p);
		return NULL;
	}
	while (p->pos < end)
	{
		unsigned char c = p->s[p->pos];

		if (c < 0x20)
		{
			fail(p, p->pos, "a control character in a string (it must be escaped)");
			goto bad;
		}
		if (c >= 0x80)
		{
			size_t		n = utf8_len(p->s + p->pos, end - p->pos);

			if (n == 0)
			{
				fail(p, p->pos, "not well-formed UTF-8");
				goto bad;
			}
			memcpy(out + o, p->s + p->pos, n);
			o += n;
			p->pos += n;
			continue;
		}
		if (c != '\\')
		{
			out[o++] = (char) c;
			p->pos++;
			continue;
		}
		/* An escape; the loop above guarantees a byte after the backslash. */
		switch (p->s[p->pos + 1])
		{
			case '"':
				out[o++] = '"';
				break;
			case '\\':
				out[o++] = '\\';
				break;
			case '/':
				out[o++] = '/';
				break;
			case 'b':
				out[o++] = '\b';
				break;
			case 'f':
				out[o++] = '\f';
				break;
			case 'n':
				out[o++] = '\n';
				break;
			case 'r':
				out[o++] = '\r';
				break;
			case 't':
				out[o++] = '\t';
				break;
			case 'u':
				{
					unsigned int cp, lo;

					if (end - p->pos < 6 || hex4(p->s + p->pos + 2, &cp) != 0)
					{
						fail(p, p->pos, "a \\u escape needs four hex digits");
						goto bad;
					}
					if (cp >= 0xdc00 && cp <= 0xdfff)
					{
						fail(p, p->pos, "a lone low surrogate escape");
						goto bad;
					}
					if (cp >= 0xd800 && cp <= 0xdbff)
					{
						if (end - p->pos < 12 || p->s[p->pos + 6] != '\\' || p->s[p->pos + 7] != 'u' ||
							hex4(p->s + p->pos + 8, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
						{
							fail(p, p->pos, "a high surrogate escape without its low surrogate");
							goto bad;
						}
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						p->pos += 6;
					}
					o += put_utf8(cp, out + o);
					p->pos += 6;
					continue;
				}
			default:
				fail(p, p->pos, "an invalid escape in a string");
				goto bad;
		}
		p->pos += 2;
	}
	p->pos = end + 1;
	out[o] = '\0';
	*outlen = o;
	return out;
bad:
	free(out);
	return NULL;
}

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static JsonValue *
parse_number(Parser *p)
{
	size_t		start = p->pos;
	size_t		i = p->pos;
	int			integral = 1;
	JsonValue  *v;

	if (i < p->len && p->s[i] == '-')
		i++;
	if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
	{
		fail(p, start, "a number needs a digit");
		return NULL;
	}
	if (p->s[i] == '0')
	{
		i++;
		if (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
		{
			fail(p, start, "a number with a leading zero");
			return NULL;
		}
	}
	else
		while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
			i++;
	if (i < p->len && p->s[i] == '.')
	{
		integral = 0;
		i++;
		if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
		{
			fail(p, i, "a digit must follow the decimal point");
			return NULL;
		}
		while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
			i++;
	}
	if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E'))
	{
		integral = 0;
		i++;
		if (i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
			i++;
		if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
		{
			fail(p, i, "a digit must follow the exponent");
			return NULL;
		}
		while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
			i++;
	}
	v = new_value(p, JSON_NUMBER);
	if (v == NULL)
		return NULL;
	v->len = i - start;
	v->str = malloc(v->len + 1);
	if (v->str == NULL)
	{
		oom(p);
		free(v);
		return NULL;
	}
	memcpy(v->str, p->s + start, v->len);
	v->str[v->len] = '\0';
	if (integral)
	{
		/* Accumulate negatively: -9223372036854775808 fits, its opposite does not. */
		const char *d = v->str + (v->str[0] == '-');
		long long	acc = 0;
		int			ok = 1;

		for (; *d; d++)
		{
			int			digit = *d - '0';

			if (acc < (-9223372036854775807LL - 1 + digit) / 10)
			{
				ok = 0;
				break;
			}
			acc = acc * 10 - digit;
		}
		if (ok && v->str[0] != '-' && acc == -9223372036854775807LL - 1)
			ok = 0;
		if (ok)
		{
			v->is_int = 1;
			v->ival = v->str[0] == '-' ? acc : -acc;
		}
	}
	p->pos = i;
	return v;
}

static int
literal(Parser *p, const char *word)
{
	size_t		n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
	{
		fail(p, p->pos, "an unexpected character (a value expected)");
		return -1;
	}
	p->pos += n;
	return 0;
}

static int
member_cmp(const void *a, const void *b)
{
	const JsonMember *x = *(const JsonMember *const *) a;
	const JsonMember *y = *(const JsonMember *const *) b;
	size_t		n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int			c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	return x < y ? -1 : (x > y ? 1 : 0);	/* stable: the earlier member first */
}

/* -1 and the error when a key occurs twice; offsets[i] is member i's key offset. */
static int
check_duplicates(Parser *p, JsonValue *obj, const size_t *offsets)
{
	JsonMember **sorted;
	size_t		i;
	int			ret = 0;

	if (obj->n < 2)
		return 0;
	sorted = malloc(obj->n * sizeof(JsonMember *));
	if (sorted == NULL)
	{
		oom(p);
		return -1;
	}
	for (i = 0; i < obj->n; i++)
		sorted[i] = &obj->members[i];
	qsort(sorted, obj->n, sizeof(JsonMember *), member_cmp);
	for (i = 1; i < obj->n; i++)
		if (sorted[i]->keylen == sorted[i - 1]->keylen &&
			memcmp(sorted[i]->key, sorted[i - 1]->key, sorted[i]->keylen) == 0)
		{
			fail(p, offsets[sorted[i] - obj->members], "a duplicate key in an object");
			ret = -1;
			break;
		}
	free(sorted);
	return ret;
}

static JsonValue *
parse_array(Parser *p, int depth)
{
	JsonValue  *v = new_value(p, JSON_ARRAY);
	size_t		cap = 0;

	if (v == NULL)
		return NULL;
	p->pos++;					/* [ */
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ']')
	{
		p->pos++;
		return v;
	}
	for (;;)
	{
		JsonValue  *item;

		if (v->n == cap)
		{
			size_t		ncap = cap ? cap * 2 : 4;
			JsonValue **ni = realloc(v->items, ncap * sizeof(JsonValue *));

			if (ni == NULL)
			{
				oom(p);
				goto bad;
			}
			v->items = ni;
			cap = ncap;
		}
		item = parse_value(p, depth + 1);
		if (item == NULL)
			goto bad;
		v->items[v->n++] = item;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',')
		{
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == ']')
		{
			p->pos++;
			return v;
		}
		fail(p, p->pos, p->pos < p->len ? "',' or ']' expected" : "the text ends inside an array");
		goto bad;
	}
bad:
	json_free(v);
	return NULL;
}

static JsonValue *
parse_object(Parser *p, int depth)
{
	JsonValue  *v = new_value(p, JSON_OBJECT);
	size_t	   *offsets = NULL;
	size_t		cap = 0;

	if (v == NULL)
		return NULL;
	p->pos++;					/* { */
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '}')
	{
		p->pos++;
		return v;
	}
	for (;;)
	{
		JsonMember *m;
		size_t		keyat;

		if (p->pos >= p->len || p->s[p->pos] != '"')
		{
			fail(p, p->pos, p->pos < p->len ? "a key (a string) expected" : "the text ends inside an object");
			goto bad;
		}
		if (v->n == cap)
		{
			size_t		ncap = cap ? cap * 2 : 4;
			JsonMember *nm = realloc(v->members, ncap * sizeof(JsonMember));
			size_t	   *no;

			if (nm == NULL)
			{
				oom(p);
				goto bad;
			}
			v->members = nm;
			no = realloc(offsets, ncap * sizeof(size_t));
			if (no == NULL)
			{
				oom(p);
				goto bad;
			}
			offsets = no;
			cap = ncap;
		}
		m = &v->members[v->n];
		m->value = NULL;
		keyat = p->pos;
		m->key = parse_string(p, &m->keylen);
		if (m->key == NULL)
			goto bad;
		offsets[v->n] = keyat;
		v->n++;
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ':')
		{
			fail(p, p->pos, p->pos < p->len ? "':' expected after a key" : "the text ends inside an object");
			goto bad;
		}
		p->pos++;
		m->value = parse_value(p, depth + 1);
		if (m->value == NULL)
			goto bad;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',')
		{
			p->pos++;
			skip_ws(p);
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '}')
		{
			p->pos++;
			if (check_duplicates(p, v, offsets) != 0)
				goto bad;
			free(offsets);
			return v;
		}
		fail(p, p->pos, p->pos < p->len ? "',' or '}' expected" : "the text ends inside an object");
		goto bad;
	}
bad:
	free(offsets);
	json_free(v);
	return NULL;
}

static JsonValue *
parse_value(Parser *p, int depth)
{
	JsonValue  *v;

	skip_ws(p);
	if (p->pos >= p->len)
	{
		fail(p, p->pos, "the text ends where a value is expected");
		return NULL;
	}
	switch (p->s[p->pos])
	{
		case '{':
		case '[':
			if (depth >= JSON_MAX_DEPTH)
			{
				char		what[64];

				snprintf(what, sizeof(what), "nested deeper than %d levels", JSON_MAX_DEPTH);
				fail(p, p->pos, what);
				return NULL;
			}
			return p->s[p->pos] == '{' ? parse_object(p, depth) : parse_array(p, depth);
		case '"':
			v = new_value(p, JSON_STRING);
			if (v == NULL)
				return NULL;
			v->str = parse_string(p, &v->len);
			if (v->str == NULL)
			{
				free(v);
				return NULL;
			}
			return v;
		case 't':
			return literal(p, "true") == 0 ? new_value(p, JSON_TRUE) : NULL;
		case 'f':
			return literal(p, "false") == 0 ? new_value(p, JSON_FALSE) : NULL;
		case 'n':
			return literal(p, "null") == 0 ? new_value(p, JSON_NULL) : NULL;
		default:
			if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
				return parse_number(p);
			fail(p, p->pos, "an unexpected character (a value expected)");
			return NULL;
	}
}

JsonValue *
json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	Parser		p;
	JsonValue  *v;

	p.s = (const unsigned char *) text;
	p.len = len;
	p.pos = 0;
	p.err = err;
	p.errlen = errlen;
	p.failed = 0;
	if (len > JSON_MAX_SIZE)
	{
		snprintf(err, errlen, "larger than %d bytes", JSON_MAX_SIZE);
		return NULL;
	}
	if (len >= 3 && p.s[0] == 0xef && p.s[1] == 0xbb && p.s[2] == 0xbf)
	{
		fail(&p, 0, "a byte order mark (not allowed)");
		return NULL;
	}
	v = parse_value(&p, 0);
	if (v == NULL)
		return NULL;
	skip_ws(&p);
	if (p.pos != p.len)
	{
		fail(&p, p.pos, "text after the value");
		json_free(v);
		return NULL;
	}
	return v;
}

const JsonValue *
json_get(const JsonValue *obj, const char *key)
{
	size_t		i, n = strlen(key);

	if (obj == NULL || obj->type != JSON_OBJECT)
		return NULL;
	for (i = 0; i < obj->n; i++)
		if (obj->members[i].keylen == n && memcmp(obj->members[i].key, key, n) == 0)
			return obj->members[i].value;
	return NULL;
}

const char *
json_cstr(const JsonValue *v)
{
	if (v == NULL || v->type != JSON_STRING || strlen(v->str) != v->len)
		return NULL;
	return v->str;
}

int
json_int(const JsonValue *v, long long min, long long max, long long *out)
{
	if (v == NULL || v->type != JSON_NUMBER || !v->is_int || v->ival < min || v->ival > max)
		return -1;
	*out = v->ival;
	return 0;
}
