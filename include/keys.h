/*-------------------------------------------------------------------------
 * keys.h
 *	  The master key: where it comes from, where it is kept, and rotation.
 *-------------------------------------------------------------------------
 */
#ifndef KEYS_H
#define KEYS_H

#define MASTER_KEY_LEN 32

extern char *vms_key_file;
extern char *vms_key_command;

extern void keys_define_settings(void);
extern void keys_shmem_request(void);
extern void keys_shmem_startup(void);

/* Raise a clear error unless a master key is loaded. */
extern void keys_require(void);
extern int32 keys_current_version(void);
/* Copy the key of a version into out; false if that version is not loaded. */
extern bool keys_get(int32 version, uint8 *out);
/* Load a version from the key source into the store (rotation). */
extern void keys_load_version(int32 version);
/* Load a version into the store unless it is there already. */
extern void keys_ensure_version(int32 version);
/* Make a loaded version current, and record it for the next start. */
extern void keys_set_current(int32 version);

#endif							/* KEYS_H */
