/*-------------------------------------------------------------------------
 * log_filter.h
 *	  Hiding statements that pass passwords to pg_vms from the server log.
 *-------------------------------------------------------------------------
 */
#ifndef LOG_FILTER_H
#define LOG_FILTER_H

extern void log_filter_install_hook(void);

#endif							/* LOG_FILTER_H */
