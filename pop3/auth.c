/* auth.c - the AUTHORIZATION state: CAPA, STLS, USER/PASS, AUTH (RFC 5034)
 * and opening the maildrop. */
#include "pop3-private.h"

#include "log.h"
#include "sasl-conn.h"
#include "sasl.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void pop3_cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	bool authz = s->state == POP3_AUTHORIZATION;
	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING");
	if (authz && pop3_secure(s))
		pop3_reply(s, "USER\r\nSASL %s", sasl_mechanisms());
	if (authz && !conn_is_tls(s->c))
		pop3_reply(s, "STLS");
	if (s->srv->expire_days < 0)
		pop3_reply(s, "EXPIRE NEVER");
	else
		pop3_reply(s, "EXPIRE %lld", (long long)s->srv->expire_days);
	if (s->srv->login_delay > 0)
		pop3_reply(s, "LOGIN-DELAY %llu", (unsigned long long)s->srv->login_delay);
	pop3_reply(s, "IMPLEMENTATION Roost\r\n.");
}

void pop3_cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	if (conn_is_tls(s->c)) {
		pop3_reply_bad(s, "TLS is already active");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	size_t discarded = 0;
	enum conn_status st = conn_starttls(s->c, NULL, &discarded);
	if (st != CONN_OK) {
		log_info("event=starttls result=%s", conn_status_str(st));
		s->quit = true;
		return;
	}
	/* RFC 2595: forget what the client said before the handshake. */
	s->have_user = false;
	explicit_bzero(s->user, sizeof(s->user));
	log_info("event=starttls tls=\"%s\" discarded=%zu", conn_tls_description(s->c), discarded);
}

void pop3_cmd_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	size_t len = strlen(cmd->args[0]);
	if (len >= sizeof(s->user)) {
		pop3_reply_bad(s, "User name too long");
		return;
	}
	memcpy(s->user, cmd->args[0], len + 1);
	s->have_user = true;
	pop3_reply(s, "+OK Send your password");
}

static void pop3_auth_failure_pause(struct pop3_session *s)
{
	conn_flush(s->c);
	auth_failure_pause(pop3_cfg(s));
}

/* 1 opened, 0 answered with -ERR, and the lock is not held then. */
static int pop3_maildrop_open(struct pop3_session *s, PGconn *conn)
{
	struct store_mailbox mb = {0};
	enum store_err e = store_mailbox_get(conn, s->account.id, "INBOX", &mb);
	if (e != STORE_OK) {
		pop3_reply_store_err(s, e, "mailbox_get");
		return 0;
	}
	s->md.mailbox_id = mb.id;
	s->md.uidvalidity = mb.uidvalidity;
	store_mailbox_free_fields(&mb);
	int lock = pop3_lock_acquire(&s->srv->locks, s->md.mailbox_id);
	if (lock <= 0) {
		pop3_reply(s, lock == 0
		                  ? "-ERR [IN-USE] Mailbox is locked by another POP3 session"
		                  : "-ERR [SYS/TEMP] Cannot lock the mailbox, try again later");
		return 0;
	}
	s->locked = true;
	int pass = s->srv->login_delay == 0
	               ? 1
	               : pop3_login_delay_pass(conn, s->account.id, s->srv->login_delay);
	if (pass == 1 && pop3_maildrop_load(conn, &s->md) == 0)
		return 1;
	if (pass == 0)
		pop3_reply(s, "-ERR [LOGIN-DELAY] Minimum time between logins has not passed");
	else
		pop3_reply_internal(s, "maildrop_load");
	pop3_lock_release(&s->srv->locks, s->md.mailbox_id);
	s->locked = false;
	pop3_maildrop_free(&s->md);
	return 0;
}

