/* imap-session.c - one IMAP connection: the server state, session I/O, the
 * command loop and the generic checks of the command table. */
#include "imap-private.h"

#include "log.h"
#include "xalloc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define IMAP_BORROW_MS   5000
#define IMAP_ARENA_BLOCK 8192
#define IMAP_TAG_MAX     64
/* The session arena holds little (the command arena does the work): a
 * small block keeps an idle session small. */
#define IMAP_SESSION_ARENA_BLOCK 1024
/* A command line buffer grown past this is given back after the command. */
#define IMAP_LINE_KEEP 1024

int imap_server_new(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                    struct notifier *notifier, struct imap_server **srv_r, const char **error_r)
{
	if (cfg == NULL || pool == NULL || dir == NULL) {
		*error_r = "imap needs a config, a database pool and a directory";
		return -1;
	}
	struct imap_server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->pool = pool;
	srv->dir = dir;
	srv->notifier = notifier;
	*srv_r = srv;
	return 0;
}

void imap_server_free(struct imap_server **srv)
{
	free(*srv);
	*srv = NULL;
}

const struct config *imap_cfg(const struct imap_session *s)
{
	const struct config *cur = config_current();
	return cur != NULL ? cur : s->srv->cfg;
}

bool imap_secure(const struct imap_session *s)
{
	return conn_is_tls(s->c) || (conn_is_loopback(s->c) &&
	                             config_bool(imap_cfg(s), CFG_SERVER_ALLOW_PLAINTEXT_LOOPBACK));
}

/* ---- I/O ---- */

enum conn_status imap_io_write(struct imap_session *s, const void *p, size_t n)
{
	/* With COMPRESS the filter's own buffer comes first: n bounds what it
	 * can add to the conn's. */
	if (s->db_lent != NULL && *s->db_lent != NULL && conn_write_would_flush(s->c, n))
		db_pool_return(s->srv->pool, s->db_lent);
	if (s->filter != NULL)
		return s->filter->write(s->filter->ctx, s->c, p, n);
	return conn_write(s->c, p, n);
}

enum conn_status imap_io_flush(struct imap_session *s)
{
	if (s->filter != NULL)
		return s->filter->flush(s->filter->ctx, s->c);
	return conn_flush(s->c);
}

enum conn_status imap_io_read_line(struct imap_session *s, struct buf *line, size_t max_len,
                                   unsigned flags, bool *bare_lf_r)
{
	if (s->filter != NULL)
		return s->filter->read_line(s->filter->ctx, s->c, line, max_len, flags, bare_lf_r);
	return conn_read_line(s->c, line, max_len, flags, bare_lf_r);
}

enum conn_status imap_io_read_stream(struct imap_session *s, uint64_t n,
                                     int (*sink)(void *ctx, const void *p, size_t len), void *ctx)
{
	if (s->filter != NULL)
		return s->filter->read_stream(s->filter->ctx, s->c, n, sink, ctx);
	return conn_read_stream(s->c, n, sink, ctx);
}

size_t imap_io_pending_input(struct imap_session *s)
{
	if (s->filter != NULL)
		return s->filter->pending_input(s->filter->ctx, s->c);
	return conn_pending_input(s->c);
}

void imap_io_idle(struct imap_session *s)
{
	if (s->filter != NULL)
		s->filter->idle(s->filter->ctx);
}

/* ---- database ---- */

PGconn *imap_db_borrow(struct imap_cmd *cmd)
{
	PGconn *conn = db_pool_borrow(cmd->s->srv->pool, IMAP_BORROW_MS);
	if (conn == NULL)
		imap_reply_no(cmd, "%s", IMAP_DB_UNAVAILABLE);
	return conn;
}

void imap_db_return(struct imap_session *s, PGconn **conn)
{
	if (s->db_lent == conn)
		s->db_lent = NULL;
	if (*conn != NULL)
		db_pool_return(s->srv->pool, conn);
}

void imap_db_lend(struct imap_session *s, PGconn **conn)
{
	s->db_lent = conn;
}

