/*
 * readfile.h: a small file read whole into memory, with a bound.
 */
#ifndef VMS_TOOLS_READFILE_H
#define VMS_TOOLS_READFILE_H

#include <stddef.h>

/*
 * Reads fd from its offset to its end, at most max bytes, into a malloc'ed
 * buffer with a NUL after the data; sets *len.  NULL with errno: EFBIG when
 * there is more than max, ENOMEM, or the read's error.  On failure the bytes
 * read are wiped (the file may hold a secret).
 */
extern char *read_fd_bounded(int fd, size_t max, size_t *len);

#endif							/* VMS_TOOLS_READFILE_H */
