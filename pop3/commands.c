/* commands.c - the TRANSACTION state (RFC 1939 section 5) and QUIT. */
#include "pop3-private.h"

#include "log.h"
#include "store.h"

/* RETR/TOP read the blob in slices of this size, borrowing a pooled
 * connection per slice, so neither a 50 MB message nor a slow reader holds
 * memory or a connection for long. */
#define POP3_SLICE (256 * 1024)

/* The message a command's first argument names, or NULL after answering. */
static struct pop3_msg *pop3_msg_arg(struct pop3_session *s, const char *arg)
{
	size_t i;
	if (pop3_parse_msgnum(arg, s->md.n, &i) < 0) {
		pop3_reply_bad(s, "No such message");
		return NULL;
	}
	if (s->md.msgs[i].deleted) {
		pop3_reply_bad(s, "Message is deleted");
		return NULL;
	}
	return &s->md.msgs[i];
}

static void pop3_totals(const struct pop3_session *s, size_t *n_r, uint64_t *octets_r)
{
	*n_r = 0;
	*octets_r = 0;
	for (size_t i = 0; i < s->md.n; i++) {
		if (!s->md.msgs[i].deleted) {
			(*n_r)++;
			*octets_r += s->md.msgs[i].size;
		}
	}
}

void pop3_cmd_stat(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	size_t n;
	uint64_t octets;
	pop3_totals(s, &n, &octets);
	pop3_reply(s, "+OK %zu %llu", n, (unsigned long long)octets);
}

/* LIST and UIDL share their shape: one message, or all not deleted. */
static void pop3_scan_line(struct pop3_session *s, size_t i, bool uidl, const char *prefix)
{
	const struct pop3_msg *m = &s->md.msgs[i];
	if (uidl)
		pop3_reply(s, "%s%zu %u.%u", prefix, i + 1, s->md.uidvalidity, m->uid);
	else
		pop3_reply(s, "%s%zu %llu", prefix, i + 1, (unsigned long long)m->size);
}

static void pop3_listing(struct pop3_session *s, const struct pop3_command *cmd, bool uidl)
{
	if (cmd->nargs == 1) {
		const struct pop3_msg *m = pop3_msg_arg(s, cmd->args[0]);
		if (m != NULL)
			pop3_scan_line(s, (size_t)(m - s->md.msgs), uidl, "+OK ");
		return;
	}
	size_t n;
	uint64_t octets;
	pop3_totals(s, &n, &octets);
	pop3_reply(s, "+OK %zu messages (%llu octets)", n, (unsigned long long)octets);
	for (size_t i = 0; i < s->md.n; i++) {
		if (!s->md.msgs[i].deleted)
			pop3_scan_line(s, i, uidl, "");
	}
	pop3_reply(s, ".");
}

void pop3_cmd_list(struct pop3_session *s, const struct pop3_command *cmd)
{
	pop3_listing(s, cmd, false);
}

void pop3_cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd)
{
	pop3_listing(s, cmd, true);
}

/* Reads one slice on a connection borrowed for it. */
static enum store_err pop3_read_slice(struct pop3_session *s, const struct pop3_msg *m,
                                      uint64_t off, struct buf *out)
{
	PGconn *conn = db_pool_borrow(s->srv->pool, 5000);
	if (conn == NULL)
		return STORE_ETEMP;
	buf_reset(out);
	enum store_err e = store_message_read(conn, m->message_id, off, POP3_SLICE, out);
	db_pool_return(s->srv->pool, &conn);
	if (e == STORE_OK && out->len == 0)
		e = STORE_ENOTFOUND; /* shorter than listed: cannot happen to a blob */
	return e;
}

/* Sends the message after the +OK, starting with the first slice already in
 * raw. Once the +OK line is out, a failure can only end the connection (the
 * client could not tell a short message). */
