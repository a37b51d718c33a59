#include "unit.h"

#include "sasl.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- base64 ---- */

static const struct {
	const char *raw, *b64;
} b64_vectors[] = {
    /* RFC 4648 section 10 */
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    {"Username:", "VXNlcm5hbWU6"},
    {"Password:", "UGFzc3dvcmQ6"},
    {"\xff\xfe\xfd", "//79"},
};

UNIT_TEST(sasl_base64_vectors)
{
	for (size_t i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
		char enc[64];
		unsigned char dec[64];
		size_t n = 99;
		sasl_base64_encode(b64_vectors[i].raw, strlen(b64_vectors[i].raw), enc);
		CHECK_STR(enc, b64_vectors[i].b64);
		CHECK(sasl_base64_decode(b64_vectors[i].b64, strlen(b64_vectors[i].b64), dec,
		                         sizeof(dec), &n) == 0);
		CHECK_INT(n, strlen(b64_vectors[i].raw));
		CHECK(memcmp(dec, b64_vectors[i].raw, n) == 0);
	}
}

static const char *const b64_bad[] = {
    "Zg",                                                  /* no padding */
    "Zg=",                                                 /* short padding */
    "Zm9",                                                 /* not a multiple of 4 */
    "Z===",                                                /* too much padding */
    "====", "Zg==Zg==",                                    /* padding in the middle */
    "Zh==",                                                /* non-zero bits hidden by the padding */
    "Zm9=", "Zm9v\r\n", "Zm 9v", " Zm9v", "Zm9v=", "Zm9-", /* URL-safe alphabet is not base64 */
    "Zm9_", "Zm9\x80",  "Zm\0v", "=Zm9",
};

UNIT_TEST(sasl_base64_strict)
{
	unsigned char out[64];
	size_t n;
	for (size_t i = 0; i < sizeof(b64_bad) / sizeof(b64_bad[0]); i++) {
		size_t len = strlen(b64_bad[i]);
		if (i == 15)
			len = 4; /* "Zm\0v" */
		if (sasl_base64_decode(b64_bad[i], len, out, sizeof(out), &n) != -1)
			unit_fail(__FILE__, __LINE__, "accepted bad base64 #%zu", i);
	}
	/* Output limit. */
	CHECK(sasl_base64_decode("Zm9vYmFy", 8, out, 5, &n) == -1);
	CHECK(sasl_base64_decode("Zm9vYmFy", 8, out, 6, &n) == 0);
}

UNIT_TEST(sasl_base64_roundtrip)
{
	unsigned char raw[300], dec[300];
	char enc[404];
	unsigned seed = 12345;
	for (size_t len = 0; len < sizeof(raw); len++) {
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			raw[i] = (unsigned char)(seed >> 16);
		}
		sasl_base64_encode(raw, len, enc);
		CHECK_INT(strlen(enc), 4 * ((len + 2) / 3));
		size_t n = 0;
		CHECK(sasl_base64_decode(enc, strlen(enc), dec, sizeof(dec), &n) == 0);
		CHECK_INT(n, len);
		CHECK(memcmp(raw, dec, len) == 0);
	}
}

/* ---- exchanges ---- */

static char *b64(const char *raw, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	sasl_base64_encode(raw, len, out);
	return out;
}

struct plain_case {
	const char *msg;
	size_t len;
	enum sasl_status status;
	const char *authzid, *authcid, *password;
};

#define M(s) s, sizeof(s) - 1

static const struct plain_case plain_cases[] = {
    {M("\0user@example.com\0secret"), SASL_DONE, "", "user@example.com", "secret"},
    {M("user@x\0user@x\0pw"), SASL_DONE, "user@x", "user@x", "pw"},
    {M("User@X\0user@x\0pw"), SASL_DONE, "User@X", "user@x", "pw"},
    {M("\0u\0p w \xc3\xa9"), SASL_DONE, "", "u", "p w \xc3\xa9"},
    {M("\0\xe7\x94\xa8@x\0pw"), SASL_DONE, "", "\xe7\x94\xa8@x", "pw"},
    {M("admin@x\0user@x\0pw"), SASL_ERROR, NULL, NULL, NULL},
    {M("user\0pw"), SASL_ERROR, NULL, NULL, NULL},
    {M("\0u\0p\0"), SASL_ERROR, NULL, NULL, NULL},
    {M("\0u\0p\0x"), SASL_ERROR, NULL, NULL, NULL},
    {M("\0\0pw"), SASL_ERROR, NULL, NULL, NULL},
    {M("\0u\0"), SASL_ERROR, NULL, NULL, NULL},
    {M("\0\0"), SASL_ERROR, NULL, NULL, NULL},
    {M("userpw"), SASL_ERROR, NULL, NULL, NULL},
    {M("\0u\0p\xc3"), SASL_ERROR, NULL, NULL, NULL},
    {M("\0u\xff\0p"), SASL_ERROR, NULL, NULL, NULL},
    {M("\xed\xa0\x80\0u\0p"), SASL_ERROR, NULL, NULL, NULL},
};

