/* session.c - the SMTP protocol loop: read a command, check it against the
 * command table, run its handler (RFC 5321 with RFC 2920 pipelining: the
 * replies of pipelined commands are batched and flushed when the loop would
 * wait for input, see core/conn.h). */
#include "smtp-private.h"

#include "log.h"
#include "smtp-reply.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Command flags: the generic step checks them before any handler runs. */
#define SMTP_CMD_HELO    0x01u /* needs EHLO/HELO first */
#define SMTP_CMD_TX      0x02u /* needs MAIL (a transaction) */
#define SMTP_CMD_NO_TX   0x04u /* not inside a transaction */
#define SMTP_CMD_RCPT    0x08u /* needs at least one accepted RCPT */
#define SMTP_CMD_ARGS    0x10u /* needs arguments */
#define SMTP_CMD_NO_ARGS 0x20u /* takes none */
#define SMTP_CMD_NO_BDAT 0x40u /* not while BDAT chunks are under way */
#define SMTP_CMD_AUTH    0x80u /* on submission listeners, needs AUTH */

struct smtp_command {
	const char *name;
	smtp_cmd_fn *handler;
	unsigned flags;
};

static const struct smtp_command smtp_commands[] = {
    {"EHLO", smtp_cmd_ehlo, SMTP_CMD_ARGS},
    {"HELO", smtp_cmd_helo, SMTP_CMD_ARGS},
    {"MAIL", smtp_cmd_mail, SMTP_CMD_HELO | SMTP_CMD_NO_TX | SMTP_CMD_ARGS | SMTP_CMD_AUTH},
    {"RCPT", smtp_cmd_rcpt, SMTP_CMD_TX | SMTP_CMD_ARGS | SMTP_CMD_NO_BDAT},
    {"DATA", smtp_cmd_data, SMTP_CMD_TX | SMTP_CMD_RCPT | SMTP_CMD_NO_ARGS | SMTP_CMD_NO_BDAT},
    /* BDAT checks its state itself: the chunk must be read whatever happens. */
    {"BDAT", smtp_cmd_bdat, SMTP_CMD_ARGS},
    {"RSET", smtp_cmd_rset, SMTP_CMD_NO_ARGS},
    {"NOOP", smtp_cmd_noop, 0},
    {"QUIT", smtp_cmd_quit, SMTP_CMD_NO_ARGS},
    {"HELP", smtp_cmd_help, 0},
    {"VRFY", smtp_cmd_vrfy, SMTP_CMD_ARGS},
    {"EXPN", smtp_cmd_expn, SMTP_CMD_ARGS},
    {"AUTH", smtp_cmd_auth, SMTP_CMD_HELO | SMTP_CMD_NO_TX | SMTP_CMD_ARGS},
    {"STARTTLS", smtp_cmd_starttls, SMTP_CMD_NO_TX | SMTP_CMD_NO_ARGS},
};

static const struct smtp_command *smtp_command_find(const char *verb)
{
	for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
		if (strcmp(smtp_commands[i].name, verb) == 0)
			return &smtp_commands[i];
	return NULL;
}

/* The generic check: a reply and SMTP_BAD when the command may not run. */
static enum smtp_outcome smtp_command_check(struct smtp_session *s, const struct smtp_command *cmd,
                                            size_t arglen)
{
	const char *why = NULL;
	unsigned code = 503;
	const char *esc = "5.5.1";
	unsigned f = cmd->flags;
	if ((f & SMTP_CMD_ARGS) && arglen == 0) {
		code = 501, esc = "5.5.4", why = "Syntax: argument required";
	} else if ((f & SMTP_CMD_NO_ARGS) && arglen > 0) {
		code = 501, esc = "5.5.4", why = "Syntax: no arguments allowed";
	} else if ((f & SMTP_CMD_HELO) && !s->helo_done) {
		why = "Send HELO/EHLO first";
	} else if ((f & SMTP_CMD_AUTH) && s->which != SMTP_LISTENER_MX && !s->authenticated) {
		code = 530, esc = "5.7.0";
		why = smtp_auth_allowed(s) ? "Authentication required"
		                           : "Must issue a STARTTLS command first";
	} else if ((f & SMTP_CMD_NO_TX) && s->tx.active) {
		why = "Mail transaction in progress (send RSET first)";
	} else if ((f & SMTP_CMD_TX) && !s->tx.active) {
		why = "Need MAIL command first";
	} else if ((f & SMTP_CMD_NO_BDAT) && s->tx.bdat) {
		why = "BDAT transfer under way: send BDAT or RSET";
	} else if ((f & SMTP_CMD_RCPT) && s->tx.nrcpts == 0) {
		code = 554, why = "No valid recipients";
	}
	if (why == NULL)
		return SMTP_DONE;
	smtp_reply(s->c, code, esc, "%s", why);
	return SMTP_BAD;
}

