/* test-dkim.c - DKIM canonicalization (RFC 6376 3.4.5 examples and more)
 * and signatures checked again with OpenSSL. */
#include "unit.h"

#include "dkim-key.h"
#include "dkim.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>

static void canon_header(const char *in, const char *want)
{
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	dkim_canon_header_relaxed(in, strlen(in), 1, &out);
	CHECK_STR(buf_cstr(&out), want);
	buf_free(&out);
}

static void canon_body(const char *in, const char *want)
{
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	dkim_canon_body_relaxed(in, strlen(in), &out);
	CHECK_STR(buf_cstr(&out), want);
	buf_free(&out);
}

UNIT_TEST(test_dkim_canon_header_rfc6376)
{
	/* RFC 6376 3.4.5 */
	canon_header("A: X\r\n", "a:X\r\n");
	canon_header("B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n");
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"Subject:   hello   world  \r\n", "subject:hello world\r\n"},
	    {"SUBJECT:x\r\n", "subject:x\r\n"},
	    {"From: \"A\"\r\n  <a@b>\r\n", "from:\"A\" <a@b>\r\n"},
	    {"X-Empty:\r\n", "x-empty:\r\n"},
	    {"X-Empty:   \r\n", "x-empty:\r\n"},
	    {"To:\ta@b,\r\n\tc@d\r\n", "to:a@b, c@d\r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		canon_header(cases[i].in, cases[i].want);
}

