/* dkim-key.c - DKIM key generation (OpenSSL 3 EVP). */
#include "dkim-key.h"

#include "xalloc.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

bool dkim_key_algorithm_valid(const char *algorithm)
{
	return strcmp(algorithm, "rsa-sha256") == 0 || strcmp(algorithm, "ed25519-sha256") == 0;
}

void dkim_base64_append(struct buf *out, const unsigned char *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf_append_char(out, tab[(v >> 18) & 63]);
		buf_append_char(out, tab[(v >> 12) & 63]);
		buf_append_char(out, i + 1 < n ? tab[(v >> 6) & 63] : '=');
		buf_append_char(out, i + 2 < n ? tab[v & 63] : '=');
	}
}

static EVP_PKEY *dkim_key_new_pkey(const char *algorithm)
{
	if (strcmp(algorithm, "ed25519-sha256") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_KEY_RSA_BITS);
}

/* The p= bytes: raw key for Ed25519 (RFC 8463 4.2), DER SPKI for RSA. */
static int dkim_key_public_b64(EVP_PKEY *pkey, bool ed25519, struct buf *out)
{
	unsigned char raw[64];
	if (ed25519) {
		size_t n = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &n) != 1)
			return -1;
		dkim_base64_append(out, raw, n);
		return 0;
	}
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pkey, &der);
	if (n <= 0)
		return -1;
	dkim_base64_append(out, der, (size_t)n);
	OPENSSL_free(der);
	return 0;
}

static char *dkim_key_private_pem(EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	if (bio != NULL && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);
		if (n > 0)
			pem = xmemdup0(p, (size_t)n);
	}
	BIO_free_all(bio);
	return pem;
}

int dkim_key_generate(const char *algorithm, char **private_pem_r, char **public_b64_r,
                      const char **error_r)
{
	if (!dkim_key_algorithm_valid(algorithm)) {
		*error_r = "unknown DKIM algorithm";
		return -1;
	}
	EVP_PKEY *pkey = dkim_key_new_pkey(algorithm);
	if (pkey == NULL) {
		*error_r = "DKIM key generation failed";
		return -1;
	}
	struct buf pub;
	buf_init(&pub, BUF_NO_LIMIT);
	char *pem = dkim_key_private_pem(pkey);
	int ret = dkim_key_public_b64(pkey, algorithm[0] == 'e', &pub);
	EVP_PKEY_free(pkey);
	if (pem == NULL || ret < 0) {
		free(pem);
		buf_free(&pub);
		*error_r = "DKIM key encoding failed";
		return -1;
	}
	*private_pem_r = pem;
	*public_b64_r = buf_steal(&pub, NULL);
	return 0;
}

void dkim_key_txt(const char *algorithm, const char *public_b64, struct buf *out)
{
	buf_printf(out, "v=DKIM1; k=%s; p=%s",
	           strcmp(algorithm, "ed25519-sha256") == 0 ? "ed25519" : "rsa", public_b64);
}