static size_t smtp_line_limit(const struct smtp_session *s)
{
	return (size_t)config_uint(s->cfg, s->authenticated ? CFG_LIMITS_LINE_LENGTH
	                                                    : CFG_LIMITS_LINE_LENGTH_PREAUTH);
}

static unsigned smtp_bad_limit(const struct smtp_session *s)
{
	return (unsigned)config_uint(s->cfg, s->authenticated ? CFG_LIMITS_BAD_COMMANDS
	                                                      : CFG_LIMITS_BAD_COMMANDS_PREAUTH);
}

static enum smtp_outcome smtp_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	char verb[SMTP_VERB_MAX + 1];
	size_t off = 0;
	const struct smtp_command *cmd = NULL;
	if (memchr(line, '\0', len) == NULL && smtp_parse_verb(line, len, verb, &off) == 0)
		cmd = smtp_command_find(verb);
	if (cmd == NULL) {
		smtp_reply(s->c, 500, "5.5.2", "Command not recognized");
		return SMTP_BAD;
	}
	enum smtp_outcome o = smtp_command_check(s, cmd, len - off);
	return o != SMTP_DONE ? o : cmd->handler(s, line + off, len - off);
}

enum smtp_outcome smtp_conn_failed(struct smtp_session *s, enum conn_status st)
{
	if (st == CONN_TIMEOUT)
		smtp_reply(s->c, 421, "4.4.2", "%s Timeout, closing connection", smtp_hostname(s));
	else if (st == CONN_STOPPING)
		smtp_reply(s->c, 421, "4.3.2", "%s Server shutting down", smtp_hostname(s));
	return SMTP_CLOSE;
}

/* Reads and runs one command. */
static enum smtp_outcome smtp_step(struct smtp_session *s)
{
	size_t max = smtp_line_limit(s);
	s->line.max = max;
	enum conn_status st = conn_read_line(s->c, &s->line, max, CONN_NEW_REQUEST, NULL);
	if (st == CONN_TOO_LONG) {
		smtp_reply(s->c, 500, "5.5.2", "Line too long");
		return SMTP_BAD;
	}
	if (st != CONN_OK)
		return smtp_conn_failed(s, st);
	return smtp_dispatch(s, s->line.data != NULL ? s->line.data : "", s->line.len);
}

void smtp_tx_reset(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;
	for (size_t i = 0; i < tx->nrcpts; i++) {
		free(tx->rcpts[i].accounts);
		for (size_t j = 0; j < tx->rcpts[i].nremote; j++)
			free(tx->rcpts[i].remote[j]);
		free(tx->rcpts[i].remote);
	}
	free(tx->rcpts);
	smtp_body_free(&tx->body);
	memset(tx, 0, sizeof(*tx));
	log_set_msgid(NULL);
}

void smtp_session_reset(struct smtp_session *s)
{
	smtp_tx_reset(s);
	s->helo[0] = '\0';
	s->helo_done = s->esmtp = false;
	s->authenticated = false;
	s->account_id = 0;
	s->user[0] = '\0';
}

bool smtp_auth_allowed(const struct smtp_session *s)
{
	if (s->which == SMTP_LISTENER_MX)
		return false;
	return conn_is_tls(s->c) ||
	       (conn_is_loopback(s->c) && config_bool(s->cfg, CFG_SERVER_ALLOW_PLAINTEXT_LOOPBACK));
}

