/*-------------------------------------------------------------------------
 * crypto.h
 *	  AES-256-GCM through OpenSSL EVP: data keys wrapped by the master key,
 *	  and values encrypted by data keys.
 *-------------------------------------------------------------------------
 */
#ifndef CRYPTO_H
#define CRYPTO_H

#define GCM_NONCE_LEN	12
#define GCM_TAG_LEN		16
#define DATA_KEY_LEN	32
#define VALUE_HEADER	9		/* format byte + data key id */

extern void gcm_encrypt(const uint8 *key, const uint8 *aad, size_t aadlen,
						const uint8 *plain, size_t plainlen, uint8 *out);
extern void unwrap_data_key(int64 id, const char *purpose, bool has_subject, int64 subject,
							int32 version, bytea *wrapped, uint8 *key);
extern bool gcm_decrypt_with(void *evp_ctx, const uint8 *key, const uint8 *aad, size_t aadlen,
							 const uint8 *in, size_t inlen, uint8 *plain);
extern void crypto_fetch_data_key(int64 id, uint8 *key);
extern bool gcm_decrypt(const uint8 *key, const uint8 *aad, size_t aadlen,
						const uint8 *in, size_t inlen, uint8 *plain);

#endif							/* CRYPTO_H */
