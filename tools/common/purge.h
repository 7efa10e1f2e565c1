/*
 * purge.h: removing the recording files pg_vms retention released, one
 * camera at a time (vms.purge_claim, unlink, fsync, vms.purge_confirm), and
 * the storage-root path helpers it is built on.  Shared by vms-storage and
 * vms-ingest.  Prints nothing: messages go to the caller's report function.
 */
#ifndef VMS_TOOLS_PURGE_H
#define VMS_TOOLS_PURGE_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>

#include <libpq-fe.h>

/* Outcomes, ordered by severity (the numbers are vms-storage's exit codes). */
#define PURGE_OK			0
#define PURGE_REFUSED		1	/* files refused: unsafe path, symbolic link */
#define PURGE_DB			3
#define PURGE_IO			4	/* also out of memory */
#define PURGE_INTERRUPTED	5

#define PURGE_MAX_CLAIM		100000	/* vms.purge_claim() and purge_confirm() limits */

/* One line of text, without the program name. */
typedef void (*PurgeReport) (void *arg, const char *message);

typedef struct PurgeResult
{
	long long	files;			/* removed and confirmed */
	long long	bytes;
	long long	errors;			/* files that could not be removed (stay claimed) */
} PurgeResult;

/*
 * Claims, unlinks, fsyncs and confirms until a claim brings nothing new,
 * max_files at a time; then removes the emptied day directories (never
 * <root>/<camera> nor today's).  Stops between files once *interrupted is
 * set (NULL: never).  Returns a PURGE_* code.
 */
extern int	purge_camera(PGconn *conn, int rootfd, int camera, long max_files,
						 const volatile sig_atomic_t *interrupted,
						 PurgeReport report, void *arg, PurgeResult *result);

/* The directory (relative to the root, "" for the root) last opened. */
typedef struct DirCache
{
	int			rootfd;
	int			fd;
	int			dirty;			/* something was unlinked: fsync before moving on */
	char		dir[PATH_MAX];
} DirCache;

/*
 * Normalises an index path (empty and "." components dropped); -1 for one
 * that must not be joined to the root: absolute, with a ".." component,
 * naming a directory, or too long.
 */
extern int	storage_normalize_path(const char *in, char *out, size_t outsize);
/* Splits a normalised path in place: returns the file name; *dir becomes "" or the directory. */
extern const char *storage_split_path(char *path, const char **dir);
/* A segment file still being written ends so (tools/README.md, storage layout). */
#define STORAGE_PARTIAL_SUFFIX ".partial"
extern int	storage_is_partial(const char *name);
/* Opens a directory below the root without following a symbolic link (ELOOP). */
extern int	storage_open_dir(int rootfd, const char *dir);

extern void dircache_init(DirCache *dc, int rootfd);
extern int	dircache_get(DirCache *dc, const char *dir);
extern int	dircache_sync(DirCache *dc);
extern void dircache_close(DirCache *dc);

#endif							/* VMS_TOOLS_PURGE_H */
