/* password.h - password hashing and verification.
 *
 * New passwords are hashed with argon2id (libargon2) using the OWASP
 * Password Storage Cheat Sheet's first recommendation: m = 19456 KiB
 * (19 MiB), t = 2 iterations, p = 1 lane, a 16-byte random salt and a
 * 32-byte hash, in the standard encoded form "$argon2id$v=19$m=...".
 *
 * Verification accepts, so that accounts can be imported from other servers:
 *   $argon2id$... $argon2i$... $argon2d$...      (also prefixed {ARGON2ID} / {ARGON2I})
 *   $6$...   and {SHA512-CRYPT}$6$...            (SHA-512 crypt, via libcrypt)
 *   $2b$ $2y$ $2a$... and {BLF-CRYPT}$2y$...     (bcrypt, via libxcrypt)
 * Crypt output is compared in constant time (CRYPTO_memcmp); argon2's own
 * verify is constant-time too. Anything else is "malformed" and never
 * matches (plain-text or unsalted schemes are not accepted). Argon2 hashes
 * asking for more than PASSWORD_ARGON2_MAX_M_KIB of memory or
 * PASSWORD_ARGON2_MAX_T passes are refused as malformed, so that a hostile
 * hash cannot exhaust the server.
 *
 * Callers wipe their own copies of passwords with password_wipe(); these
 * functions wipe every copy they make. Thread-safe. */
#ifndef ROOST_PASSWORD_H
#define ROOST_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWORD_ARGON2_T         2
#define PASSWORD_ARGON2_M_KIB     19456
#define PASSWORD_ARGON2_P         1
#define PASSWORD_ARGON2_SALT_LEN  16
#define PASSWORD_ARGON2_HASH_LEN  32
#define PASSWORD_ARGON2_MAX_M_KIB 1048576u /* 1 GiB */
#define PASSWORD_ARGON2_MAX_T     64
/* Room for any hash password_hash() writes, with its NUL. */
#define PASSWORD_HASH_SIZE 128

enum password_result {
	PASSWORD_MISMATCH = 0,
	PASSWORD_MATCH = 1,
	PASSWORD_MALFORMED = -1, /* unknown scheme or broken hash: treat as mismatch */
};

/* Hashes len bytes of password with argon2id into out (outlen >=
 * PASSWORD_HASH_SIZE). -1 with a static message in *error_r on failure
 * (no randomness, out too small). */
int password_hash(const char *password, size_t len, char *out, size_t outlen, const char **error_r);

/* Checks len bytes of password against a stored hash (NUL-terminated, any
 * accepted scheme). */
enum password_result password_verify(const char *password, size_t len, const char *hash);

/* Does the work of verifying against an argon2id hash with the default
 * costs and discards the result: called when the user does not exist, so
 * that the time taken does not tell whether it does. */
void password_verify_dummy(const char *password, size_t len);

/* True if hash uses a scheme password_verify() understands (by prefix only). */
bool password_scheme_known(const char *hash);

/* explicit_bzero: memory the compiler will not skip clearing. */
void password_wipe(void *p, size_t len);

#endif
