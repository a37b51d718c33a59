/* dsn.c - delivery status notifications (RFC 3461, RFC 3464): built as
 * multipart/report and sent to the original sender. */
#include "outbound-private.h"

#include "log.h"
#include "store.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define DSN_BORROW_TIMEOUT_MS 10000

bool dsn_wanted(const char *notify, enum dsn_action action)
{
	if (notify == NULL || notify[0] == '\0')
		return action != DSN_RELAYED;
	if (strcasestr(notify, "NEVER") != NULL)
		return false;
	const char *word = action == DSN_FAILED    ? "FAILURE"
	                   : action == DSN_DELAYED ? "DELAY"
	                                           : "SUCCESS";
	return strcasestr(notify, word) != NULL;
}

static void dsn_date(time_t t, char *out, size_t n)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static const char *dsn_action_word(enum dsn_action a)
{
	return a == DSN_FAILED ? "failed" : a == DSN_DELAYED ? "delayed" : "relayed";
}

static void dsn_human(enum dsn_action action, const struct dsn_rcpt *r, size_t n, struct buf *out)
{
	if (action == DSN_FAILED)
		buf_append_str(out, "Your message could not be delivered to the following "
		                    "recipients. This is a permanent error.\r\n\r\n");
	else if (action == DSN_DELAYED)
		buf_append_str(out, "Your message has not been delivered yet to the following "
		                    "recipients. Delivery will be retried; you do not need to "
		                    "send it again.\r\n\r\n");
	else
		buf_append_str(out, "Your message was relayed to the following recipients' mail "
		                    "servers.\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		buf_printf(out, "  <%s>", r[i].rcpt->address);
		if (r[i].diagnostic != NULL)
			buf_printf(out, ": %s", r[i].diagnostic);
		buf_append_str(out, "\r\n");
	}
}

static void dsn_status_fields(const char *reporting_mta, const struct queue_entry *e,
                              enum dsn_action action, const struct dsn_rcpt *r, size_t n,
                              time_t now, struct buf *out)
{
	char date[64];
	if (e->envid != NULL)
		buf_printf(out, "Original-Envelope-Id: %s\r\n", e->envid);
	buf_printf(out, "Reporting-MTA: dns; %s\r\n", reporting_mta);
	dsn_date(e->created_at, date, sizeof(date));
	buf_printf(out, "Arrival-Date: %s\r\n", date);
	dsn_date(now, date, sizeof(date));
	for (size_t i = 0; i < n; i++) {
		buf_append_str(out, "\r\n");
		if (r[i].rcpt->orcpt != NULL)
			buf_printf(out, "Original-Recipient: %s\r\n", r[i].rcpt->orcpt);
		buf_printf(out, "Final-Recipient: rfc822; %s\r\n", r[i].rcpt->address);
		buf_printf(out, "Action: %s\r\nStatus: %s\r\n", dsn_action_word(action),
		           r[i].status);
		if (r[i].remote_mta != NULL)
			buf_printf(out, "Remote-MTA: dns; %s\r\n", r[i].remote_mta);
		if (r[i].diagnostic != NULL)
			buf_printf(out, "Diagnostic-Code: smtp; %s\r\n", r[i].diagnostic);
		buf_printf(out, "Last-Attempt-Date: %s\r\n", date);
	}
}

/* The original: whole with RET=FULL, else its header only. */
static void dsn_original(const struct queue_entry *e, struct buf *out)
{
	bool full = e->dsn_ret != NULL && strcmp(e->dsn_ret, "FULL") == 0;
	const char *d = e->data.data != NULL ? e->data.data : "";
	size_t len = e->data.len;
	if (!full) {
		const char *end = memmem(d, len, "\r\n\r\n", 4);
		len = end != NULL ? (size_t)(end - d) + 2 : len;
	}
	buf_printf(out, "Content-Type: %s\r\n\r\n",
	           full ? "message/rfc822" : "text/rfc822-headers");
	buf_append(out, d, len);
	if (len > 0 && d[len - 1] != '\n')
		buf_append_str(out, "\r\n");
}

