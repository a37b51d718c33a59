/* cmd-data.c - DATA and BDAT (RFC 5321 4.1.1.4, RFC 3030 CHUNKING), the
 * header fields Roost adds, the checks on the finished message and the hand
 * over to local delivery and the outbound queue.
 *
 * Choices (docs/protocols.md):
 *  - DATA lines ending in a bare LF are accepted and stored with CRLF, as
 *    Postfix does; but only CRLF "." CRLF ends the message, so a bare-LF
 *    dot (SMTP smuggling) is message text.
 *  - NUL bytes are refused (554 5.6.0) in DATA and BDAT: we offer no
 *    BINARYMIME and IMAP clients cannot take NULs. Every other byte of a
 *    BDAT chunk is stored exactly as sent.
 *  - A DATA line longer than [limits] line_length is skipped, the rest is
 *    read to the final dot and the message refused (554 5.6.0). An
 *    oversized message is read to its end too, then refused (552 5.3.4).
 *  - More than [smtp] max_hops Received: fields: 554 5.4.6 (a loop).
 *  - Added on top: Return-Path, Delivered-To (only when the transaction has
 *    exactly one local recipient: the blob is shared, as Dovecot's LMTP
 *    does) and Received; the outbound copy carries Received only. */
#include "smtp-private.h"

#include "log.h"
#include "smtp-reply.h"
#include "xalloc.h"

#include "outbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes gathered before they are handed to the store (hash and parser). */
#define SMTP_STAGE_SIZE (64 * 1024)
/* Room for the header fields we prepend. */
#define SMTP_PREPEND_MAX 4096

/* ---- the header fields we add ---- */

static void smtp_date(struct buf *out)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_append_str(out, date);
}

/* RFC 3848 protocol names (RFC 6531 UTF8SMTP when SMTPUTF8 was used). */
static const char *smtp_with(const struct smtp_session *s)
{
	static const char *const names[2][4] = {
	    {"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"},
	    {"UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA"},
	};
	if (!s->esmtp)
		return "SMTP";
	int i = (conn_is_tls(s->c) ? 1 : 0) + (s->authenticated ? 2 : 0);
	return names[s->tx.params.smtputf8 ? 1 : 0][i];
}

static void smtp_received(const struct smtp_session *s, struct buf *out)
{
	char helo[256];
	smtp_helo_sanitize(s->helo, helo, sizeof(helo));
	const char *ip = conn_peer_ip(s->c);
	bool v6 = strchr(ip, ':') != NULL;
	if (strcmp(ip, "local") == 0)
		buf_printf(out, "Received: from %s (local)\r\n", helo);
	else
		buf_printf(out, "Received: from %s ([%s%s])\r\n", helo, v6 ? "IPv6:" : "", ip);
	if (conn_is_tls(s->c)) {
		/* "TLSv1.3 TLS_AES_256_GCM_SHA384": version, then cipher */
		const char *tls = conn_tls_description(s->c);
		size_t v = strcspn(tls, " ");
		buf_printf(out, "\t(using %.*s with cipher %s)\r\n", (int)v, tls,
		           tls[v] != '\0' ? &tls[v + 1] : "unknown");
	}
	buf_printf(out, "\tby %s (Roost) with %s id %s\r\n", smtp_hostname(s), smtp_with(s),
	           s->tx.id);
	buf_append_char(out, '\t');
	if (s->tx.nrcpts == 1)
		buf_printf(out, "for <%s>; ", s->tx.rcpts[0].address);
	smtp_date(out);
	buf_append_str(out, "\r\n");
}

/* Return-Path, Delivered-To (one local recipient only), Received. */
static void smtp_local_prepend(const struct smtp_session *s, const struct buf *received,
                               struct buf *out)
{
	buf_printf(out, "Return-Path: <%s>\r\n", s->tx.from_str);
	const struct smtp_rcpt *only = NULL;
	size_t nlocal = 0;
	for (size_t i = 0; i < s->tx.nrcpts; i++)
		if (s->tx.rcpts[i].naccounts > 0)
			only = &s->tx.rcpts[i], nlocal++;
	if (nlocal == 1)
		buf_printf(out, "Delivered-To: %s\r\n", only->address);
	buf_append(out, received->data, received->len);
}

/* ---- the body ---- */

