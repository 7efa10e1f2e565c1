/*-------------------------------------------------------------------------
 * audit_chain.h
 *	  The canonical encoding of an audit entry and its SHA-256 chain hash.
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_CHAIN_H
#define AUDIT_CHAIN_H

#define AUDIT_HASH_LEN 32

extern void audit_chain_install_callbacks(void);

#endif							/* AUDIT_CHAIN_H */
