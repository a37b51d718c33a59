#include "password.h"

#include "strnum.h"
#include "xalloc.h"

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void password_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		explicit_bzero(p, len);
}

int password_hash(const char *password, size_t len, char *out, size_t outlen, const char **error_r)
{
	unsigned char salt[PASSWORD_ARGON2_SALT_LEN];

	if (outlen < PASSWORD_HASH_SIZE) {
		*error_r = "hash buffer too small";
		return -1;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		*error_r = "no random bytes for the salt";
		return -1;
	}
	int ret = argon2id_hash_encoded(PASSWORD_ARGON2_T, PASSWORD_ARGON2_M_KIB, PASSWORD_ARGON2_P,
	                                password, len, salt, sizeof(salt), PASSWORD_ARGON2_HASH_LEN,
	                                out, outlen);
	if (ret != ARGON2_OK) {
		*error_r = argon2_error_message(ret);
		return -1;
	}
	return 0;
}

/* Reads "<key>=<digits>" at the start of *p (stopping at ',' or '$'). */
static int argon2_param(const char **p, char key, uint64_t *r)
{
	const char *s = *p;
	if (s[0] != key || s[1] != '=')
		return -1;
	s += 2;
	size_t n = strcspn(s, ",$");
	if (mem_to_u64(s, n, UINT32_MAX, r) < 0)
		return -1;
	*p = s + n + (s[n] == ',' ? 1 : 0);
	return 0;
}

/* Refuses argon2 hashes whose costs would let a stored hash exhaust us. */
static bool argon2_costs_ok(const char *encoded)
{
	const char *p = strstr(encoded, "$m=");
	uint64_t m, t;
	if (p == NULL)
		return false;
	p++;
	if (argon2_param(&p, 'm', &m) < 0 || argon2_param(&p, 't', &t) < 0)
		return false;
	return m <= PASSWORD_ARGON2_MAX_M_KIB && t <= PASSWORD_ARGON2_MAX_T;
}

static enum password_result verify_argon2(const char *password, size_t len, const char *hash)
{
	argon2_type type;
	if (strncmp(hash, "$argon2id$", 10) == 0)
		type = Argon2_id;
	else if (strncmp(hash, "$argon2i$", 9) == 0)
		type = Argon2_i;
	else if (strncmp(hash, "$argon2d$", 9) == 0)
		type = Argon2_d;
	else
		return PASSWORD_MALFORMED;
	if (!argon2_costs_ok(hash))
		return PASSWORD_MALFORMED;
	int ret = argon2_verify(hash, password, len, type);
	if (ret == ARGON2_OK)
		return PASSWORD_MATCH;
	return ret == ARGON2_VERIFY_MISMATCH ? PASSWORD_MISMATCH : PASSWORD_MALFORMED;
}

static enum password_result verify_crypt(const char *password, size_t len, const char *hash)
{
	/* crypt_r needs a C string: a password with a NUL inside cannot match. */
	if (memchr(password, '\0', len) != NULL)
		return PASSWORD_MISMATCH;
	char *pw = xmemdup0(password, len);
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	enum password_result res = PASSWORD_MALFORMED;

	const char *out = crypt_r(pw, hash, data);
	if (out != NULL && out[0] != '*') {
		size_t olen = strlen(out), hlen = strlen(hash);
		if (olen == hlen)
			res = CRYPTO_memcmp(out, hash, hlen) == 0 ? PASSWORD_MATCH
			                                          : PASSWORD_MISMATCH;
	}
	password_wipe(pw, len);
	free(pw);
	password_wipe(data, sizeof(*data));
	free(data);
	return res;
}

/* Drops a "{SCHEME}" prefix that says the same as the hash itself. */
static const char *strip_scheme(const char *hash)
{
	static const struct {
		const char *prefix;
		const char *body; /* what the rest must start with */
	} schemes[] = {
	    {"{ARGON2ID}", "$argon2id$"},
	    {"{ARGON2I}", "$argon2i$"},
	    {"{SHA512-CRYPT}", "$6$"},
	    {"{BLF-CRYPT}", "$2"},
	};
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);
		if (strncasecmp(hash, schemes[i].prefix, n) == 0)
			return strncmp(hash + n, schemes[i].body, strlen(schemes[i].body)) == 0
			           ? hash + n
			           : NULL;
	}
	return hash;
}

static bool is_bcrypt(const char *h)
{
	return h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') &&
	       h[3] == '$';
}

bool password_scheme_known(const char *hash)
{
	const char *h = strip_scheme(hash);
	return h != NULL &&
	       (strncmp(h, "$argon2", 7) == 0 || strncmp(h, "$6$", 3) == 0 || is_bcrypt(h));
}

enum password_result password_verify(const char *password, size_t len, const char *hash)
{
	const char *h = strip_scheme(hash);
	if (h == NULL)
		return PASSWORD_MALFORMED;
	if (strncmp(h, "$argon2", 7) == 0)
		return verify_argon2(password, len, h);
	if (strncmp(h, "$6$", 3) == 0 || is_bcrypt(h))
		return verify_crypt(password, len, h);
	return PASSWORD_MALFORMED;
}

static char dummy_hash[PASSWORD_HASH_SIZE];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

/* A hash with today's costs of a random password nobody knows. */
static void dummy_init(void)
{
	unsigned char pw[32];
	const char *error;
	if (RAND_bytes(pw, sizeof(pw)) != 1 ||
	    password_hash((const char *)pw, sizeof(pw), dummy_hash, sizeof(dummy_hash), &error) < 0)
		dummy_hash[0] = '\0';
	password_wipe(pw, sizeof(pw));
}

void password_verify_dummy(const char *password, size_t len)
{
	pthread_once(&dummy_once, dummy_init);
	if (dummy_hash[0] != '\0')
		(void)password_verify(password, len, dummy_hash);
}
