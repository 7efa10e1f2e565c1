/*
 * lists.h: growing lists for the pg_vms tools: 64-bit ids (segment ids)
 * and owned strings (paths).
 */
#ifndef VMS_TOOLS_LISTS_H
#define VMS_TOOLS_LISTS_H

#include <stddef.h>

typedef struct IdList
{
	long long  *v;
	size_t		n;
	size_t		cap;
} IdList;

typedef struct StrList
{
	char	  **v;
	size_t		n;
	size_t		cap;
} StrList;

/* 0, or -1 when out of memory (the list is unchanged). */
extern int	idlist_add(IdList *l, long long id);
extern void idlist_sort(IdList *l);
/* Whether id is in the list, which idlist_sort() has sorted. */
extern int	idlist_contains_sorted(const IdList *l, long long id);
extern void idlist_free(IdList *l);

/* Takes ownership of s (freed if it cannot be added); -1 if s is NULL or out of memory. */
extern int	strlist_add(StrList *l, char *s);
extern int	strlist_contains(const StrList *l, const char *s);
extern void strlist_sort(StrList *l, int descending);
extern void strlist_free(StrList *l);

#endif							/* VMS_TOOLS_LISTS_H */