UNIT_TEST(test_dkim_canon_body_rfc6376)
{
	/* RFC 6376 3.4.5 */
	canon_body(" C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"", ""},
	    {"\r\n", ""},
	    {"\r\n\r\n", ""},
	    {"a", "a\r\n"},
	    {"a\r\n", "a\r\n"},
	    {"a\n\n", "a\r\n"}, /* bare LF counts as a line end */
	    {"a  \t\r\nb\r\n", "a\r\nb\r\n"},
	    {"\r\na\r\n", "\r\na\r\n"}, /* leading empty lines stay */
	    {"a\r\n \r\n", "a\r\n"},    /* a line of spaces is empty */
	    {"a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		canon_body(cases[i].in, cases[i].want);
}

static const char test_msg[] = "Received: from x by y; Tue, 24 Nov 2026 10:00:00 +0000\r\n"
                               "From: Alice <alice@example.com>\r\n"
                               "To: bob@example.net\r\n"
                               "Subject:  Hello\r\n\tthere\r\n"
                               "X-Not-Signed: 1\r\n"
                               "\r\n"
                               "Hi  Bob,\r\n"
                               "\r\n"
                               "Alice\r\n"
                               "\r\n";

/* Decodes base64 while skipping whitespace (b= may be folded). */
static size_t b64_decode(const char *s, unsigned char *out)
{
	char clean[4096];
	size_t n = 0, pad = 0;
	for (; *s != '\0' && n + 1 < sizeof(clean); s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			clean[n++] = *s;
	clean[n] = '\0';
	for (size_t i = n; i > 0 && clean[i - 1] == '='; i--)
		pad++;
	int len = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
	return len < 0 ? 0 : (size_t)len - pad;
}

/* Verifies sig (our DKIM-Signature field) over test_msg with OpenSSL:
 * the canonical signed header fields, then the signature field with its
 * b= value removed, no final CRLF. */
static bool verify(const char *alg, const char *pem, const char *sig)
{
	struct buf data;
	buf_init(&data, BUF_NO_LIMIT);
	const char *fields[] = {"From: Alice <alice@example.com>\r\n", "To: bob@example.net\r\n",
	                        "Subject:  Hello\r\n\tthere\r\n"};
	for (int i = 0; i < 3; i++)
		dkim_canon_header_relaxed(fields[i], strlen(fields[i]), 1, &data);
	const char *b = strstr(sig, "\tb=");
	if (b == NULL)
		return false;
	dkim_canon_header_relaxed(sig, (size_t)(b + 3 - sig), 0, &data);
	unsigned char raw[1024], digest[32];
	size_t rawlen = b64_decode(b + 3, raw);
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;
	if (strcmp(alg, "ed25519-sha256") == 0) {
		EVP_Digest(data.data, data.len, digest, NULL, EVP_sha256(), NULL);
		ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestVerify(ctx, raw, rawlen, digest, 32) == 1;
	} else {
		ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
		     EVP_DigestVerify(ctx, raw, rawlen, (unsigned char *)data.data, data.len) == 1;
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	buf_free(&data);
	return ok;
}

static void sign_and_verify(const char *alg)
{
	char *pem = NULL, *pub = NULL;
	const char *err;
	CHECK(dkim_key_generate(alg, &pem, &pub, &err) == 0);
	if (pem == NULL)
		return;
	struct dkim_signer s = {"example.com", "sel1", alg, pem, 1700000000};
	struct buf sig;
	buf_init(&sig, BUF_NO_LIMIT);
	CHECK(dkim_sign(&s, test_msg, strlen(test_msg), &sig, &err) == 0);
	const char *t = buf_cstr(&sig);
	CHECK(strncmp(t, "DKIM-Signature: v=1; a=", 23) == 0);
	CHECK(strstr(t, "c=relaxed/relaxed; d=example.com; s=sel1; t=1700000000;") != NULL);
	CHECK(strstr(t, "h=from:to:subject;") != NULL);
	/* bh = base64(sha256("Hi Bob,\r\n\r\nAlice\r\n")) */
	unsigned char md[32];
	struct buf bh;
	buf_init(&bh, 100);
	EVP_Digest("Hi Bob,\r\n\r\nAlice\r\n", 18, md, NULL, EVP_sha256(), NULL);
	dkim_base64_append(&bh, md, 32);
	CHECK(strstr(t, buf_cstr(&bh)) != NULL);
	CHECK(verify(alg, pem, t));
	/* A changed signed header must not verify. */
	char *bad = strdup(t);
	char *d = strstr(bad, "d=example.com");
	if (d != NULL)
		d[2] = 'E';
	CHECK(!verify(alg, pem, bad));
	free(bad);
	buf_free(&bh);
	buf_free(&sig);
	free(pem);
	free(pub);
}

UNIT_TEST(test_dkim_sign_rsa)
{
	sign_and_verify("rsa-sha256");
}

UNIT_TEST(test_dkim_sign_ed25519)
{
	sign_and_verify("ed25519-sha256");
}

UNIT_TEST(test_dkim_sign_errors)
{
	struct buf sig;
	const char *err;
	buf_init(&sig, BUF_NO_LIMIT);
	struct dkim_signer s = {"example.com", "sel", "rsa-sha256", "not a key", 0};
	CHECK(dkim_sign(&s, "\r\nbody\r\n", 8, &sig, &err) < 0);
	CHECK(dkim_sign(&s, "To: a@b\r\n\r\nx\r\n", 14, &sig, &err) < 0);
	CHECK_STR(err, "message has no From: field");
	CHECK(dkim_sign(&s, "From: a@b\r\n\r\nx\r\n", 16, &sig, &err) < 0);
	CHECK_STR(err, "DKIM key unusable");
	CHECK_INT(sig.len, 0);
	buf_free(&sig);
}

UNIT_TEST(test_dkim_key_txt)
{
	char *pem = NULL, *pub = NULL;
	const char *err;
	CHECK(dkim_key_generate("ed25519-sha256", &pem, &pub, &err) == 0);
	CHECK_INT(strlen(pub), 44); /* 32 bytes */
	struct buf t;
	buf_init(&t, BUF_NO_LIMIT);
	dkim_key_txt("ed25519-sha256", pub, &t);
	CHECK(strncmp(buf_cstr(&t), "v=DKIM1; k=ed25519; p=", 22) == 0);
	char *pem2 = NULL, *pub2 = NULL;
	CHECK(dkim_key_generate("dsa", &pem2, &pub2, &err) < 0);
	CHECK(pem2 == NULL && pub2 == NULL);
	buf_free(&t);
	free(pem);
	free(pub);
}
