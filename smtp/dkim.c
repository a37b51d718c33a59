/* dkim.c - DKIM signing (dkim.h). */
#include "dkim.h"

#include "dkim-key.h"
#include "xalloc.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool dkim_wsp(char c)
{
	return c == ' ' || c == '\t';
}

void dkim_canon_header_relaxed(const char *field, size_t len, int crlf, struct buf *out)
{
	const char *colon = memchr(field, ':', len);
	size_t nlen = colon != NULL ? (size_t)(colon - field) : len;
	while (nlen > 0 && dkim_wsp(field[nlen - 1]))
		nlen--;
	for (size_t i = 0; i < nlen; i++) {
		char c = field[i];
		buf_append_char(out, c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
	}
	buf_append_char(out, ':');
	size_t i = colon != NULL ? (size_t)(colon - field) + 1 : len;
	bool space = false, started = false;
	for (; i < len; i++) {
		char c = field[i];
		if (c == '\r' || c == '\n' || dkim_wsp(c)) {
			space = started;
			continue;
		}
		if (space)
			buf_append_char(out, ' ');
		space = false;
		started = true;
		buf_append_char(out, c);
	}
	if (crlf)
		buf_append(out, "\r\n", 2);
}

/* One body line (without its line end) in relaxed form, plus CRLF. */
static void dkim_canon_line(const char *p, size_t n, struct buf *out)
{
	while (n > 0 && (dkim_wsp(p[n - 1]) || p[n - 1] == '\r'))
		n--;
	bool space = false;
	for (size_t i = 0; i < n; i++) {
		if (dkim_wsp(p[i])) {
			space = true;
			continue;
		}
		if (space)
			buf_append_char(out, ' ');
		space = false;
		buf_append_char(out, p[i]);
	}
	buf_append(out, "\r\n", 2);
}

void dkim_canon_body_relaxed(const char *body, size_t len, struct buf *out)
{
	size_t keep = out->len, i = 0;
	while (i < len) {
		const char *nl = memchr(body + i, '\n', len - i);
		size_t n = nl != NULL ? (size_t)(nl - (body + i)) : len - i;
		size_t before = out->len;
		dkim_canon_line(body + i, n, out);
		/* Empty lines at the end of the body are dropped: keep marks
		 * the end of the last non-empty line. */
		if (out->len - before > 2)
			keep = out->len;
		i += n + (nl != NULL ? 1 : 0);
	}
	buf_truncate(out, keep);
}

/* One header field of the message: [start, end) including its line end. */
struct dkim_field {
	size_t start, end, namelen;
};

/* Splits the header into fields; *body_r: offset of the body. -1 if there
 * is no header field at all. */
static int dkim_split_header(const char *msg, size_t len, struct dkim_field **f_r, size_t *n_r,
                             size_t *body_r)
{
	struct dkim_field *f = NULL;
	size_t n = 0, i = 0;
	*body_r = len;
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t next = nl != NULL ? (size_t)(nl - msg) + 1 : len;
		size_t linelen = next - i;
		if (linelen <= 2 && (msg[i] == '\n' || (msg[i] == '\r' && linelen == 2))) {
			*body_r = next;
			break;
		}
		if (dkim_wsp(msg[i]) && n > 0) {
			f[n - 1].end = next;
		} else {
			const char *colon = memchr(msg + i, ':', linelen);
			f = xreallocarray(f, n + 1, sizeof(*f));
			f[n].start = i;
			f[n].end = next;
			f[n].namelen = colon != NULL ? (size_t)(colon - (msg + i)) : 0;
			while (f[n].namelen > 0 && dkim_wsp(msg[i + f[n].namelen - 1]))
				f[n].namelen--;
			n++;
		}
		i = next;
	}
	*f_r = f;
	*n_r = n;
	return n > 0 ? 0 : -1;
}

/* Canonical signed fields into data, the h= list into hlist; instances of
 * a name are signed bottom-up (RFC 6376 5.4.2). */
