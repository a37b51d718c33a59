/* cmd-starttls.c - STARTTLS (RFC 3207). */
#include "smtp-private.h"

#include "log.h"
#include "smtp-reply.h"

enum smtp_outcome smtp_cmd_starttls(struct smtp_session *s, const char *args, size_t len)
{
	if (conn_is_tls(s->c)) {
		smtp_reply(s->c, 503, "5.5.1", "TLS already active");
		return SMTP_BAD;
	}
	smtp_reply(s->c, 220, "2.0.0", "Ready to start TLS");
	size_t discarded = 0;
	/* conn_starttls throws away whatever the client pipelined after the
	 * command: plaintext injected before the handshake is never run. */
	enum conn_status st = conn_starttls(s->c, NULL, &discarded);
	if (discarded > 0)
		log_info("event=starttls_discarded bytes=%zu", discarded);
	if (st != CONN_OK) {
		log_info("event=starttls status=%s", conn_status_str(st));
		return SMTP_CLOSE;
	}
	log_info("event=starttls tls=\"%s\"", conn_tls_description(s->c));
	/* RFC 3207 4.2: forget everything learnt before, the client EHLOs again. */
	smtp_session_reset(s);
	return SMTP_DONE;
}
