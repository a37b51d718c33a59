/* cmd-ehlo.c - EHLO and HELO: greet, reset, list the extensions.
 *
 * Only extensions that fully work are advertised. AUTH is offered only on
 * the submission listeners and only once the connection is encrypted (or on
 * loopback with [server] allow_plaintext_loopback); never on port 25, where
 * nobody needs to log in (docs/protocols.md). */
#include "smtp-private.h"

#include "log.h"
#include "sasl.h"
#include "smtp-reply.h"

#include <stdio.h>
#include <string.h>

/* The EHLO/HELO argument: one word of printable ASCII or UTF-8. */
static bool smtp_helo_valid(const char *args, size_t len)
{
	if (len == 0 || len >= sizeof(((struct smtp_session *)0)->helo))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)args[i] <= ' ' || args[i] == 0x7f)
			return false;
	return address_utf8_is_valid(args, len);
}

static enum smtp_outcome smtp_greet(struct smtp_session *s, const char *args, size_t len,
                                    bool esmtp)
{
	if (!smtp_helo_valid(args, len)) {
		smtp_reply(s->c, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return SMTP_BAD;
	}
	smtp_tx_reset(s);
	memcpy(s->helo, args, len);
	s->helo[len] = '\0';
	s->helo_done = true;
	s->esmtp = esmtp;
	return SMTP_DONE;
}

enum smtp_outcome smtp_cmd_helo(struct smtp_session *s, const char *args, size_t len)
{
	enum smtp_outcome o = smtp_greet(s, args, len, false);
	if (o == SMTP_DONE)
		smtp_reply(s->c, 250, NULL, "%s", smtp_hostname(s));
	return o;
}

enum smtp_outcome smtp_cmd_ehlo(struct smtp_session *s, const char *args, size_t len)
{
	enum smtp_outcome o = smtp_greet(s, args, len, true);
	if (o != SMTP_DONE)
		return o;
	char first[300], size[40], auth[64];
	snprintf(first, sizeof(first), "%s Hello %s", smtp_hostname(s), s->helo);
	snprintf(size, sizeof(size), "SIZE %llu",
		 (unsigned long long)config_uint(s->cfg, CFG_LIMITS_MESSAGE_SIZE));
	snprintf(auth, sizeof(auth), "AUTH %s", sasl_mechanisms());
	const char *lines[12];
	size_t n = 0;
	lines[n++] = first;
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "DSN";
	lines[n++] = "CHUNKING";
	if (!conn_is_tls(s->c))
		lines[n++] = "STARTTLS";
	if (smtp_auth_allowed(s) && !s->authenticated)
		lines[n++] = auth;
	smtp_reply_lines(s->c, 250, NULL, lines, n);
	return SMTP_DONE;
}