static void check_plain(const struct plain_case *c, size_t i, enum sasl_status st,
                        const struct sasl *s)
{
	if (st != c->status) {
		unit_fail(__FILE__, __LINE__, "plain case %zu: status %d, expected %d", i, (int)st,
		          (int)c->status);
		return;
	}
	if (st == SASL_DONE) {
		CHECK_STR(s->authzid, c->authzid);
		CHECK_STR(s->authcid, c->authcid);
		CHECK_STR(s->password, c->password);
		CHECK_INT(s->password_len, strlen(c->password));
	} else {
		CHECK_STR(s->password, "");
		CHECK_STR(s->authcid, "");
	}
}

UNIT_TEST(sasl_plain_table)
{
	for (size_t i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
		const struct plain_case *c = &plain_cases[i];
		char *resp = b64(c->msg, c->len);
		struct sasl s;
		const char *err = NULL;

		/* As an initial response... */
		enum sasl_status st = sasl_start(&s, SASL_MECH_PLAIN, resp, &err);
		check_plain(c, i, st, &s);
		if (st == SASL_ERROR)
			CHECK(err != NULL);
		sasl_wipe(&s);

		/* ...and after an empty challenge. */
		st = sasl_start(&s, SASL_MECH_PLAIN, NULL, &err);
		CHECK_INT(st, SASL_CONTINUE);
		CHECK_STR(sasl_challenge(&s), "");
		st = sasl_step(&s, resp, strlen(resp), &err);
		check_plain(c, i, st, &s);
		sasl_wipe(&s);
		free(resp);
	}
}

UNIT_TEST(sasl_plain_field_limits)
{
	char msg[3 * 256 + 2];
	struct sasl s;
	const char *err;

	/* authzid, authcid and password of 255 octets each: accepted. */
	memset(msg, 'a', sizeof(msg));
	msg[255] = '\0';
	msg[511] = '\0';
	char *resp = b64(msg, 3 * 255 + 2);
	CHECK(strlen(resp) <= SASL_RESPONSE_MAX);
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, resp, &err), SASL_DONE);
	CHECK_INT(s.password_len, 255);
	CHECK_INT(strlen(s.authcid), 255);
	free(resp);

	/* Password of 256: refused. */
	memset(msg, 'a', sizeof(msg));
	msg[0] = '\0';
	msg[2] = '\0';
	resp = b64(msg, 3 + 256);
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, resp, &err), SASL_ERROR);
	free(resp);
	/* authcid of 256: refused. */
	msg[0] = '\0';
	msg[257] = '\0';
	resp = b64(msg, 258 + 2);
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, resp, &err), SASL_ERROR);
	free(resp);

	/* A response longer than any valid one is refused before decoding. */
	char *big = malloc(SASL_RESPONSE_MAX + 5);
	memset(big, 'A', SASL_RESPONSE_MAX + 4);
	big[SASL_RESPONSE_MAX + 4] = '\0';
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, big, &err), SASL_ERROR);
	CHECK_STR(err, "response too long");
	free(big);
}

UNIT_TEST(sasl_plain_malformed_responses)
{
	static const char *const bad[] = {
	    "=", "", "AHUAcA", "AHUAcA=", "AHU AcA==", "AHUAcA==\r", "AHUAcA==AA==", "!!!!"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sasl s;
		const char *err = NULL;
		CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, NULL, &err), SASL_CONTINUE);
		if (sasl_step(&s, bad[i], strlen(bad[i]), &err) != SASL_ERROR)
			unit_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
		/* Once failed, the exchange is over. */
		CHECK_INT(sasl_step(&s, "AHUAcA==", 8, &err), SASL_ERROR);
	}
	/* "AHUAcA==" is "\0u\0p": the reference that the above differ from. */
	struct sasl s;
	const char *err;
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, "AHUAcA==", &err), SASL_DONE);
	CHECK_STR(s.authcid, "u");
	/* No more steps after DONE. */
	CHECK_INT(sasl_step(&s, "AHUAcA==", 8, &err), SASL_ERROR);
	CHECK_STR(s.password, "");
}

/* Every prefix of a valid response, in an exact-length buffer: no read past
 * the end, and nothing but the full response yields the full password. */
UNIT_TEST(sasl_plain_prefixes)
{
	const char raw[] = "\0someone@example.org\0a long password";
	char *resp = b64(raw, sizeof(raw) - 1);
	size_t len = strlen(resp);
	for (size_t n = 0; n <= len; n++) {
		struct sasl s;
		const char *err;
		char *p = malloc(n == 0 ? 1 : n);
		memcpy(p, resp, n);
		CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, NULL, &err), SASL_CONTINUE);
		enum sasl_status st = sasl_step(&s, p, n, &err);
		if (n == len) {
			CHECK_INT(st, SASL_DONE);
			CHECK_STR(s.password, "a long password");
		} else if (st == SASL_DONE) {
			/* A whole number of base64 groups can be a shorter valid
			 * message: then the password is a prefix of the real one. */
			CHECK(n % 4 == 0);
			CHECK(strncmp(s.password, "a long password", s.password_len) == 0);
			CHECK(s.password_len < 15);
		} else if (st != SASL_ERROR)
			unit_fail(__FILE__, __LINE__, "prefix of %zu bytes: %d", n, (int)st);
		sasl_wipe(&s);
		free(p);
	}
	free(resp);
}

