/* sasl.h - the server side of SASL PLAIN (RFC 4616) and LOGIN, shared by
 * SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH.
 *
 * A small state machine that knows nothing of the protocol around it: the
 * protocol reads lines and writes challenges in its own syntax ("334 ...",
 * "+ ...") and asks the directory to check the credentials once the
 * exchange is done.
 *
 *   struct sasl s;
 *   st = sasl_start(&s, "PLAIN", initial_response_or_NULL, &error);
 *   while (st == SASL_CONTINUE) {
 *           send sasl_challenge(&s);            (base64, may be "")
 *           read a line;
 *           st = sasl_step(&s, line, len, &error);
 *   }
 *   SASL_DONE: s.authcid / s.password / s.authzid are set; authenticate,
 *   then sasl_wipe(&s).  SASL_CANCELLED: the client sent "*".
 *   SASL_ERROR: malformed exchange, *error says why (client's mistake).
 *
 * Responses are strict base64 (RFC 4648 alphabet, padding required, no
 * whitespace, no characters after the padding); a lone "=" is the empty
 * response (RFC 4954, SASL-IR). An initial response is passed without the
 * protocol's framing; NULL means none was given.
 *
 * PLAIN: message = [authzid] NUL authcid NUL passwd, exactly two NULs, each
 * field at most 255 octets of UTF-8 with no NUL; authcid and passwd must not
 * be empty. We do not support acting as another user: a non-empty authzid
 * is accepted only if it equals authcid (ASCII case ignored, like address
 * lookups), otherwise the exchange fails with SASL_ERROR.
 * LOGIN: challenges "Username:" and "Password:" (base64); an initial
 * response is taken as the username. Same field limits as PLAIN.
 *
 * Every buffer that held the password is wiped. Not thread-safe per object;
 * use one struct per session. */
#ifndef ROOST_SASL_H
#define ROOST_SASL_H

#include <stdbool.h>
#include <stddef.h>

#define SASL_FIELD_MAX 255
/* Longest base64 response worth decoding: a PLAIN message of three full
 * fields and two NULs. Protocols may use it to bound their line reads. */
#define SASL_RESPONSE_MAX ((size_t)((3 * SASL_FIELD_MAX + 2 + 2) / 3) * 4)

enum sasl_mech { SASL_MECH_PLAIN, SASL_MECH_LOGIN };

enum sasl_status {
	SASL_CONTINUE,  /* send sasl_challenge() and call sasl_step() with the answer */
	SASL_DONE,      /* authzid/authcid/password are set */
	SASL_CANCELLED, /* client sent "*" */
	SASL_ERROR,     /* malformed: *error_r says why; state is wiped */
};

struct sasl {
	enum sasl_mech mech;
	int state;                        /* private */
	char challenge[16];               /* base64 challenge to send next */
	char authzid[SASL_FIELD_MAX + 1]; /* "" if none */
	char authcid[SASL_FIELD_MAX + 1];
	char password[SASL_FIELD_MAX + 1]; /* wiped by sasl_wipe() */
	size_t password_len;
};

/* Mechanism by name, ASCII case ignored. -1 if we do not offer it. */
int sasl_mech_parse(const char *name, enum sasl_mech *r);
/* "PLAIN" / "LOGIN". */
const char *sasl_mech_name(enum sasl_mech mech);
/* The mechanisms we offer, space-separated ("PLAIN LOGIN"). */
const char *sasl_mechanisms(void);

/* Begins an exchange. initial: the initial response (NUL-terminated,
 * base64, "=" for empty) or NULL. */
enum sasl_status sasl_start(struct sasl *s, enum sasl_mech mech, const char *initial,
                            const char **error_r);
/* Feeds one client response (len bytes, without CRLF). */
enum sasl_status sasl_step(struct sasl *s, const char *response, size_t len, const char **error_r);
/* The challenge to send after SASL_CONTINUE (base64, "" for an empty one). */
const char *sasl_challenge(const struct sasl *s);
/* Clears every field (the password with explicit_bzero). */
void sasl_wipe(struct sasl *s);

/* Strict base64 decoding of len bytes into out (room for outmax bytes).
 * -1 on a bad character, bad padding, non-zero trailing bits or overflow. */
int sasl_base64_decode(const char *in, size_t len, unsigned char *out, size_t outmax,
                       size_t *outlen_r);
/* Base64 of len bytes into out (room for 4 * ((len + 2) / 3) + 1 bytes). */
void sasl_base64_encode(const void *in, size_t len, char *out);

#endif