PGconn *imap_db_again(struct imap_session *s, PGconn **conn)
{
	if (*conn == NULL && (*conn = db_pool_borrow(s->srv->pool, IMAP_BORROW_MS)) == NULL)
		log_warn("event=imap_db_again_failed");
	return *conn;
}

enum store_err imap_mailbox_get(struct imap_session *s, const char *name,
                                struct store_mailbox *mb_r)
{
	PGconn *conn = db_pool_borrow(s->srv->pool, IMAP_BORROW_MS);
	if (conn == NULL)
		return STORE_ETEMP;
	enum store_err e = store_mailbox_get(conn, s->account.id, name, mb_r);
	db_pool_return(s->srv->pool, &conn);
	return e;
}

/* ---- the command loop ---- */

static size_t session_line_limit(const struct imap_session *s)
{
	return (size_t)config_uint(imap_cfg(s), s->state == IMAP_STATE_NOTAUTH
	                                            ? CFG_LIMITS_LINE_LENGTH_PREAUTH
	                                            : CFG_LIMITS_LINE_LENGTH);
}

static unsigned session_bad_limit(const struct imap_session *s)
{
	return (unsigned)config_uint(imap_cfg(s), s->state == IMAP_STATE_NOTAUTH
	                                              ? CFG_LIMITS_BAD_COMMANDS_PREAUTH
	                                              : CFG_LIMITS_BAD_COMMANDS);
}

/* tag = 1*<any ASTRING-CHAR except "+">. */
static int parse_tag(struct imap_cmd *cmd)
{
	const struct buf *l = &cmd->s->line;
	size_t start = cmd->pos;
	while (cmd->pos < l->len && cmd->pos - start <= IMAP_TAG_MAX) {
		unsigned char c = (unsigned char)l->data[cmd->pos];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\+", c) != NULL)
			break;
		cmd->pos++;
	}
	if (cmd->pos == start || cmd->pos - start > IMAP_TAG_MAX || imap_arg_sp(cmd) < 0)
		return -1;
	cmd->tag = arena_memdup0(cmd->arena, l->data + start, cmd->pos - 1 - start);
	return 0;
}

/* The command name, with "UID " joined to the next word. */
static const char *parse_name(struct imap_cmd *cmd)
{
	const char *w1, *w2;
	if (imap_arg_atom(cmd, &w1) < 0)
		return NULL;
	if (strcasecmp(w1, "UID") != 0)
		return w1;
	if (imap_arg_sp(cmd) < 0 || imap_arg_atom(cmd, &w2) < 0)
		return NULL;
	return arena_printf(cmd->arena, "UID %s", w2);
}

static unsigned state_flag(enum imap_state st)
{
	switch (st) {
	case IMAP_STATE_NOTAUTH:
		return IMAP_CMD_NOTAUTH;
	case IMAP_STATE_AUTH:
		return IMAP_CMD_AUTH;
	default:
		return IMAP_CMD_SELECTED;
	}
}

static const char *state_error(enum imap_state st, unsigned flags)
{
	if (st == IMAP_STATE_NOTAUTH)
		return "Log in first";
	if ((flags & IMAP_CMD_NOTAUTH) != 0)
		return "Already logged in";
	return "Select a mailbox first";
}

static void dispatch(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *name = parse_name(cmd);
	const struct imap_cmd_def *def = name != NULL ? imap_cmd_find(name) : NULL;
	if (name == NULL || def == NULL) {
		imap_reply_bad(cmd, "Unknown command");
		imap_arg_skip_rest(cmd);
		return;
	}
	cmd->def = def;
	cmd->name = def->name;
	cmd->uid = (def->flags & IMAP_CMD_UID) != 0;
	if ((def->flags & state_flag(s->state)) == 0) {
		imap_reply_bad(cmd, "%s", state_error(s->state, def->flags));
		imap_arg_skip_rest(cmd);
		return;
	}
	if (def->fn(cmd) < 0) {
		if (!cmd->replied) {
			if (cmd->error_code != NULL)
				imap_reply_bad(cmd, "[%s] %s", cmd->error_code,
				               cmd->error != NULL ? cmd->error : "Syntax error");
			else
				imap_reply_bad(cmd, "%s",
				               cmd->error != NULL ? cmd->error : "Syntax error");
		}
		imap_arg_skip_rest(cmd);
	}
}