UNIT_TEST(sasl_cancel)
{
	struct sasl s;
	const char *err;
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, NULL, &err), SASL_CONTINUE);
	CHECK_INT(sasl_step(&s, "*", 1, &err), SASL_CANCELLED);
	CHECK_INT(sasl_start(&s, SASL_MECH_LOGIN, NULL, &err), SASL_CONTINUE);
	CHECK_INT(sasl_step(&s, "dXNlcg==", 8, &err), SASL_CONTINUE);
	CHECK_INT(sasl_step(&s, "*", 1, &err), SASL_CANCELLED);
	CHECK_STR(s.authcid, "");
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, "*", &err), SASL_CANCELLED);
	/* "**" is not a cancel, just bad base64. */
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, NULL, &err), SASL_CONTINUE);
	CHECK_INT(sasl_step(&s, "**", 2, &err), SASL_ERROR);
}

struct login_case {
	const char *initial;     /* NULL: none */
	const char *steps[3];    /* responses, NULL-terminated */
	enum sasl_status status; /* after the last one */
	const char *user, *password;
};

static const struct login_case login_cases[] = {
    /* "user@x" = dXNlckB4, "secret" = c2VjcmV0 */
    {NULL, {"dXNlckB4", "c2VjcmV0", NULL}, SASL_DONE, "user@x", "secret"},
    {"dXNlckB4", {"c2VjcmV0", NULL}, SASL_DONE, "user@x", "secret"},
    {NULL, {"=", NULL}, SASL_ERROR, NULL, NULL},
    {NULL, {"dXNlckB4", "=", NULL}, SASL_ERROR, NULL, NULL},
    {NULL, {"dXNlckB4", "", NULL}, SASL_ERROR, NULL, NULL},
    {NULL, {"dXNlckB4", "c2VjcmV0=", NULL}, SASL_ERROR, NULL, NULL},
    /* "u\0x" = dQB4: NUL inside the user name */
    {NULL, {"dQB4", NULL}, SASL_ERROR, NULL, NULL},
    /* "\xff" = /w== : not UTF-8 */
    {NULL, {"dXNlckB4", "/w==", NULL}, SASL_ERROR, NULL, NULL},
    {"=", {NULL}, SASL_ERROR, NULL, NULL},
};

UNIT_TEST(sasl_login_table)
{
	for (size_t i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]); i++) {
		const struct login_case *c = &login_cases[i];
		struct sasl s;
		const char *err = NULL;
		enum sasl_status st = sasl_start(&s, SASL_MECH_LOGIN, c->initial, &err);
		if (c->initial == NULL) {
			CHECK_INT(st, SASL_CONTINUE);
			CHECK_STR(sasl_challenge(&s), "VXNlcm5hbWU6");
		}
		for (size_t k = 0; c->steps[k] != NULL && st == SASL_CONTINUE; k++) {
			st = sasl_step(&s, c->steps[k], strlen(c->steps[k]), &err);
			if (st == SASL_CONTINUE)
				CHECK_STR(sasl_challenge(&s), "UGFzc3dvcmQ6");
		}
		if (st != c->status) {
			unit_fail(__FILE__, __LINE__, "login case %zu: %d, expected %d", i, (int)st,
			          (int)c->status);
			continue;
		}
		if (st == SASL_DONE) {
			CHECK_STR(s.authcid, c->user);
			CHECK_STR(s.password, c->password);
			CHECK_STR(s.authzid, "");
		}
		sasl_wipe(&s);
	}
}

UNIT_TEST(sasl_mechanism_names)
{
	enum sasl_mech m;
	CHECK(sasl_mech_parse("plain", &m) == 0 && m == SASL_MECH_PLAIN);
	CHECK(sasl_mech_parse("LOGIN", &m) == 0 && m == SASL_MECH_LOGIN);
	CHECK(sasl_mech_parse("CRAM-MD5", &m) == -1);
	CHECK(sasl_mech_parse("", &m) == -1);
	CHECK(sasl_mech_parse("PLAINX", &m) == -1);
	CHECK_STR(sasl_mech_name(SASL_MECH_PLAIN), "PLAIN");
	CHECK_STR(sasl_mechanisms(), "PLAIN LOGIN");
}

UNIT_TEST(sasl_wipe_clears)
{
	struct sasl s;
	const char *err;
	CHECK_INT(sasl_start(&s, SASL_MECH_PLAIN, "AHUAcA==", &err), SASL_DONE);
	sasl_wipe(&s);
	const unsigned char *p = (const unsigned char *)&s;
	size_t nonzero = 0;
	for (size_t i = 0; i < sizeof(s); i++)
		nonzero += p[i] != 0;
	CHECK_INT(nonzero, 0);
}
