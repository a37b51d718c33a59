/* imap-utf7.c - modified UTF-7 mailbox names (RFC 3501 section 5.1.3) to
 * and from UTF-8, strictly: what we decode re-encodes to the same bytes. */
#include "imap-private.h"

#include "utf8.h"

#include <string.h>

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(unsigned char c)
{
	const char *p = c != '\0' ? strchr(b64chars, c) : NULL;
	return p != NULL ? (int)(p - b64chars) : -1;
}

bool imap_utf8_valid(const char *p, size_t len)
{
	return utf8_valid(p, len);
}

static void utf8_put(uint32_t cp, struct buf *out)
{
	char t[4];
	buf_append(out, t, utf8_encode(cp, t));
}

/* Decodes the base64 run in[0..len) (between '&' and '-') as UTF-16BE. */
static int utf7_run(const unsigned char *in, size_t len, struct buf *out)
{
	uint32_t bits = 0, nbits = 0, high = 0;
	size_t units = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64val(in[i]);
		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		units++;
		if (high != 0) {
			if (u < 0xdc00 || u > 0xdfff)
				return -1;
			utf8_put(0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00), out);
			high = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			high = u;
		} else if ((u >= 0xdc00 && u <= 0xdfff) || (u >= 0x20 && u <= 0x7e)) {
			/* Lone low surrogates, and printable ASCII that must be
			 * written directly, are not canonical. */
			return -1;
		} else {
			utf8_put(u, out);
		}
	}
	/* Leftover bits must be fewer than 6 and zero; no dangling surrogate. */
	if (units == 0 || high != 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	return 0;
}

int imap_utf7_to_utf8(const char *in, size_t len, struct buf *out)
{
	const unsigned char *u = (const unsigned char *)in;
	buf_reset(out);
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			buf_append_char(out, (char)c);
			i++;
			continue;
		}
		const unsigned char *dash = memchr(u + i + 1, '-', len - i - 1);
		if (dash == NULL)
			return -1;
		size_t runlen = (size_t)(dash - (u + i + 1));
		if (runlen == 0)
			buf_append_char(out, '&');
		else if (utf7_run(u + i + 1, runlen, out) < 0)
			return -1;
		i += runlen + 2;
		/* Two runs in a row would have been written as one. */
		if (runlen > 0 && i + 1 < len && u[i] == '&' && u[i + 1] != '-')
			return -1;
	}
	return 0;
}

static void utf7_flush(uint32_t *bits, unsigned *nbits, struct buf *out)
{
	while (*nbits >= 6) {
		*nbits -= 6;
		buf_append_char(out, b64chars[(*bits >> *nbits) & 0x3f]);
	}
}

static void utf7_unit(uint32_t u, uint32_t *bits, unsigned *nbits, struct buf *out)
{
	*bits = (*bits << 16) | u;
	*nbits += 16;
	utf7_flush(bits, nbits, out);
}

int imap_utf8_to_utf7(const char *in, size_t len, struct buf *out)
{
	const unsigned char *u = (const unsigned char *)in;
	buf_reset(out);
	for (size_t i = 0; i < len;) {
		if (u[i] >= 0x20 && u[i] <= 0x7e) {
			buf_append_str(out, u[i] == '&' ? "&-" : (const char[]){(char)u[i], 0});
			i++;
			continue;
		}
		uint32_t bits = 0;
		unsigned nbits = 0;
		buf_append_char(out, '&');
		while (i < len && (u[i] < 0x20 || u[i] > 0x7e)) {
			uint32_t cp;
			size_t n = utf8_decode(u + i, len - i, &cp);
			if (n == 0)
				return -1;
			i += n;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				utf7_unit(0xd800 + (cp >> 10), &bits, &nbits, out);
				utf7_unit(0xdc00 + (cp & 0x3ff), &bits, &nbits, out);
			} else {
				utf7_unit(cp, &bits, &nbits, out);
			}
		}
		if (nbits > 0)
			buf_append_char(out, b64chars[(bits << (6 - nbits)) & 0x3f]);
		buf_append_char(out, '-');
	}
	return 0;
}
