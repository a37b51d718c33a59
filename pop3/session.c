/* session.c - one POP3 connection: the command loop, the command table and
 * its generic checks, replies and error mapping. */
#include "pop3-private.h"

#include "log.h"
#include "store.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define POP3_BORROW_MS   5000
#define POP3_ARENA_BLOCK 4096
/* Longest reply line we make (RFC 2449 allows 512 octets with CRLF). */
#define POP3_REPLY_MAX 510

struct pop3_cmd_def {
	const char *name;
	pop3_cmd_fn *fn;
	unsigned flags;
	size_t min_args, max_args;
};

#define POP3_BOTH (POP3_CMD_AUTHZ | POP3_CMD_TRANS)

/* PASS takes the rest of the line (cmd->rest), so its arity is not checked
 * on the split arguments. */
static const struct pop3_cmd_def pop3_commands[] = {
    {"CAPA", pop3_cmd_capa, POP3_BOTH, 0, 0},
    {"QUIT", pop3_cmd_quit, POP3_BOTH, 0, 0},
    {"STLS", pop3_cmd_stls, POP3_CMD_AUTHZ, 0, 0},
    {"USER", pop3_cmd_user, POP3_CMD_AUTHZ | POP3_CMD_SECURE, 1, 1},
    {"PASS", pop3_cmd_pass, POP3_CMD_AUTHZ | POP3_CMD_SECURE, 0, SIZE_MAX},
    {"AUTH", pop3_cmd_auth, POP3_CMD_AUTHZ | POP3_CMD_SECURE, 0, 2},
    {"STAT", pop3_cmd_stat, POP3_CMD_TRANS, 0, 0},
    {"LIST", pop3_cmd_list, POP3_CMD_TRANS, 0, 1},
    {"UIDL", pop3_cmd_uidl, POP3_CMD_TRANS, 0, 1},
    {"RETR", pop3_cmd_retr, POP3_CMD_TRANS, 1, 1},
    {"TOP", pop3_cmd_top, POP3_CMD_TRANS, 2, 2},
    {"DELE", pop3_cmd_dele, POP3_CMD_TRANS, 1, 1},
    {"NOOP", pop3_cmd_noop, POP3_CMD_TRANS, 0, 0},
    {"RSET", pop3_cmd_rset, POP3_CMD_TRANS, 0, 0},
};

const struct config *pop3_cfg(const struct pop3_session *s)
{
	const struct config *cur = config_current();
	return cur != NULL ? cur : s->srv->cfg;
}

void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	struct buf text;
	buf_init(&text, POP3_REPLY_MAX);
	va_start(ap, fmt);
	buf_vprintf(&text, fmt, ap);
	va_end(ap);
	buf_append(&text, "\r\n", 2);
	conn_write(s->c, text.data, text.len);
	buf_free(&text);
}

void pop3_reply_bad(struct pop3_session *s, const char *text)
{
	s->bad_commands++;
	pop3_reply(s, "-ERR %s", text);
}

void pop3_reply_internal(struct pop3_session *s, const char *what)
{
	char id[24];
	log_new_id("err", id, sizeof(id));
	log_error("event=pop3_internal_error id=%s what=%s", id, what);
	pop3_reply(s, "-ERR [SYS/TEMP] Internal error, try again later (%s)", id);
}

void pop3_reply_store_err(struct pop3_session *s, enum store_err e, const char *what)
{
	switch (e) {
	case STORE_ETEMP:
		pop3_reply(s, "-ERR [SYS/TEMP] Database unavailable, try again later");
		break;
	case STORE_ENOTFOUND:
		pop3_reply(s, "-ERR Message or mailbox no longer exists");
		break;
	default:
		pop3_reply_internal(s, what);
		break;
	}
}

bool pop3_secure(const struct pop3_session *s)
{
	return conn_is_tls(s->c) || (conn_is_loopback(s->c) &&
	                             config_bool(pop3_cfg(s), CFG_SERVER_ALLOW_PLAINTEXT_LOOPBACK));
}

PGconn *pop3_db_borrow(struct pop3_session *s)
{
	PGconn *conn = db_pool_borrow(s->srv->pool, POP3_BORROW_MS);
	if (conn == NULL)
		pop3_reply(s, "-ERR [SYS/TEMP] Database unavailable, try again later");
	return conn;
}

void pop3_db_return(struct pop3_session *s, PGconn **conn)
{
	if (*conn != NULL)
		db_pool_return(s->srv->pool, conn);
}