static void step(struct imap_session *s, struct arena *arena)
{
	struct imap_cmd cmd = {.s = s, .arena = arena, .total = s->line.len};
	if (parse_tag(&cmd) < 0) {
		/* Untagged: the "* BAD" is the whole reply to it. */
		s->bad_commands++;
		imap_write_str(s, "* BAD Missing or invalid tag\r\n");
		cmd.replied = true;
		cmd.result = "BAD";
		imap_arg_skip_rest(&cmd);
	} else {
		dispatch(&cmd);
		/* A loan (imap_db_lend()) points into the command's frame: it
		 * must have ended with it, through imap_db_return(). */
		assert(s->db_lent == NULL);
	}
	if (!cmd.replied && !s->logout)
		imap_reply_internal(&cmd, "no_reply");
	if (cmd.result != NULL && strcmp(cmd.result, "OK") != 0)
		log_debug("event=imap_command cmd=%s result=%s", cmd.name != NULL ? cmd.name : "-",
		          cmd.result);
	/* The line may have held a password (LOGIN). */
	explicit_bzero(s->line.data, s->line.len);
	if (s->line.cap > IMAP_LINE_KEEP)
		buf_free(&s->line);
}

/* Says goodbye on a read that did not give a line; false to end. */
static bool read_failed(struct imap_session *s, enum conn_status st)
{
	switch (st) {
	case CONN_TOO_LONG:
		s->bad_commands++;
		imap_write_str(s, "* BAD [TOOBIG] Command line too long\r\n");
		return true;
	case CONN_TIMEOUT:
		imap_write_str(s, "* BYE Autologout; idle for too long\r\n");
		break;
	case CONN_STOPPING:
		imap_write_str(s, "* BYE [UNAVAILABLE] Server shutting down, try again later\r\n");
		break;
	default:
		break;
	}
	imap_io_flush(s);
	log_info("event=imap_end reason=%s", conn_status_str(st));
	return false;
}

/* The command arena exists only while a command runs: an idle session
 * holds no block of it. */
static void loop(struct imap_session *s)
{
	while (!s->logout) {
		size_t max = session_line_limit(s);
		s->line.max = max;
		enum conn_status st = imap_io_read_line(s, &s->line, max, CONN_NEW_REQUEST, NULL);
		if (st != CONN_OK && !read_failed(s, st))
			break;
		if (st == CONN_OK) {
			struct arena *arena = arena_new(IMAP_ARENA_BLOCK);
			step(s, arena);
			arena_destroy(&arena);
		}
		if (s->bad_commands >= session_bad_limit(s)) {
			imap_write_str(s, "* BYE Too many bad commands, closing connection\r\n");
			log_info("event=imap_end reason=bad_commands count=%u", s->bad_commands);
			break;
		}
		if (imap_io_pending_input(s) == 0 && imap_io_flush(s) != CONN_OK)
			break;
	}
	imap_io_flush(s);
}

static void greeting(struct imap_session *s)
{
	struct buf caps;
	buf_init(&caps, BUF_NO_LIMIT);
	imap_capabilities(s, &caps);
	imap_printf(s, "* OK [CAPABILITY%s] Roost IMAP server ready\r\n", buf_cstr(&caps));
	buf_free(&caps);
}

void imap_session(struct conn *c, void *ctx)
{
	struct imap_session s = {
	    .srv = ctx,
	    .c = c,
	    .state = IMAP_STATE_NOTAUTH,
	    .arena = arena_new(IMAP_SESSION_ARENA_BLOCK),
	};
	buf_init(&s.line, BUF_NO_LIMIT);
	log_set_session(conn_session_id(c));
	log_debug("event=imap_start tls=%s", conn_is_tls(c) ? "yes" : "no");
	greeting(&s);
	loop(&s);
	imap_view_close(&s);
	free(s.searchres);
	if (s.filter != NULL) {
		imap_io_flush(&s);
		s.filter->free(s.filter->ctx);
	}
	buf_free(&s.line);
	arena_destroy(&s.arena);
	explicit_bzero(&s.account, sizeof(s.account));
}
