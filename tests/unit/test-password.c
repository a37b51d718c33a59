#include "unit.h"

#include "password.h"

/* Vectors made when this test was written:
 *   openssl passwd -6 -salt saltsalt 'correct horse'
 *   python3 -c "import crypt; print(crypt.crypt('pässwörd', '\$6\$abcdefgh'))"
 *   python3 -c "import crypt; print(crypt.crypt('correct horse',
 *               crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"
 *   argon2i/argon2id_hash_encoded(t=2, m=1024, p=1, "correct horse", "somesaltsalt")
 */
#define SHA512_HORSE                                                                               \
	"$6$saltsalt$"                                                                             \
	"hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/uamSo5z0"
#define SHA512_UTF8                                                                                \
	"$6$abcdefgh$qlUjQo8xiC5dmwOr49rtm.DQdv9onQYoWr0dgDR2SqMkw1296.hIZnRd/"                    \
	"ltg71cpfDQGxCw0Bli1kXypCoIxg0"
#define BCRYPT_HORSE "$2b$04$8KpjEDuihYRRnf7c.lyhhu9xXfQ9vt13EagfV3QCdXJYvHE1Diqsq"
#define ARGON2I_HORSE                                                                              \
	"$argon2i$v=19$m=1024,t=2,p=1$c29tZXNhbHRzYWx0$4naEg9BCUSxZn3tM5R4/"                       \
	"WRivnflDbBf9ssLdeYmcS8A"
#define ARGON2ID_HORSE                                                                             \
	"$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHRzYWx0$5YHT8ZDhBeqdbLaIKKPWaHOVfqCkLDnJo/"        \
	"WC5yMJsmg"

struct verify_case {
	const char *password;
	const char *hash;
	enum password_result expected;
};

static const struct verify_case verify_cases[] = {
    {"correct horse", SHA512_HORSE, PASSWORD_MATCH},
    {"correct horse", "{SHA512-CRYPT}" SHA512_HORSE, PASSWORD_MATCH},
    {"correct horse", "{sha512-crypt}" SHA512_HORSE, PASSWORD_MATCH},
    {"correct horsf", SHA512_HORSE, PASSWORD_MISMATCH},
    {"", SHA512_HORSE, PASSWORD_MISMATCH},
    {"p\xc3\xa4ssw\xc3\xb6rd", SHA512_UTF8, PASSWORD_MATCH},
    {"passwoerd", SHA512_UTF8, PASSWORD_MISMATCH},
    {"correct horse", BCRYPT_HORSE, PASSWORD_MATCH},
    {"correct horse", "{BLF-CRYPT}" BCRYPT_HORSE, PASSWORD_MATCH},
    {"Correct horse", BCRYPT_HORSE, PASSWORD_MISMATCH},
    {"correct horse", ARGON2I_HORSE, PASSWORD_MATCH},
    {"correct horse", "{ARGON2I}" ARGON2I_HORSE, PASSWORD_MATCH},
    {"correct horse", ARGON2ID_HORSE, PASSWORD_MATCH},
    {"correct horse", "{ARGON2ID}" ARGON2ID_HORSE, PASSWORD_MATCH},
    {"correct horse ", ARGON2ID_HORSE, PASSWORD_MISMATCH},
    {"wrong", ARGON2I_HORSE, PASSWORD_MISMATCH},
    /* malformed or refused */
    {"correct horse", "", PASSWORD_MALFORMED},
    {"correct horse", "correct horse", PASSWORD_MALFORMED},
    {"correct horse", "{PLAIN}correct horse", PASSWORD_MALFORMED},
    {"correct horse", "{MD5}abc", PASSWORD_MALFORMED},
    {"correct horse", "$1$saltsalt$abcdefghijklmnopqrstuv", PASSWORD_MALFORMED},
    {"correct horse", "{SHA512-CRYPT}" BCRYPT_HORSE, PASSWORD_MALFORMED},
    {"correct horse", "{ARGON2ID}" ARGON2I_HORSE, PASSWORD_MALFORMED},
    {"correct horse", "$6$", PASSWORD_MALFORMED},
    {"correct horse", "$2b$04$short", PASSWORD_MALFORMED},
    {"correct horse", "$2b$99$8KpjEDuihYRRnf7c.lyhhu9xXfQ9vt13EagfV3QCdXJYvHE1Diqsq",
     PASSWORD_MALFORMED},
    {"correct horse", "$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHRzYWx0", PASSWORD_MALFORMED},
    {"correct horse",
     "$argon2id$v=19$m=1024,t=2,p=1$!!!!$5YHT8ZDhBeqdbLaIKKPWaHOVfqCkLDnJo/WC5yMJsmg",
     PASSWORD_MALFORMED},
    {"correct horse",
     "$argon2id$v=19$m=x,t=2,p=1$c29tZXNhbHRzYWx0$5YHT8ZDhBeqdbLaIKKPWaHOVfqCkLDnJo/WC5yMJsmg",
     PASSWORD_MALFORMED},
    /* Costs past the cap are refused without running them (4 GiB here). */
    {"",
     "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzYWx0$"
     "of8Oyhfx5VtrdX6FN3QIktkW8Ode2CJX9IKRX54zSsY",
     PASSWORD_MALFORMED},
    {"x",
     "$argon2id$v=19$m=1024,t=1000,p=1$c29tZXNhbHRzYWx0$5YHT8ZDhBeqdbLaIKKPWaHOVfqCkLDnJo/"
     "WC5yMJsmg",
     PASSWORD_MALFORMED},
};