void dsn_build(const char *reporting_mta, const struct queue_entry *e, enum dsn_action action,
               const struct dsn_rcpt *r, size_t n, time_t now, struct buf *out)
{
	char date[64], boundary[48], msgid[32];
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)now ^ (uint64_t)e->id;
	snprintf(boundary, sizeof(boundary), "=_roost_dsn_%016llx", (unsigned long long)rnd);
	snprintf(msgid, sizeof(msgid), "%016llx", (unsigned long long)rnd);
	dsn_date(now, date, sizeof(date));
	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", reporting_mta);
	buf_printf(out, "To: <%s>\r\n", e->sender);
	buf_printf(out, "Subject: %s\r\n",
	           action == DSN_FAILED    ? "Undelivered Mail Returned to Sender"
	           : action == DSN_DELAYED ? "Delayed Mail (still being retried)"
	                                   : "Successful Mail Delivery Report");
	buf_printf(out, "Date: %s\r\nMessage-ID: <dsn.%s.%lld@%s>\r\n", date, msgid,
	           (long long)e->id, reporting_mta);
	buf_append_str(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_printf(out,
	           "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	           "\tboundary=\"%s\"\r\n\r\n",
	           boundary);
	buf_printf(out, "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n", boundary);
	buf_append_str(out, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	dsn_human(action, r, n, out);
	buf_printf(out, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
	dsn_status_fields(reporting_mta, e, action, r, n, now, out);
	buf_printf(out, "\r\n--%s\r\n", boundary);
	dsn_original(e, out);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
}

static int dsn_store_local(struct db_pool *pool, const struct config *cfg,
                           const struct directory_resolution *res, const struct buf *msg)
{
	struct mime_limits limits;
	config_mime_limits(cfg, &limits);
	struct store_incoming *in = store_incoming_new(msg->len + 1, &limits);
	store_incoming_write(in, msg->data, msg->len);
	store_incoming_finish(in);
	struct store_target *t = xcalloc(res->naccounts, sizeof(*t));
	for (size_t i = 0; i < res->naccounts; i++)
		t[i].account_id = res->accounts[i];
	int ret = -1;
	PGconn *conn = db_pool_borrow(pool, DSN_BORROW_TIMEOUT_MS);
	if (conn != NULL) {
		enum store_err e = store_deliver(conn, in, t, res->naccounts, false);
		db_pool_return(pool, &conn);
		ret = e == STORE_OK ? 0 : -1;
	}
	free(t);
	store_incoming_free(&in);
	return ret;
}

static int dsn_enqueue_remote(struct db_pool *pool, const char *to, const struct buf *msg)
{
	const char *rcpts[1] = {to};
	const char *notify[1] = {"NEVER"};
	struct outbound_message m = {.sender = "",
	                             .recipients = rcpts,
	                             .nrecipients = 1,
	                             .notify = notify,
	                             .data = msg->data,
	                             .len = msg->len};
	const char *err;
	int64_t id;
	if (outbound_enqueue(pool, &m, &id, &err) < 0) {
		log_error("event=dsn_enqueue error=\"%s\"", err);
		return -1;
	}
	return 0;
}

int dsn_send(struct db_pool *pool, struct directory *dir, const struct config *cfg,
             const struct queue_entry *e, enum dsn_action action, const struct dsn_rcpt *r,
             size_t n)
{
	if (e->sender[0] == '\0' || n == 0)
		return 0; /* never a bounce to the null sender */
	struct buf msg;
	buf_init(&msg, BUF_NO_LIMIT);
	dsn_build(config_str(cfg, CFG_SERVER_HOSTNAME), e, action, r, n, time(NULL), &msg);
	struct directory_resolution res = {0};
	char err[DIR_ERROR_SIZE] = "";
	enum directory_err de = directory_resolve(dir, e->sender, &res, err);
	int ret;
	if (de == DIR_OK && res.naccounts > 0) {
		ret = dsn_store_local(pool, cfg, &res, &msg);
	} else if (de == DIR_ENOTFOUND || (de == DIR_OK && res.nremote > 0)) {
		bool local = false;
		const char *at = strrchr(e->sender, '@');
		if (at != NULL && directory_is_local_domain(dir, at + 1, &local, err) == DIR_OK &&
		    local) {
			ret = 0; /* an unknown local sender: nobody to tell */
		} else {
			ret = dsn_enqueue_remote(pool, e->sender, &msg);
		}
	} else {
		ret = de == DIR_ETEMP ? -1 : 0;
	}
	log_info("event=dsn queue_id=%lld action=%s recipients=%zu result=%s", (long long)e->id,
	         dsn_action_word(action), n, ret == 0 ? "ok" : "failed");
	directory_resolution_free(&res);
	buf_free(&msg);
	return ret;
}