const char *smtp_hostname(const struct smtp_session *s)
{
	const char *h = config_str(s->cfg, CFG_SERVER_HOSTNAME);
	return h[0] != '\0' ? h : s->srv->default_hostname;
}

enum smtp_outcome smtp_reply_dir_err(struct smtp_session *s, enum directory_err e, const char *what)
{
	switch (e) {
	case DIR_ETEMP:
		/* RFC 3463 X.4.3 "directory server failure": the database or
		 * the LDAP server behind the directory did not answer. */
		smtp_reply(s->c, 451, "4.4.3", "%s: temporary directory failure, try again later",
		           what);
		return SMTP_DONE;
	case DIR_EINVALID:
		smtp_reply(s->c, 501, "5.1.3", "%s: bad address syntax", what);
		return SMTP_BAD;
	default:
		smtp_reply(s->c, 550, "5.1.1", "%s: recipient address rejected: user unknown",
		           what);
		return SMTP_DONE;
	}
}

int smtp_sender_owned(struct smtp_session *s, const char *address)
{
	struct address a;
	const char *err;
	char key[ADDRESS_BUF_SIZE];
	if (address_parse(address, strlen(address), &a, &err) < 0)
		return 0;
	address_lookup_key(&a, key);
	if (strcmp(key, s->user) == 0)
		return 1;
	struct directory_resolution r = {0};
	enum directory_err e = directory_resolve(s->srv->dir, key, &r, NULL);
	int owned = e == DIR_ETEMP ? -1 : 0;
	for (size_t i = 0; e == DIR_OK && i < r.naccounts; i++)
		if (r.accounts[i] == s->account_id)
			owned = 1;
	directory_resolution_free(&r);
	return owned;
}

static void smtp_session_init(struct smtp_session *s, struct conn *c,
                              const struct smtp_listener_ctx *lc)
{
	memset(s, 0, sizeof(*s));
	s->c = c;
	s->srv = lc->srv;
	s->which = lc->which;
	s->cfg = config_current() != NULL ? config_current() : lc->srv->cfg;
	buf_init(&s->line, (size_t)config_uint(s->cfg, CFG_LIMITS_LINE_LENGTH));
}

static const char *smtp_listener_name(enum smtp_listener w)
{
	return w == SMTP_LISTENER_MX           ? "smtp"
	       : w == SMTP_LISTENER_SUBMISSION ? "submission"
	                                       : "submissions";
}

/* RFC 2920 lets a client send commands ahead of our replies (they are
 * flushed when we would wait for input). Past [limits] pipelined_commands
 * replies it has not read, it must read them before we read on. */
static void smtp_pipeline_bound(struct smtp_session *s, unsigned *ahead)
{
	if (conn_pending_input(s->c) == 0) {
		*ahead = 0;
		return;
	}
	if (++*ahead >= config_uint(s->cfg, CFG_LIMITS_PIPELINED_COMMANDS)) {
		conn_flush(s->c);
		*ahead = 0;
	}
}

void smtp_session(struct conn *c, void *ctx)
{
	struct smtp_session s;
	smtp_session_init(&s, c, ctx);
	log_set_session(conn_session_id(c));
	log_info("event=connect listener=%s ip=%s port=%u tls=%s", smtp_listener_name(s.which),
	         conn_peer_ip(c), conn_peer_port(c), conn_is_tls(c) ? "yes" : "no");
	smtp_reply(c, 220, NULL, "%s ESMTP Roost", smtp_hostname(&s));
	enum smtp_outcome o = SMTP_DONE;
	unsigned ahead = 0;
	while (o != SMTP_CLOSE && !s.quit) {
		o = smtp_step(&s);
		smtp_pipeline_bound(&s, &ahead);
		if (o == SMTP_BAD && ++s.bad_commands >= smtp_bad_limit(&s)) {
			smtp_reply(c, 421, "4.7.0", "%s Too many errors, closing connection",
			           smtp_hostname(&s));
			log_info("event=too_many_errors count=%u", s.bad_commands);
			o = SMTP_CLOSE;
		}
	}
	conn_flush(c);
	smtp_tx_reset(&s);
	buf_free(&s.line);
	log_info("event=session_end transactions=%u bad_commands=%u", s.transactions,
	         s.bad_commands);
}
