/*-------------------------------------------------------------------------
 * facex.h
 *	  Face-recognition person data: embeddings and the encrypted search.
 *-------------------------------------------------------------------------
 */
#ifndef FACEX_H
#define FACEX_H

extern void facex_install_callbacks(void);

#endif							/* FACEX_H */