static void pop3_login_ok(struct pop3_session *s, const char *method)
{
	uint64_t total = 0;
	for (size_t i = 0; i < s->md.n; i++)
		total += s->md.msgs[i].size;
	s->state = POP3_TRANSACTION;
	struct conn_limits limits;
	conn_limits_from_config(pop3_cfg(s), false, &limits);
	conn_set_limits(s->c, &limits);
	char user[LOG_QUOTE_MAX];
	log_info("event=login user=%s method=%s tls=%s messages=%zu octets=%llu",
	         log_quote(user, sizeof(user), s->account.address), method,
	         conn_is_tls(s->c) ? "yes" : "no", s->md.n, (unsigned long long)total);
	pop3_reply(s, "+OK Logged in, %zu messages (%llu octets)", s->md.n,
	           (unsigned long long)total);
}

/* Checks the credentials and opens the maildrop; answers either way. */
static void pop3_login(struct pop3_session *s, const char *login, const char *password,
                       const char *method)
{
	char user[LOG_QUOTE_MAX];
	enum directory_auth a = directory_authenticate(s->srv->dir, login, password, &s->account);
	if (a != DIR_AUTH_OK) {
		static const char *const reasons[] = {"ok", "failed", "disabled", "tempfail"};
		log_info("event=login_failed user=%s method=%s reason=%s",
		         log_quote(user, sizeof(user), login), method, reasons[a]);
		if (a == DIR_AUTH_TEMPFAIL) {
			pop3_reply(s,
			           "-ERR [SYS/TEMP] Authentication unavailable, try again later");
			return;
		}
		s->bad_commands++;
		pop3_auth_failure_pause(s);
		pop3_reply(s, "-ERR [AUTH] Authentication failed");
		return;
	}
	PGconn *conn = pop3_db_borrow(s);
	if (conn == NULL)
		return;
	int opened = pop3_maildrop_open(s, conn);
	pop3_db_return(s, &conn);
	if (opened == 1)
		pop3_login_ok(s, method);
	else
		log_info("event=login_refused user=%s", log_quote(user, sizeof(user), login));
}

void pop3_cmd_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!s->have_user) {
		pop3_reply_bad(s, "USER first");
		return;
	}
	s->have_user = false;
	if (cmd->rest[0] == '\0' || strlen(cmd->rest) > DIR_PASSWORD_MAX) {
		pop3_reply_bad(s, "[AUTH] Authentication failed");
		return;
	}
	pop3_login(s, s->user, cmd->rest, "USER");
}

static void pop3_auth_list(struct pop3_session *s)
{
	char mechs[64];
	size_t n = strlen(sasl_mechanisms());
	if (n >= sizeof(mechs))
		n = sizeof(mechs) - 1;
	memcpy(mechs, sasl_mechanisms(), n);
	mechs[n] = '\0';
	pop3_reply(s, "+OK Mechanisms follow");
	for (char *save = NULL, *m = strtok_r(mechs, " ", &save); m != NULL;
	     m = strtok_r(NULL, " ", &save))
		pop3_reply(s, "%s", m);
	pop3_reply(s, ".");
}

/* Runs the exchange until SASL_DONE or the end (answered here). */
void pop3_cmd_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	enum sasl_mech mech;
	if (cmd->nargs == 0) {
		pop3_auth_list(s);
		return;
	}
	if (sasl_mech_parse(cmd->args[0], &mech) < 0) {
		pop3_reply_bad(s, "Unsupported authentication mechanism");
		return;
	}
	struct sasl sasl;
	const char *err = NULL;
	enum sasl_status st = sasl_start(&sasl, mech, cmd->nargs > 1 ? cmd->args[1] : NULL, &err);
	enum conn_status cst;
	st = sasl_conn_exchange(&sasl, st, s->c, "+ ", &cst, &err);
	if (cst != CONN_OK)
		s->quit = true;
	if (st == SASL_DONE)
		pop3_login(s, sasl.authcid, sasl.password, sasl_mech_name(mech));
	else if (st == SASL_CANCELLED)
		pop3_reply_bad(s, "Authentication cancelled");
	else if (!s->quit)
		pop3_reply_bad(s, err != NULL ? err : "Malformed authentication exchange");
	sasl_wipe(&sasl);
}
