/* cmd-misc.c - the small commands: RSET, NOOP, QUIT, HELP, VRFY, EXPN. */
#include "smtp-private.h"

#include "smtp-reply.h"

enum smtp_outcome smtp_cmd_rset(struct smtp_session *s, const char *args, size_t len)
{
	smtp_tx_reset(s);
	smtp_reply(s->c, 250, "2.0.0", "Ok");
	return SMTP_DONE;
}

enum smtp_outcome smtp_cmd_noop(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s->c, 250, "2.0.0", "Ok");
	return SMTP_DONE;
}

enum smtp_outcome smtp_cmd_quit(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s->c, 221, "2.0.0", "%s Bye", smtp_hostname(s));
	s->quit = true;
	return SMTP_DONE;
}

enum smtp_outcome smtp_cmd_help(struct smtp_session *s, const char *args, size_t len)
{
	static const char *const lines[] = {
		"Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH",
		"See RFC 5321; documentation: docs/protocols.md",
	};
	smtp_reply_lines(s->c, 214, "2.0.0", lines, 2);
	return SMTP_DONE;
}

/* RFC 5321 3.5.3: we neither confirm nor deny an address (that would hand
 * out the list of users), but will try to deliver. */
enum smtp_outcome smtp_cmd_vrfy(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s->c, 252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
	return SMTP_DONE;
}

enum smtp_outcome smtp_cmd_expn(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s->c, 502, "5.5.1", "EXPN not available");
	return SMTP_DONE;
}