UNIT_TEST(password_verify_table)
{
	for (size_t i = 0; i < sizeof(verify_cases) / sizeof(verify_cases[0]); i++) {
		const struct verify_case *c = &verify_cases[i];
		enum password_result r = password_verify(c->password, strlen(c->password), c->hash);
		if (r != c->expected)
			unit_fail(__FILE__, __LINE__, "case %zu (%s): %d, expected %d", i, c->hash,
			          (int)r, (int)c->expected);
	}
}

UNIT_TEST(password_embedded_nul)
{
	/* "correct horse\0x" is not "correct horse" for crypt schemes... */
	CHECK_INT(password_verify("correct horse\0x", 15, SHA512_HORSE), PASSWORD_MISMATCH);
	CHECK_INT(password_verify("correct horse\0x", 15, BCRYPT_HORSE), PASSWORD_MISMATCH);
	/* ...nor for argon2, which hashes every byte. */
	CHECK_INT(password_verify("correct horse\0x", 15, ARGON2ID_HORSE), PASSWORD_MISMATCH);
	/* Length decides, not the NUL. */
	CHECK_INT(password_verify("correct horsefoo", 13, ARGON2ID_HORSE), PASSWORD_MATCH);
	CHECK_INT(password_verify("correct horsefoo", 13, SHA512_HORSE), PASSWORD_MATCH);
}

UNIT_TEST(password_hash_roundtrip)
{
	char hash[PASSWORD_HASH_SIZE], hash2[PASSWORD_HASH_SIZE];
	const char *err = NULL;

	CHECK(password_hash("s3cret pass", 11, hash, sizeof(hash), &err) == 0);
	CHECK(strncmp(hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	CHECK(strlen(hash) < PASSWORD_HASH_SIZE);
	CHECK_INT(password_verify("s3cret pass", 11, hash), PASSWORD_MATCH);
	CHECK_INT(password_verify("s3cret pasS", 11, hash), PASSWORD_MISMATCH);
	CHECK_INT(password_verify("s3cret pas", 10, hash), PASSWORD_MISMATCH);
	/* Salted: the same password never hashes the same twice. */
	CHECK(password_hash("s3cret pass", 11, hash2, sizeof(hash2), &err) == 0);
	CHECK(strcmp(hash, hash2) != 0);
	CHECK_INT(password_verify("s3cret pass", 11, hash2), PASSWORD_MATCH);
	/* The longest password the directory accepts. */
	char longpw[256];
	memset(longpw, 'p', 255);
	longpw[255] = '\0';
	CHECK(password_hash(longpw, 255, hash, sizeof(hash), &err) == 0);
	CHECK_INT(password_verify(longpw, 255, hash), PASSWORD_MATCH);
	CHECK_INT(password_verify(longpw, 254, hash), PASSWORD_MISMATCH);
	/* Too small an output buffer. */
	CHECK(password_hash("x", 1, hash, 16, &err) == -1);
	CHECK(err != NULL);
}

UNIT_TEST(password_schemes)
{
	CHECK(password_scheme_known(SHA512_HORSE));
	CHECK(password_scheme_known(BCRYPT_HORSE));
	CHECK(password_scheme_known("$2y$10$abc"));
	CHECK(password_scheme_known(ARGON2ID_HORSE));
	CHECK(password_scheme_known("{ARGON2ID}" ARGON2ID_HORSE));
	CHECK(!password_scheme_known("{PLAIN}x"));
	CHECK(!password_scheme_known("$1$abc$def"));
	CHECK(!password_scheme_known(""));
}

UNIT_TEST(password_dummy_and_wipe)
{
	/* Runs a full verification and must not crash or leak; twice, to use
	 * the hash made once. */
	password_verify_dummy("anything", 8);
	password_verify_dummy("", 0);
	char secret[16] = "hunter2hunter2!";
	password_wipe(secret, sizeof(secret));
	for (size_t i = 0; i < sizeof(secret); i++)
		CHECK_INT(secret[i], 0);
	password_wipe(NULL, 0);
}
