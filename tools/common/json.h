/*
 * json.h: a strict JSON parser (RFC 8259) for the pg_vms tools, into a small
 * tree whose objects keep their key order.
 *
 * Strict: the text must be well-formed UTF-8 (no byte order mark), at most
 * JSON_MAX_SIZE bytes and nested at most JSON_MAX_DEPTH deep; an object must
 * not hold a key twice; numbers follow the RFC's grammar exactly (no leading
 * zeros, no "+", no "NaN"); strings hold no raw control character and only the
 * RFC's escapes, surrogates only in pairs; only space, tab, CR and LF as
 * whitespace; nothing but whitespace after the value.  Errors name the byte
 * offset.  Prints nothing.
 */
#ifndef VMS_TOOLS_JSON_H
#define VMS_TOOLS_JSON_H

#include <stddef.h>

#define JSON_MAX_SIZE	(16 * 1024 * 1024)
#define JSON_MAX_DEPTH	64

typedef enum JsonType
{
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
} JsonType;

typedef struct JsonValue JsonValue;

typedef struct JsonMember
{
	char	   *key;			/* decoded UTF-8, NUL-terminated (may hold \u0000: see keylen) */
	size_t		keylen;
	JsonValue  *value;
} JsonMember;

struct JsonValue
{
	JsonType	type;
	/* JSON_STRING: the decoded text; JSON_NUMBER: the literal as written */
	char	   *str;
	size_t		len;
	/* JSON_NUMBER: is_int when the literal is an integer within 64 bits */
	int			is_int;
	long long	ival;
	/* JSON_ARRAY: items; JSON_OBJECT: members, in the order of the text */
	size_t		n;
	JsonValue **items;
	JsonMember *members;
};

/*
 * Parses text[0..len).  Returns the tree (free with json_free), or NULL with
 * err set to "at byte N: what" (or "out of memory").
 */
extern JsonValue *json_parse(const char *text, size_t len, char *err, size_t errlen);
extern void json_free(JsonValue *v);

/* The member of an object called key, or NULL (also when v is no object). */
extern const JsonValue *json_get(const JsonValue *obj, const char *key);
/* The string as C text: NULL when v is no string or holds a NUL. */
extern const char *json_cstr(const JsonValue *v);
/* 0 and *out when v is an integer in [min, max]; else -1. */
extern int	json_int(const JsonValue *v, long long min, long long max, long long *out);
extern const char *json_type_name(JsonType t);

#endif							/* VMS_TOOLS_JSON_H */