struct smtp_body *smtp_body_begin(struct smtp_session *s)
{
	struct smtp_body *b = xcalloc(1, sizeof(*b));
	b->max = config_uint(s->cfg, CFG_LIMITS_MESSAGE_SIZE);
	buf_init(&b->stage, SMTP_STAGE_SIZE + SMTP_PREPEND_MAX);
	struct buf received;
	buf_init(&received, SMTP_PREPEND_MAX);
	smtp_received(s, &received);
	if (s->tx.nlocal > 0) {
		struct mime_limits limits;
		config_mime_limits(s->cfg, &limits);
		b->in = store_incoming_new(b->max + 2 * SMTP_PREPEND_MAX, &limits);
		smtp_local_prepend(s, &received, &b->stage);
	}
	if (s->tx.nremote > 0) {
		b->want_remote = true;
		buf_init(&b->remote, b->max + SMTP_PREPEND_MAX);
		buf_append(&b->remote, received.data, received.len);
	}
	buf_free(&received);
	return b;
}

static void smtp_body_flush(struct smtp_body *b)
{
	if (b->in != NULL && b->stage.len > 0)
		store_incoming_write(b->in, b->stage.data, b->stage.len);
	buf_reset(&b->stage);
}

void smtp_body_write(struct smtp_body *b, const void *p, size_t n)
{
	if (n == 0 || b->too_big)
		return;
	if (memchr(p, '\0', n) != NULL)
		b->nul = true;
	if (n > b->max - b->size) {
		b->too_big = true;
		return;
	}
	b->size += n;
	if (!b->hs.done)
		smtp_header_scan_feed(&b->hs, p, n);
	if (b->want_remote)
		buf_append(&b->remote, p, n);
	if (b->in == NULL)
		return;
	if (b->stage.len + n > SMTP_STAGE_SIZE)
		smtp_body_flush(b);
	if (n >= SMTP_STAGE_SIZE)
		store_incoming_write(b->in, p, n);
	else
		buf_append(&b->stage, p, n);
}

void smtp_body_free(struct smtp_body **b)
{
	if (*b == NULL)
		return;
	store_incoming_free(&(*b)->in);
	buf_free(&(*b)->remote);
	buf_free(&(*b)->stage);
	free(*b);
	*b = NULL;
}

/* ---- checks on the finished message ---- */

struct smtp_from_check {
	struct smtp_session *s;
	int worst; /* 1 all owned, 0 one is not, -1 temporary failure */
};

static int smtp_from_one(void *ctx, const char *addr, size_t len)
{
	struct smtp_from_check *fc = ctx;
	char a[ADDRESS_BUF_SIZE];
	if (len >= sizeof(a)) {
		fc->worst = 0;
		return -1;
	}
	memcpy(a, addr, len);
	a[len] = '\0';
	int owned = smtp_sender_owned(fc->s, a);
	if (owned < fc->worst)
		fc->worst = owned;
	return 0;
}

/* The header From: on submission ([smtp] check_header_from). */
static bool smtp_check_header_from(struct smtp_session *s, const struct smtp_body *b,
                                   struct smtp_result *r)
{
	if (s->which == SMTP_LISTENER_MX || !config_bool(s->cfg, CFG_SMTP_CHECK_HEADER_FROM) ||
	    b->hs.from_fields == 0)
		return true;
	struct smtp_from_check fc = {s, 1};
	if (b->hs.from_cut || b->hs.from_fields > 1 ||
	    smtp_parse_address_list(b->hs.from, b->hs.from_len, smtp_from_one, &fc) <= 0)
		fc.worst = fc.worst < 0 ? -1 : 0;
	if (fc.worst > 0)
		return true;
	if (fc.worst < 0)
		*r = (struct smtp_result){451, "4.4.3",
		                          "Temporary directory failure, try again later"};
	else
		*r = (struct smtp_result){
		    553, "5.7.1", "Header From: address not owned by the authenticated user"};
	return false;
}

/* The refusals that do not need the database. */
static bool smtp_body_acceptable(struct smtp_session *s, const struct smtp_body *b,
                                 struct smtp_result *r)
{
	if (b->long_line)
		*r = (struct smtp_result){554, "5.6.0", "Message has a line longer than the limit"};
	else if (b->too_big)
		*r = (struct smtp_result){552, "5.3.4",
		                          "Message size exceeds fixed maximum message size"};
	else if (b->nul)
		*r = (struct smtp_result){554, "5.6.0",
		                          "NUL characters are not accepted in messages"};
	else if (b->hs.received > config_uint(s->cfg, CFG_SMTP_MAX_HOPS))
		*r = (struct smtp_result){554, "5.4.6", "Too many hops: mail loop detected"};
	else
		return smtp_check_header_from(s, b, r);
	return false;
}

/* ---- remote recipients ---- */