static int pop3_send_message(struct pop3_session *s, const struct pop3_msg *m,
                             struct pop3_encoder *enc, struct buf *raw)
{
	struct buf out;
	buf_init(&out, BUF_NO_LIMIT);
	int ret = 0;
	for (uint64_t off = 0; off < m->raw_size && !enc->done; off += POP3_SLICE) {
		enum store_err e = off == 0 ? STORE_OK : pop3_read_slice(s, m, off, raw);
		if (e != STORE_OK) {
			log_error("event=pop3_retr_failed uid=%u offset=%llu error=\"%s\"", m->uid,
			          (unsigned long long)off, store_err_str(e));
			ret = -1;
			break;
		}
		buf_reset(&out);
		pop3_encode(enc, raw->data, raw->len, &out);
		if (conn_write(s->c, out.data, out.len) != CONN_OK) {
			ret = -1;
			break;
		}
	}
	if (ret == 0) {
		buf_reset(&out);
		pop3_encode_finish(enc, &out);
		conn_write(s->c, out.data, out.len);
	}
	buf_free(&out);
	return ret;
}

static void pop3_retrieve(struct pop3_session *s, struct pop3_msg *m, bool top, uint64_t lines)
{
	struct pop3_encoder enc;
	struct buf raw;
	buf_init(&raw, POP3_SLICE);
	/* The first slice before the +OK: a message IMAP expunged and the
	 * collector removed since login still gets a clean -ERR. */
	enum store_err e = pop3_read_slice(s, m, 0, &raw);
	if (e != STORE_OK) {
		pop3_reply_store_err(s, e, "message_read");
		buf_free(&raw);
		return;
	}
	pop3_encoder_init(&enc, top, lines);
	if (top)
		pop3_reply(s, "+OK Top of message follows");
	else
		pop3_reply(s, "+OK %llu octets", (unsigned long long)m->size);
	if (pop3_send_message(s, m, &enc, &raw) < 0)
		s->quit = true; /* mid-message: only closing keeps the client safe */
	else if (!top && !m->retrieved) {
		m->retrieved = true;
		s->retrieved++;
	}
	buf_free(&raw);
}

void pop3_cmd_retr(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_msg *m = pop3_msg_arg(s, cmd->args[0]);
	if (m != NULL)
		pop3_retrieve(s, m, false, 0);
}

void pop3_cmd_top(struct pop3_session *s, const struct pop3_command *cmd)
{
	uint64_t lines;
	if (pop3_parse_lines(cmd->args[1], &lines) < 0) {
		pop3_reply_bad(s, "Invalid number of lines");
		return;
	}
	struct pop3_msg *m = pop3_msg_arg(s, cmd->args[0]);
	if (m != NULL)
		pop3_retrieve(s, m, true, lines);
}

void pop3_cmd_dele(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_msg *m = pop3_msg_arg(s, cmd->args[0]);
	if (m == NULL)
		return;
	m->deleted = true;
	pop3_reply(s, "+OK Message %zu deleted", (size_t)(m - s->md.msgs) + 1);
}

void pop3_cmd_noop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK");
}

void pop3_cmd_rset(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	for (size_t i = 0; i < s->md.n; i++)
		s->md.msgs[i].deleted = false;
	size_t n;
	uint64_t octets;
	pop3_totals(s, &n, &octets);
	pop3_reply(s, "+OK Maildrop has %zu messages (%llu octets)", n, (unsigned long long)octets);
}

/* In TRANSACTION, QUIT enters the UPDATE state (RFC 1939 section 6). */
void pop3_cmd_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	s->quit = true;
	if (s->state == POP3_AUTHORIZATION) {
		pop3_reply(s, "+OK Bye");
		return;
	}
	PGconn *conn = pop3_db_borrow(s);
	if (conn == NULL)
		return;
	size_t removed = 0;
	int r = pop3_maildrop_update(conn, &s->md, s->srv->expire_days, &removed);
	pop3_db_return(s, &conn);
	char user[LOG_QUOTE_MAX];
	log_info("event=logout user=%s retrieved=%zu deleted=%zu result=%s",
	         log_quote(user, sizeof(user), s->account.address), s->retrieved, removed,
	         r == 0 ? "ok" : "failed");
	if (r < 0)
		pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages were not removed");
	else
		pop3_reply(s, "+OK Bye, %zu messages removed", removed);
}
