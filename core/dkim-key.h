/* dkim-key.h - DKIM signing keys: generation and the public half as it is
 * published in DNS. Pure crypto (OpenSSL), no storage: db/queue.h keeps the
 * keys per domain, smtp/dkim.h signs with them.
 *
 * Algorithms are named as in the DKIM a= tag: "rsa-sha256" (RSA-2048) and
 * "ed25519-sha256" (RFC 8463). */
#ifndef ROOST_DKIM_KEY_H
#define ROOST_DKIM_KEY_H

#include "buf.h"

#include <stdbool.h>

#define DKIM_KEY_DEFAULT_ALGORITHM "rsa-sha256"
#define DKIM_KEY_RSA_BITS          2048

/* Is algorithm one of the two above? */
bool dkim_key_algorithm_valid(const char *algorithm);

/* A new key pair. *private_pem_r: PKCS#8 PEM; *public_b64_r: the p= value
 * (base64 SubjectPublicKeyInfo for RSA, base64 of the raw 32-byte key for
 * Ed25519). Both malloc'd; the caller wipes and frees the private key.
 * -1 with a static message in *error_r. */
int dkim_key_generate(const char *algorithm, char **private_pem_r, char **public_b64_r,
                      const char **error_r);

/* Appends the TXT record text "v=DKIM1; k=rsa; p=..." for the key. */
void dkim_key_txt(const char *algorithm, const char *public_b64, struct buf *out);

/* Appends the base64 encoding of n bytes (no line breaks). */
void dkim_base64_append(struct buf *out, const unsigned char *p, size_t n);

#endif
