#include "sasl.h"

#include "address.h"
#include "password.h"

#include <string.h>
#include <strings.h>

enum sasl_state {
	SASL_STATE_IDLE = 0,
	SASL_STATE_PLAIN,      /* waiting for the PLAIN message */
	SASL_STATE_LOGIN_USER, /* sent "Username:" */
	SASL_STATE_LOGIN_PASS, /* sent "Password:" */
	SASL_STATE_DONE,
};

/* Largest decoded response: three full PLAIN fields and two NULs. */
#define SASL_DECODED_MAX (3 * SASL_FIELD_MAX + 2)

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes one 4-character group; returns the bytes it yields (1..3) or -1.
 * Padding is allowed only in the last group, and the bits it hides must be
 * zero, so that every byte string has exactly one encoding. */
static int b64_group(const unsigned char *in, bool last, unsigned char out[3])
{
	int pad = (in[3] == '=') + (in[2] == '=' && in[3] == '=');
	int v[4] = {0, 0, 0, 0};

	if (pad > 0 && !last)
		return -1;
	for (int i = 0; i < 4 - pad; i++) {
		v[i] = b64_value(in[i]);
		if (v[i] < 0)
			return -1;
	}
	if ((pad == 1 && (v[2] & 0x3)) || (pad == 2 && (v[1] & 0xf)))
		return -1;
	out[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
	out[1] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
	out[2] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
	return 3 - pad;
}

int sasl_base64_decode(const char *in, size_t len, unsigned char *out, size_t outmax,
                       size_t *outlen_r)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		unsigned char grp[3];
		int n = b64_group(p + i, i + 4 == len, grp);
		if (n < 0 || outmax - o < (size_t)n)
			return -1;
		memcpy(out + o, grp, (size_t)n);
		password_wipe(grp, sizeof(grp));
		o += (size_t)n;
	}
	*outlen_r = o;
	return 0;
}

void sasl_base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 0x3f];
		out[o++] = b64_alphabet[v >> 12 & 0x3f];
		out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 0x3f] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 0x3f] : '=';
	}
	out[o] = '\0';
}

int sasl_mech_parse(const char *name, enum sasl_mech *r)
{
	if (strcasecmp(name, "PLAIN") == 0)
		*r = SASL_MECH_PLAIN;
	else if (strcasecmp(name, "LOGIN") == 0)
		*r = SASL_MECH_LOGIN;
	else
		return -1;
	return 0;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
	return mech == SASL_MECH_PLAIN ? "PLAIN" : "LOGIN";
}

const char *sasl_mechanisms(void)
{
	return "PLAIN LOGIN";
}

void sasl_wipe(struct sasl *s)
{
	password_wipe(s, sizeof(*s));
}

const char *sasl_challenge(const struct sasl *s)
{
	return s->challenge;
}

static enum sasl_status sasl_fail(struct sasl *s, const char *why, const char **error_r)
{
	enum sasl_mech mech = s->mech;
	sasl_wipe(s);
	s->mech = mech;
	*error_r = why;
	return SASL_ERROR;
}

/* Copies one field after checking its length and UTF-8. */
static int copy_field(char *dst, const unsigned char *src, size_t len, const char **error_r)
{
	if (len > SASL_FIELD_MAX) {
		*error_r = "field longer than 255 octets";
		return -1;
	}
	if (!address_utf8_is_valid((const char *)src, len)) {
		*error_r = "field is not valid UTF-8";
		return -1;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/* message = [authzid] NUL authcid NUL passwd (RFC 4616 section 2). */
static enum sasl_status plain_message(struct sasl *s, const unsigned char *m, size_t len,
                                      const char **error_r)
{
	const unsigned char *nul1 = memchr(m, '\0', len);
	const unsigned char *nul2 =
	    nul1 == NULL ? NULL : memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - m));
	if (nul2 == NULL || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - m)) != NULL)
		return sasl_fail(s, "PLAIN message needs exactly two NUL separators", error_r);
	size_t zlen = (size_t)(nul1 - m), clen = (size_t)(nul2 - nul1 - 1);
	size_t plen = len - (size_t)(nul2 + 1 - m);
	if (clen == 0 || plen == 0)
		return sasl_fail(s, "empty user name or password", error_r);
	if (copy_field(s->authzid, m, zlen, error_r) < 0 ||
	    copy_field(s->authcid, nul1 + 1, clen, error_r) < 0 ||
	    copy_field(s->password, nul2 + 1, plen, error_r) < 0)
		return sasl_fail(s, *error_r, error_r);
	s->password_len = plen;
	if (zlen > 0 && strcasecmp(s->authzid, s->authcid) != 0)
		return sasl_fail(s, "authorization identity differs from the user", error_r);
	s->state = SASL_STATE_DONE;
	return SASL_DONE;
}

static enum sasl_status login_field(struct sasl *s, const unsigned char *m, size_t len,
                                    const char **error_r)
{
	if (len == 0)
		return sasl_fail(s, "empty user name or password", error_r);
	if (memchr(m, '\0', len) != NULL)
		return sasl_fail(s, "NUL in user name or password", error_r);
	if (s->state == SASL_STATE_LOGIN_USER) {
		if (copy_field(s->authcid, m, len, error_r) < 0)
			return sasl_fail(s, *error_r, error_r);
		s->state = SASL_STATE_LOGIN_PASS;
		sasl_base64_encode("Password:", 9, s->challenge);
		return SASL_CONTINUE;
	}
	if (copy_field(s->password, m, len, error_r) < 0)
		return sasl_fail(s, *error_r, error_r);
	s->password_len = len;
	s->challenge[0] = '\0';
	s->state = SASL_STATE_DONE;
	return SASL_DONE;
}

/* Decodes a response and hands it to the current state. */
static enum sasl_status sasl_feed(struct sasl *s, const char *resp, size_t len,
                                  const char **error_r)
{
	unsigned char m[SASL_DECODED_MAX];
	size_t mlen = 0;
	enum sasl_status st;

	if (len == 1 && resp[0] == '*') {
		sasl_wipe(s);
		*error_r = "cancelled by the client";
		return SASL_CANCELLED;
	}
	if (len > SASL_RESPONSE_MAX)
		return sasl_fail(s, "response too long", error_r);
	if (!(len == 1 && resp[0] == '=') && sasl_base64_decode(resp, len, m, sizeof(m), &mlen) < 0)
		return sasl_fail(s, "invalid base64", error_r);
	if (s->state == SASL_STATE_PLAIN)
		st = plain_message(s, m, mlen, error_r);
	else
		st = login_field(s, m, mlen, error_r);
	password_wipe(m, sizeof(m));
	return st;
}

enum sasl_status sasl_start(struct sasl *s, enum sasl_mech mech, const char *initial,
                            const char **error_r)
{
	sasl_wipe(s);
	s->mech = mech;
	if (mech == SASL_MECH_PLAIN) {
		s->state = SASL_STATE_PLAIN;
		s->challenge[0] = '\0';
	} else {
		s->state = SASL_STATE_LOGIN_USER;
		sasl_base64_encode("Username:", 9, s->challenge);
	}
	if (initial == NULL)
		return SASL_CONTINUE;
	return sasl_feed(s, initial, strlen(initial), error_r);
}

enum sasl_status sasl_step(struct sasl *s, const char *response, size_t len, const char **error_r)
{
	if (s->state != SASL_STATE_PLAIN && s->state != SASL_STATE_LOGIN_USER &&
	    s->state != SASL_STATE_LOGIN_PASS)
		return sasl_fail(s, "no exchange in progress", error_r);
	return sasl_feed(s, response, len, error_r);
}
