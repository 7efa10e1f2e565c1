/*-------------------------------------------------------------------------
 * retention.h
 *	  Settings of the retention policy (the SQL side does the work).
 *-------------------------------------------------------------------------
 */
#ifndef RETENTION_H
#define RETENTION_H

extern void retention_define_settings(void);

#endif							/* RETENTION_H */
