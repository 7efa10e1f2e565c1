/*-------------------------------------------------------------------------
 * state_file.h
 *	  Small CRC-checked files under $PGDATA in which the postmaster keeps
 *	  shared-memory state across restarts (login locks, client address
 *	  lists).
 *-------------------------------------------------------------------------
 */
#ifndef STATE_FILE_H
#define STATE_FILE_H

#include "postgres.h"

/* Write len bytes atomically (temp file, fsync, durable rename).  LOG on failure, never ERROR. */
extern bool state_file_write(const char *path, uint32 magic, uint32 version,
							 const void *data, Size len);

/*
 * Read a file written by state_file_write.  Returns a malloc'd buffer (the
 * postmaster has no palloc context to spare) or NULL when the file is
 * missing, of another version, or damaged (then moved aside as .corrupt).
 */
extern void *state_file_read(const char *path, uint32 magic, uint32 version, Size *len);

#endif							/* STATE_FILE_H */
