/*
 * utf8.h: UTF-8 checks for the pg_vms tools.  The database refuses text
 * that is not well-formed UTF-8, so the tools check before they send.
 */
#ifndef VMS_TOOLS_UTF8_H
#define VMS_TOOLS_UTF8_H

#include <stddef.h>

extern size_t utf8_len(const unsigned char *p, size_t left);

#endif							/* VMS_TOOLS_UTF8_H */
