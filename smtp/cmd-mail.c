/* cmd-mail.c - MAIL FROM: the sender and the ESMTP parameters SIZE, BODY,
 * SMTPUTF8, RET, ENVID, AUTH. On submission the sender must belong to the
 * authenticated user (553 5.7.1 otherwise). */
#include "smtp-private.h"

#include "log.h"
#include "smtp-reply.h"

#include <string.h>

/* One reply per parse failure (shared with RCPT through the esc argument). */
enum smtp_outcome smtp_reply_parse_err(struct smtp_session *s, enum smtp_parse_status st,
                                       const char *addr_esc, const char *err)
{
	switch (st) {
	case SMTP_PARSE_OK:
		return SMTP_DONE;
	case SMTP_PARSE_BAD_ADDRESS:
		smtp_reply(s->c, 501, addr_esc, "Bad address syntax: %s", err);
		break;
	case SMTP_PARSE_UNKNOWN_PARAM:
		smtp_reply(s->c, 555, "5.5.4", "%s", err);
		break;
	default:
		smtp_reply(s->c, 501, "5.5.4", "%s", err);
		break;
	}
	return SMTP_BAD;
}

/* Submission: the sender must be the user's (their address, an alias or a
 * list that resolves to them). The null path is nobody's. False when it is
 * not (replied, *o_r says how to count it). */
static bool smtp_mail_owner_ok(struct smtp_session *s, const char *from, enum smtp_outcome *o_r)
{
	int owned = from[0] == '\0' ? 0 : smtp_sender_owned(s, from);
	if (owned > 0)
		return true;
	if (owned < 0) {
		smtp_reply(s->c, 451, "4.4.3", "Temporary directory failure, try again later");
		*o_r = SMTP_DONE;
		return false;
	}
	char q[LOG_QUOTE_MAX];
	log_info("event=sender_refused user=%s from=%s", s->user, log_quote(q, sizeof(q), from));
	smtp_reply(s->c, 553, "5.7.1", "Sender address <%s> not owned by user %s", from, s->user);
	*o_r = SMTP_BAD;
	return false;
}

enum smtp_outcome smtp_cmd_mail(struct smtp_session *s, const char *args, size_t len)
{
	struct address from;
	struct smtp_mail_params p;
	const char *err = "";
	enum smtp_parse_status st = smtp_parse_mail(args, len, &from, &p, &err);
	if (st != SMTP_PARSE_OK)
		return smtp_reply_parse_err(s, st, "5.1.7", err);
	if (from.utf8 && !p.smtputf8) {
		smtp_reply(s->c, 553, "5.6.7", "Non-ASCII sender address needs SMTPUTF8");
		return SMTP_BAD;
	}
	if (p.has_size && p.size > config_uint(s->cfg, CFG_LIMITS_MESSAGE_SIZE)) {
		smtp_reply(s->c, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return SMTP_DONE;
	}
	char addr[ADDRESS_BUF_SIZE];
	address_format(&from, addr);
	enum smtp_outcome o = SMTP_DONE;
	if (s->which != SMTP_LISTENER_MX && !smtp_mail_owner_ok(s, addr, &o))
		return o;
	smtp_tx_reset(s);
	s->tx.active = true;
	s->tx.from = from;
	memcpy(s->tx.from_str, addr, sizeof(addr));
	s->tx.params = p;
	log_new_id("m", s->tx.id, sizeof(s->tx.id));
	log_set_msgid(s->tx.id);
	smtp_reply(s->c, 250, "2.1.0", "Ok");
	return SMTP_DONE;
}
