/* wa-db.c - one statement per borrowed connection, tokens and hashes. */
#include "webadmin-private.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

PGresult *wa_db_exec(struct webadmin *wa, const char *sql, int n, const char *const *params)
{
	PGconn *conn = db_pool_borrow(wa->pool, WA_BORROW_MS);
	if (conn == NULL)
		return NULL;
	PGresult *res = db_exec(conn, sql, n, params);
	db_pool_return(wa->pool, &conn);
	return res;
}

int64_t wa_db_int(const PGresult *res, int row, int col)
{
	if (res == NULL || row >= PQntuples(res) || PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void wa_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int wa_random_hex(char *out, size_t n)
{
	unsigned char raw[64];
	if (n > sizeof(raw) || RAND_bytes(raw, (int)n) != 1)
		return -1;
	wa_hex(raw, n, out);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

void wa_sha256_bytea(const char *s, char out[67])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
	out[0] = '\\';
	out[1] = 'x';
	wa_hex(md, sizeof(md), out + 2);
}