static bool dkim_add_headers(const char *msg, const struct dkim_field *f, size_t n,
                             struct buf *data, struct buf *hlist)
{
	const char *names = DKIM_SIGNED_HEADERS;
	bool from = false;
	while (*names != '\0') {
		size_t nl = strcspn(names, ":");
		for (size_t k = n; k-- > 0;) {
			if (f[k].namelen != nl || strncasecmp(msg + f[k].start, names, nl) != 0)
				continue;
			dkim_canon_header_relaxed(msg + f[k].start, f[k].end - f[k].start, 1, data);
			buf_printf(hlist, "%s%.*s", hlist->len > 0 ? ":" : "", (int)nl, names);
			from = from || nl == 4;
		}
		names += nl + (names[nl] == ':');
	}
	return from;
}

static EVP_PKEY *dkim_load_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	return k;
}

/* rsa-sha256 signs the data with SHA-256; ed25519-sha256 signs the SHA-256
 * digest of the data with pure Ed25519 (RFC 8463 3). */
static int dkim_sign_data(const char *algorithm, EVP_PKEY *key, const struct buf *data,
                          struct buf *b64)
{
	unsigned char digest[32], sig[1024];
	size_t siglen = sizeof(sig);
	bool ed = strcmp(algorithm, "ed25519-sha256") == 0;
	if (ed != (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519))
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;
	if (ed) {
		unsigned dlen = 0;
		ok = EVP_Digest(data->data, data->len, digest, &dlen, EVP_sha256(), NULL) == 1 &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestSign(ctx, sig, &siglen, digest, dlen) == 1;
	} else {
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
		     EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)data->data,
		                    data->len) == 1;
	}
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	dkim_base64_append(b64, sig, siglen);
	return 0;
}

static void dkim_body_hash(const char *body, size_t len, struct buf *b64)
{
	struct buf canon;
	buf_init(&canon, BUF_NO_LIMIT);
	dkim_canon_body_relaxed(body, len, &canon);
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_Digest(canon.len > 0 ? canon.data : "", canon.len, md, &mdlen, EVP_sha256(), NULL);
	dkim_base64_append(b64, md, mdlen);
	buf_free(&canon);
}

/* Appends b64 folded into lines of at most 72 characters. */
static void dkim_append_folded(struct buf *out, const struct buf *b64)
{
	for (size_t i = 0; i < b64->len; i += 72) {
		size_t n = b64->len - i < 72 ? b64->len - i : 72;
		if (i > 0)
			buf_append(out, "\r\n\t", 3);
		buf_append(out, b64->data + i, n);
	}
}

int dkim_sign(const struct dkim_signer *s, const char *msg, size_t len, struct buf *sig_r,
              const char **error_r)
{
	struct dkim_field *f = NULL;
	size_t n = 0, body;
	struct buf data, hlist, bh, b;
	if (dkim_split_header(msg, len, &f, &n, &body) < 0) {
		*error_r = "message has no header";
		return -1;
	}
	buf_init(&data, BUF_NO_LIMIT);
	buf_init(&hlist, BUF_NO_LIMIT);
	buf_init(&bh, BUF_NO_LIMIT);
	buf_init(&b, BUF_NO_LIMIT);
	int ret = -1;
	EVP_PKEY *key = NULL;
	*error_r = "message has no From: field";
	if (!dkim_add_headers(msg, f, n, &data, &hlist))
		goto out;
	dkim_body_hash(msg + body, len - body, &bh);
	size_t sig_start = sig_r->len;
	buf_printf(sig_r, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s;", s->algorithm,
	           s->domain, s->selector);
	if (s->now > 0)
		buf_printf(sig_r, " t=%lld;", (long long)s->now);
	buf_printf(sig_r, "\r\n\th=%s;\r\n\tbh=%s;\r\n\tb=", hlist.data, bh.data);
	dkim_canon_header_relaxed(sig_r->data + sig_start, sig_r->len - sig_start, 0, &data);
	*error_r = "DKIM key unusable";
	key = dkim_load_key(s->private_pem);
	if (key == NULL || dkim_sign_data(s->algorithm, key, &data, &b) < 0) {
		buf_truncate(sig_r, sig_start);
		goto out;
	}
	dkim_append_folded(sig_r, &b);
	buf_append(sig_r, "\r\n", 2);
	ret = 0;
out:
	EVP_PKEY_free(key);
	free(f);
	buf_free(&data);
	buf_free(&hlist);
	buf_free(&bh);
	buf_free(&b);
	return ret;
}
