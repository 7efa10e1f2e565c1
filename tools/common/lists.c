/*
 * lists.c: growing lists of ids and of strings (see lists.h).
 */
#include <stdlib.h>
#include <string.h>

#include "lists.h"

int
idlist_add(IdList *l, long long id)
{
	if (l->n == l->cap)
	{
		size_t		cap = l->cap ? l->cap * 2 : 256;
		long long  *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = id;
	return 0;
}

static int
cmp_id(const void *a, const void *b)
{
	long long	x = *(const long long *) a;
	long long	y = *(const long long *) b;

	return (x > y) - (x < y);
}

void
idlist_sort(IdList *l)
{
	/* qsort(NULL, 0, ...) is undefined behaviour (UBSan says so). */
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(long long), cmp_id);
}

int
idlist_contains_sorted(const IdList *l, long long id)
{
	return l->n > 0 && bsearch(&id, l->v, l->n, sizeof(long long), cmp_id) != NULL;
}

void
idlist_free(IdList *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

int
strlist_add(StrList *l, char *s)
{
	if (s == NULL)
		return -1;
	if (l->n == l->cap)
	{
		size_t		cap = l->cap ? l->cap * 2 : 64;
		char	  **v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
		{
			free(s);
			return -1;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = s;
	return 0;
}

int
strlist_contains(const StrList *l, const char *s)
{
	size_t		i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
cmp_str_desc(const void *a, const void *b)
{
	return -cmp_str(a, b);
}

void
strlist_sort(StrList *l, int descending)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(char *), descending ? cmp_str_desc : cmp_str);
}

void
strlist_free(StrList *l)
{
	size_t		i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