static const struct pop3_cmd_def *pop3_cmd_find(const char *verb)
{
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++) {
		if (strcmp(pop3_commands[i].name, verb) == 0)
			return &pop3_commands[i];
	}
	return NULL;
}

/* The generic step of STYLE.md: state, transport security and arity are
 * checked here, never in the handlers. */
static void pop3_dispatch(struct pop3_session *s, const struct pop3_command *cmd)
{
	const struct pop3_cmd_def *def = pop3_cmd_find(cmd->verb);
	unsigned state = s->state == POP3_AUTHORIZATION ? POP3_CMD_AUTHZ : POP3_CMD_TRANS;
	if (def == NULL)
		pop3_reply_bad(s, "Unknown command");
	else if ((def->flags & state) == 0)
		pop3_reply_bad(s, s->state == POP3_AUTHORIZATION ? "Not logged in"
		                                                 : "Already logged in");
	else if ((def->flags & POP3_CMD_SECURE) != 0 && !pop3_secure(s))
		pop3_reply_bad(s, "[AUTH] Plaintext authentication disallowed on non-secure "
		                  "connections, use STLS first");
	else if (cmd->nargs < def->min_args || cmd->nargs > def->max_args)
		pop3_reply_bad(s, "Wrong number of arguments");
	else
		def->fn(s, cmd);
}

static unsigned pop3_bad_limit(const struct pop3_session *s)
{
	return (unsigned)config_uint(pop3_cfg(s), s->state == POP3_AUTHORIZATION
	                                              ? CFG_LIMITS_BAD_COMMANDS_PREAUTH
	                                              : CFG_LIMITS_BAD_COMMANDS);
}

static size_t pop3_line_limit(const struct pop3_session *s)
{
	return (size_t)config_uint(pop3_cfg(s), s->state == POP3_AUTHORIZATION
	                                            ? CFG_LIMITS_LINE_LENGTH_PREAUTH
	                                            : CFG_LIMITS_LINE_LENGTH);
}

/* Ends the session on a read that did not give a line; false to stop. */
static bool pop3_read_failed(struct pop3_session *s, enum conn_status st)
{
	switch (st) {
	case CONN_TOO_LONG:
		pop3_reply_bad(s, "Line too long");
		return true;
	case CONN_TIMEOUT:
		/* RFC 1939 section 3: autologout, without entering UPDATE. */
		pop3_reply(s, "-ERR Autologout; idle for too long");
		break;
	case CONN_STOPPING:
		pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down, try again later");
		break;
	default:
		break;
	}
	log_info("event=pop3_end reason=%s", conn_status_str(st));
	return false;
}

static void pop3_step(struct pop3_session *s)
{
	struct pop3_command cmd;
	const char *err;
	if (pop3_command_parse(s->line.data, s->line.len, s->cmd_arena, &cmd, &err) < 0)
		pop3_reply_bad(s, err);
	else
		pop3_dispatch(s, &cmd);
	/* The line may have held a password (PASS, AUTH). */
	if (cmd.copy != NULL)
		explicit_bzero(cmd.copy, cmd.copy_len);
	explicit_bzero(s->line.data, s->line.len);
	arena_reset(s->cmd_arena);
}

static void pop3_loop(struct pop3_session *s)
{
	while (!s->quit) {
		size_t max = pop3_line_limit(s);
		s->line.max = max;
		enum conn_status st = conn_read_line(s->c, &s->line, max, CONN_NEW_REQUEST, NULL);
		if (st != CONN_OK && !pop3_read_failed(s, st))
			return;
		if (st == CONN_OK)
			pop3_step(s);
		if (s->bad_commands >= pop3_bad_limit(s)) {
			pop3_reply(s, "-ERR Too many bad commands, closing connection");
			log_info("event=pop3_end reason=bad_commands count=%u", s->bad_commands);
			return;
		}
	}
}

void pop3_session(struct conn *c, void *ctx)
{
	struct pop3_session s = {
	    .srv = ctx,
	    .c = c,
	    .state = POP3_AUTHORIZATION,
	    .cmd_arena = arena_new(POP3_ARENA_BLOCK),
	};
	buf_init(&s.line, BUF_NO_LIMIT);
	log_set_session(conn_session_id(c));
	pop3_reply(&s, "+OK Roost POP3 server ready");
	pop3_loop(&s);
	if (s.locked)
		pop3_lock_release(&s.srv->locks, s.md.mailbox_id);
	pop3_maildrop_free(&s.md);
	explicit_bzero(s.user, sizeof(s.user));
	buf_free(&s.line);
	arena_destroy(&s.cmd_arena);
}
