/*-------------------------------------------------------------------------
 * state_file.c
 *	  CRC-checked state files under $PGDATA (see state_file.h).
 *
 *	  Writers run in the postmaster at shutdown and in backends right after
 *	  a commit, where an ERROR would be too late to roll anything back: so
 *	  every failure is reported at LOG and returned.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "state_file.h"

typedef struct StateFileHeader
{
	uint32		magic;
	uint32		version;
	uint64		length;
	pg_crc32c	crc;
} StateFileHeader;

static bool
write_all(int fd, const void *buf, Size len)
{
	const char *p = buf;

	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

bool
state_file_write(const char *path, uint32 magic, uint32 version,
				 const void *data, Size len)
{
	char		tmp[MAXPGPATH];
	StateFileHeader hdr;
	int			fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int) getpid());
	hdr.magic = magic;
	hdr.version = version;
	hdr.length = len;
	INIT_CRC32C(hdr.crc);
	COMP_CRC32C(hdr.crc, data, len);
	FIN_CRC32C(hdr.crc);

	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		goto error;
	if (!write_all(fd, &hdr, sizeof(hdr)) || !write_all(fd, data, len) ||
		pg_fsync(fd) != 0)
	{
		CloseTransientFile(fd);
		goto error;
	}
	if (CloseTransientFile(fd) != 0)
		goto error;
	return durable_rename(tmp, path, LOG) == 0;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("pg_vms: could not write state file \"%s\": %m", tmp)));
	unlink(tmp);
	return false;
}

void *
state_file_read(const char *path, uint32 magic, uint32 version, Size *len)
{
	StateFileHeader hdr;
	pg_crc32c	crc;
	char	   *buf = NULL;
	int			fd;
	char		aside[MAXPGPATH];

	*len = 0;
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("pg_vms: could not open state file \"%s\": %m", path)));
		return NULL;
	}
	if (read(fd, &hdr, sizeof(hdr)) != sizeof(hdr) || hdr.magic != magic ||
		hdr.length > (uint64) MaxAllocHugeSize)
		goto bad;
	if (hdr.version != version)
	{
		/* A file of another release: start empty rather than misread it. */
		CloseTransientFile(fd);
		ereport(LOG,
				(errmsg("pg_vms: ignoring state file \"%s\" of format %u", path, hdr.version)));
		return NULL;
	}
	buf = malloc(Max(hdr.length, 1));
	if (buf == NULL || read(fd, buf, hdr.length) != (ssize_t) hdr.length)
		goto bad;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, hdr.length);
	FIN_CRC32C(crc);
	if (!EQ_CRC32C(crc, hdr.crc))
		goto bad;
	CloseTransientFile(fd);
	*len = hdr.length;
	return buf;

bad:
	free(buf);
	CloseTransientFile(fd);
	snprintf(aside, sizeof(aside), "%s.corrupt", path);
	(void) durable_rename(path, aside, LOG);
	ereport(LOG,
			(errmsg("pg_vms: state file \"%s\" is damaged; moved aside as \"%s\"", path, aside)));
	return NULL;
}