/* NOTIFY as outbound.h wants it: "SUCCESS,FAILURE"; NULL when absent. */
static char *smtp_notify_str(unsigned notify)
{
	static const char *const names[] = {"NEVER", "SUCCESS", "FAILURE", "DELAY"};
	if (notify == 0)
		return NULL;
	struct buf b;
	buf_init(&b, 64);
	for (unsigned i = 0; i < 4; i++)
		if (notify & (1u << i))
			buf_printf(&b, "%s%s", b.len > 0 ? "," : "", names[i]);
	return buf_steal(&b, NULL);
}

/* ORCPT "addr-type;address": as given, or for the forwards of an alias the
 * address the client gave us (RFC 3461 6.1). */
static char *smtp_orcpt_str(const struct smtp_rcpt *r, size_t j)
{
	struct buf b;
	buf_init(&b, 2 * SMTP_ORCPT_MAX);
	if (r->params.orcpt[0] != '\0') {
		size_t type_len = strcspn(r->params.orcpt, ";");
		buf_append(&b, r->params.orcpt, type_len);
		buf_printf(&b, ";%s", r->params.orcpt_addr);
	} else if (strcmp(r->remote[j], r->address) != 0) {
		buf_printf(&b, "rfc822;%s", r->address);
	} else {
		return NULL;
	}
	return buf_steal(&b, NULL);
}

struct smtp_rcpt_lists {
	const char **rcpts;
	char **notify, **orcpt;
	size_t n;
};

static void smtp_rcpt_lists_build(const struct smtp_tx *tx, struct smtp_rcpt_lists *l)
{
	size_t total = 0;
	for (size_t i = 0; i < tx->nrcpts; i++)
		total += tx->rcpts[i].nremote;
	l->rcpts = xcalloc(total, sizeof(*l->rcpts));
	l->notify = xcalloc(total, sizeof(*l->notify));
	l->orcpt = xcalloc(total, sizeof(*l->orcpt));
	l->n = 0;
	for (size_t i = 0; i < tx->nrcpts; i++) {
		const struct smtp_rcpt *r = &tx->rcpts[i];
		for (size_t j = 0; j < r->nremote; j++, l->n++) {
			l->rcpts[l->n] = r->remote[j];
			l->notify[l->n] = smtp_notify_str(r->params.notify);
			l->orcpt[l->n] = smtp_orcpt_str(r, j);
		}
	}
}

static void smtp_rcpt_lists_free(struct smtp_rcpt_lists *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->notify[i]);
		free(l->orcpt[i]);
	}
	free(l->rcpts);
	free(l->notify);
	free(l->orcpt);
}

/* Remote recipients (relayed by an authenticated user, or forwards of a
 * local alias) into the outbound queue. Runs after local delivery has
 * committed: if the queue fails now the client gets 451 and retries the
 * whole message, so local recipients may see it twice; a duplicate is
 * better than a loss. */
static void smtp_enqueue_remote(struct smtp_session *s, struct smtp_body *b, struct smtp_result *r)
{
	static const char *const rets[] = {NULL, "FULL", "HDRS"};
	struct smtp_rcpt_lists l;
	smtp_rcpt_lists_build(&s->tx, &l);
	struct outbound_message m = {
	    .sender = s->tx.from_str,
	    .recipients = l.rcpts,
	    .nrecipients = l.n,
	    .notify = (const char *const *)l.notify,
	    .orcpt = (const char *const *)l.orcpt,
	    .envid = s->tx.params.has_envid ? s->tx.params.envid : NULL,
	    .dsn_ret = rets[s->tx.params.ret],
	    .account_id = s->authenticated ? s->account_id : 0,
	    .smtputf8 = s->tx.params.smtputf8,
	    .data = b->remote.data,
	    .len = b->remote.len,
	};
	int64_t qid = 0;
	const char *err = "";
	if (outbound_enqueue(s->srv->pool, &m, &qid, &err) < 0) {
		log_error("event=enqueue status=failed error=\"%s\"", err);
		*r = (struct smtp_result){
		    451, "4.3.0", "Temporary failure queueing the message, try again later"};
	} else {
		log_info("event=enqueue queue_id=%lld rcpts=%zu", (long long)qid, l.n);
	}
	smtp_rcpt_lists_free(&l);
}

enum smtp_outcome smtp_body_finish(struct smtp_session *s)
{
	struct smtp_body *b = s->tx.body;
	struct smtp_result r = {250, "2.0.0", "Ok"};
	smtp_body_flush(b);
	if (b->in != NULL)
		store_incoming_finish(b->in);
	if (smtp_body_acceptable(s, b, &r) && b->in != NULL)
		smtp_deliver_local(s, b->in, &r);
	if (r.code == 250 && b->want_remote)
		smtp_enqueue_remote(s, b, &r);
	char q[LOG_QUOTE_MAX];
	log_info("event=message id=%s from=%s rcpts=%zu size=%llu bare_lf=%s status=%u", s->tx.id,
	         log_quote(q, sizeof(q), s->tx.from_str), s->tx.nrcpts, (unsigned long long)b->size,
	         b->bare_lf ? "yes" : "no", r.code);
	if (r.code == 250) {
		smtp_reply(s->c, 250, "2.0.0", "Ok: queued as %s", s->tx.id);
		s->transactions++;
	} else {
		smtp_reply(s->c, r.code, r.esc, "%s", r.text);
	}
	smtp_tx_reset(s);
	return SMTP_DONE;
}

