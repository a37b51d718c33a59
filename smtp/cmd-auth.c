/* cmd-auth.c - AUTH PLAIN and LOGIN (RFC 4954) through core/sasl.h.
 *
 * Only on the submission listeners, only over TLS (loopback exception by
 * [server] allow_plaintext_loopback). A failed login costs a random pause
 * ([limits] auth_failure_delay_ms) and counts as a bad command. */
#include "smtp-private.h"

#include "log.h"
#include "sasl-conn.h"
#include "sasl.h"
#include "smtp-reply.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SMTP_AUTH_LINE_MAX (SASL_RESPONSE_MAX + 16)

static void smtp_auth_pause(const struct smtp_session *s)
{
	conn_flush(s->c);
	auth_failure_pause(s->cfg);
}

static enum smtp_outcome smtp_auth_check(struct smtp_session *s)
{
	if (s->which == SMTP_LISTENER_MX) {
		smtp_reply(s->c, 503, "5.5.1", "AUTH not available on this port (use submission)");
		return SMTP_BAD;
	}
	if (s->authenticated) {
		smtp_reply(s->c, 503, "5.5.1", "Already authenticated");
		return SMTP_BAD;
	}
	if (!smtp_auth_allowed(s)) {
		smtp_reply(s->c, 538, "5.7.11",
		           "Encryption required for requested authentication mechanism");
		return SMTP_BAD;
	}
	return SMTP_DONE;
}

static enum smtp_outcome smtp_auth_verify(struct smtp_session *s, struct sasl *sasl)
{
	struct directory_account acct;
	enum directory_auth a =
	    directory_authenticate(s->srv->dir, sasl->authcid, sasl->password, &acct);
	char q[LOG_QUOTE_MAX];
	log_quote(q, sizeof(q), sasl->authcid);
	if (a == DIR_AUTH_TEMPFAIL) {
		log_warn("event=auth status=tempfail user=%s", q);
		smtp_reply(s->c, 454, "4.7.0", "Temporary authentication failure");
		return SMTP_DONE;
	}
	if (a != DIR_AUTH_OK) {
		log_info("event=auth status=%s user=%s",
		         a == DIR_AUTH_DISABLED ? "disabled" : "failed", q);
		smtp_auth_pause(s);
		smtp_reply(s->c, 535, "5.7.8", "Authentication credentials invalid");
		return SMTP_BAD;
	}
	s->authenticated = true;
	s->account_id = acct.id;
	snprintf(s->user, sizeof(s->user), "%s", acct.address);
	struct conn_limits lim;
	conn_limits_from_config(s->cfg, false, &lim);
	conn_set_limits(s->c, &lim);
	log_info("event=auth status=ok user=%s account=%lld mech=%s", q, (long long)acct.id,
	         sasl_mech_name(sasl->mech));
	smtp_reply(s->c, 235, "2.7.0", "Authentication successful");
	return SMTP_DONE;
}

/* The mechanism word of "MECH [initial-response]"; its length in *sp_r. */
static int smtp_auth_mech(const char *args, size_t len, enum sasl_mech *m_r, size_t *sp_r)
{
	char mech[16];
	size_t sp = 0;
	while (sp < len && args[sp] != ' ')
		sp++;
	if (sp == 0 || sp >= sizeof(mech) || len - sp > SMTP_AUTH_LINE_MAX)
		return -1;
	memcpy(mech, args, sp);
	mech[sp] = '\0';
	*sp_r = sp;
	return sasl_mech_parse(mech, m_r);
}

enum smtp_outcome smtp_cmd_auth(struct smtp_session *s, const char *args, size_t len)
{
	enum smtp_outcome o = smtp_auth_check(s);
	if (o != SMTP_DONE)
		return o;
	char initial[SMTP_AUTH_LINE_MAX + 1];
	size_t sp = 0;
	enum sasl_mech m;
	if (smtp_auth_mech(args, len, &m, &sp) < 0) {
		smtp_reply(s->c, 504, "5.5.4", "Unrecognized authentication type");
		return SMTP_BAD;
	}
	bool has_initial = sp < len;
	if (has_initial) {
		memcpy(initial, args + sp + 1, len - sp - 1);
		initial[len - sp - 1] = '\0';
	}
	struct sasl sasl;
	const char *err = NULL;
	enum sasl_status st = sasl_start(&sasl, m, has_initial ? initial : NULL, &err);
	explicit_bzero(initial, sizeof(initial));
	enum conn_status cst;
	st = sasl_conn_exchange(&sasl, st, s->c, "334 ", &cst, &err);
	if (cst != CONN_OK)
		o = smtp_conn_failed(s, cst);
	else if (st == SASL_CANCELLED)
		smtp_reply(s->c, 501, "5.0.0", "Authentication cancelled"), o = SMTP_BAD;
	else if (st != SASL_DONE)
		smtp_reply(s->c, 501, "5.5.2", "Invalid authentication exchange"), o = SMTP_BAD;
	else
		o = smtp_auth_verify(s, &sasl);
	sasl_wipe(&sasl);
	return o;
}
