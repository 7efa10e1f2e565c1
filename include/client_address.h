/*-------------------------------------------------------------------------
 * client_address.h
 *	  Per-role client address allow-lists, kept in shared memory so that the
 *	  authentication hook (which cannot read tables) can enforce them.
 *-------------------------------------------------------------------------
 */
#ifndef CLIENT_ADDRESS_H
#define CLIENT_ADDRESS_H

#include "postgres.h"
#include "libpq/libpq-be.h"

extern void client_address_define_settings(void);
extern void client_address_shmem_request(void);
extern void client_address_shmem_startup(void);
extern void client_address_install_callbacks(void);

/*
 * May this (authenticated) role connect from the port's address?  *rule_role
 * gets the name of the role whose list refused it.
 */
extern bool client_address_allowed(Port *port, Oid roleid, char *rule_role, Size size);

#endif							/* CLIENT_ADDRESS_H */