/* ---- DATA ---- */

/* One line of DATA (without its line end); false at the final dot. */
static bool smtp_data_line(struct smtp_body *b, const char *line, size_t len, bool bare_lf,
                           bool *prev_crlf)
{
	/* Only CRLF "." CRLF ends the message (no smuggling with bare LFs). */
	if (len == 1 && line[0] == '.' && !bare_lf && *prev_crlf)
		return false;
	if (len > 1 && line[0] == '.') /* dot-unstuffing */
		smtp_body_write(b, line + 1, len - 1);
	else
		smtp_body_write(b, line, len);
	smtp_body_write(b, "\r\n", 2);
	b->bare_lf = b->bare_lf || bare_lf;
	*prev_crlf = !bare_lf;
	return true;
}

enum smtp_outcome smtp_cmd_data(struct smtp_session *s, const char *args, size_t len)
{
	s->tx.body = smtp_body_begin(s);
	smtp_reply(s->c, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	size_t max = (size_t)config_uint(s->cfg, CFG_LIMITS_LINE_LENGTH);
	s->line.max = max;
	bool prev_crlf = true, more = true;
	while (more) {
		bool bare_lf = false;
		enum conn_status st = conn_read_line(s->c, &s->line, max, 0, &bare_lf);
		if (st == CONN_TOO_LONG) {
			s->tx.body->long_line = true;
			continue;
		}
		if (st != CONN_OK)
			return smtp_conn_failed(s, st);
		more = smtp_data_line(s->tx.body, s->line.data != NULL ? s->line.data : "",
		                      s->line.len, bare_lf, &prev_crlf);
	}
	return smtp_body_finish(s);
}

/* ---- BDAT ---- */

static int smtp_bdat_sink(void *ctx, const void *p, size_t n)
{
	smtp_body_write(ctx, p, n);
	return 0;
}

/* Why this chunk cannot be taken (it is still read), or NULL. */
static const char *smtp_bdat_refusal(struct smtp_session *s, unsigned *code, const char **esc)
{
	*code = 503, *esc = "5.5.1";
	if (!s->helo_done)
		return "Send HELO/EHLO first";
	if (!s->tx.active)
		return "Need MAIL command first";
	if (s->tx.nrcpts == 0 && !s->tx.bdat) {
		*code = 554;
		return "No valid recipients";
	}
	return NULL;
}

enum smtp_outcome smtp_cmd_bdat(struct smtp_session *s, const char *args, size_t len)
{
	uint64_t size;
	bool last;
	if (smtp_parse_bdat(args, len, &size, &last) < 0) {
		/* Without a size the chunk cannot be skipped: the stream is lost. */
		smtp_reply(s->c, 501, "5.5.4", "Syntax: BDAT size [LAST]; closing connection");
		return SMTP_CLOSE;
	}
	unsigned code;
	const char *esc;
	const char *why = smtp_bdat_refusal(s, &code, &esc);
	uint64_t max = config_uint(s->cfg, CFG_LIMITS_MESSAGE_SIZE);
	uint64_t so_far = s->tx.body != NULL ? s->tx.body->size : 0;
	if (size > 2 * max - so_far) {
		/* Far past the limit: do not read gigabytes just to stay in step. */
		smtp_reply(s->c, 552, "5.3.4",
		           "Message size exceeds fixed maximum message size; closing connection");
		return SMTP_CLOSE;
	}
	if (why == NULL && !s->tx.bdat) {
		s->tx.bdat = true;
		s->tx.body = smtp_body_begin(s);
	}
	enum conn_status st =
	    conn_read_stream(s->c, size, why == NULL ? smtp_bdat_sink : NULL, s->tx.body);
	if (st != CONN_OK)
		return smtp_conn_failed(s, st);
	if (why != NULL) {
		smtp_reply(s->c, code, esc, "%s", why);
		return SMTP_BAD;
	}
	if (!last && s->tx.body->too_big) {
		smtp_reply(s->c, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return SMTP_DONE;
	}
	if (!last) {
		smtp_reply(s->c, 250, "2.0.0", "%llu octets received", (unsigned long long)size);
		return SMTP_DONE;
	}
	return smtp_body_finish(s);
}
