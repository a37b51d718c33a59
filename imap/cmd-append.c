/* cmd-append.c - APPEND with flags and date, MULTIAPPEND (RFC 3502),
 * LITERAL+ and literal8 (RFC 3516), APPENDUID (RFC 4315), [TOOBIG] and
 * [OVERQUOTA]. Messages stream from the literal into the store's incoming
 * object (hashing and parsing as they arrive), never into a buffer here. */
#include "imap-private.h"

#include "log.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Messages in one MULTIAPPEND. */
#define IMAP_APPEND_MAX 1000
/* The INTERNALDATEs the store takes: from the epoch to the end of 9999. */
#define IMAP_DATETIME_MAX ((time_t)253402300799)

struct append_msg {
	struct store_incoming *in;
	unsigned flags;
	const char **keywords;
	time_t date;
	bool dated; /* date was given (it may be the epoch itself) */
};

struct append_ctx {
	struct append_msg msgs[IMAP_APPEND_MAX];
	size_t n;
	uint64_t total;
	bool too_big;
	bool empty;
};

static int month_index(const char *m)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	for (int i = 0; i < 12; i++)
		if (strncasecmp(m, months[i], 3) == 0)
			return i;
	return -1;
}

/* Days in month mon (0-11) of year. */
static int month_days(int mon, int year)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
	return mon == 1 && leap ? 29 : days[mon];
}

static int two_digits(const char *p)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -1;
	return (p[0] - '0') * 10 + (p[1] - '0');
}

/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time
 * SP zone DQUOTE, e.g. " 7-Feb-1994 21:52:25 -0800" (the quotes removed). */
int imap_parse_datetime(const char *s, time_t *r)
{
	char buf[27];
	size_t len = strlen(s);
	if (len == 25 && s[0] != ' ') {
		buf[0] = ' ';
		memcpy(buf + 1, s, 26);
		s = buf;
		len = 26;
	}
	if (len != 26 || s[2] != '-' || s[6] != '-' || s[11] != ' ' || s[14] != ':' ||
	    s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
		return -1;
	int day = s[0] == ' ' ? two_digits((char[]){'0', s[1]}) : two_digits(s);
	int mon = month_index(s + 3);
	int y1 = two_digits(s + 7), y2 = two_digits(s + 9);
	int hh = two_digits(s + 12), mm = two_digits(s + 15), ss = two_digits(s + 18);
	int zh = two_digits(s + 22), zm = two_digits(s + 24);
	if (day < 1 || mon < 0 || y1 < 0 || y2 < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
	    ss < 0 || ss > 60 || zh < 0 || zm < 0 || zm > 59)
		return -1;
	/* timegm() would take 31-Feb as 2 or 3-Mar. */
	if (day > month_days(mon, y1 * 100 + y2))
		return -1;
	struct tm tm = {.tm_mday = day,
	                .tm_mon = mon,
	                .tm_year = y1 * 100 + y2 - 1900,
	                .tm_hour = hh,
	                .tm_min = mm,
	                .tm_sec = ss};
	time_t t = timegm(&tm);
	long off = (zh * 60L + zm) * 60L;
	*r = s[21] == '+' ? t - off : t + off;
	return 0;
}

static int sink_incoming(void *ctx, const void *p, size_t len)
{
	return store_incoming_write(ctx, p, len);
}

static uint64_t message_max(const struct imap_cmd *cmd, const struct append_ctx *a)
{
	const struct config *cfg = imap_cfg(cmd->s);
	uint64_t max = imap_append_limit(cmd->s);
	uint64_t all = config_uint(cfg, CFG_LIMITS_LITERAL_SIZE);
	uint64_t left = a->total < all ? all - a->total : 0;
	return max < left ? max : left;
}

/* [SP flag-list] [SP date-time] SP literal, after the mailbox or the
 * previous literal. */
static int append_one(struct imap_cmd *cmd, struct append_ctx *a)
{
	struct append_msg *m = &a->msgs[a->n];
	const char *date;
	memset(m, 0, sizeof(*m));
	if (imap_arg_sp(cmd) < 0)
		return -1;
	if (imap_arg_peek(cmd, '(')) {
		if (imap_arg_flags(cmd, false, &m->flags, &m->keywords) < 0 || imap_arg_sp(cmd) < 0)
			return -1;
	}
	if (imap_arg_peek(cmd, '"')) {
		if (imap_arg_string(cmd, &date, NULL) < 0 || imap_arg_sp(cmd) < 0)
			return -1;
		m->dated = true;
		if (imap_parse_datetime(date, &m->date) < 0) {
			cmd->error = "Invalid date-time";
			return -1;
		}
		/* Refused here, before any message byte: the store would only
		 * say so once the upload is done. */
		if (m->date < 0 || m->date > IMAP_DATETIME_MAX) {
			cmd->error = "Date-time out of range (1970 to 9999)";
			return -1;
		}
	}
	struct mime_limits limits;
	config_mime_limits(imap_cfg(cmd->s), &limits);
	uint64_t max = message_max(cmd, a);
	m->in = store_incoming_new(max, &limits);
	a->n++;
	struct imap_literal_info info;
	if (imap_arg_literal_stream(cmd, max, sink_incoming, m->in, &info) < 0)
		return -1;
	a->total += info.size;
	a->too_big |= info.too_big || info.sink_failed;
	a->empty |= info.size == 0;
	store_incoming_finish(m->in);
	return 0;
}

static void append_free(struct append_ctx *a)
{
	for (size_t i = 0; i < a->n; i++)
		store_incoming_free(&a->msgs[i].in);
}

/* Undoes the messages already stored when a later one fails, so that a
 * MULTIAPPEND is all or nothing (RFC 3502). */
static void append_undo(PGconn *conn, int64_t mailbox_id, const uint32_t *uids, size_t n)
{
	uint32_t *gone = NULL;
	size_t ngone = 0;
	if (n > 0 && store_expunge(conn, mailbox_id, uids, n, &gone, &ngone) != STORE_OK)
		log_warn("event=imap_append_undo_failed mailbox=%lld", (long long)mailbox_id);
	free(gone);
}

static enum store_err append_store(struct imap_cmd *cmd, PGconn *conn,
                                   const struct store_mailbox *mb, struct append_ctx *a,
                                   uint32_t *uids)
{
	for (size_t i = 0; i < a->n; i++) {
		struct store_target t = {
		    .account_id = cmd->s->account.id,
		    .mailbox_id = mb->id,
		    .flags = a->msgs[i].flags,
		    .keywords = a->msgs[i].keywords,
		    .internaldate = a->msgs[i].date,
		    .internaldate_set = a->msgs[i].dated,
		};
		enum store_err e = store_deliver(conn, a->msgs[i].in, &t, 1, true);
		if (e == STORE_OK)
			e = t.result;
		if (e != STORE_OK) {
			append_undo(conn, mb->id, uids, i);
			return e;
		}
		uids[i] = t.uid_r;
	}
	return STORE_OK;
}

static void append_reply(struct imap_cmd *cmd, const struct store_mailbox *mb, const uint32_t *uids,
                         size_t n)
{
	struct imap_session *s = cmd->s;
	if (s->state == IMAP_STATE_SELECTED && s->view.mailbox_id == mb->id)
		s->view.dirty = true;
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	imap_uidset_format(uids, n, &b);
	imap_reply_ok(cmd, "[APPENDUID %u %s] APPEND completed", mb->uidvalidity, buf_cstr(&b));
	buf_free(&b);
}

static void append_finish(struct imap_cmd *cmd, const struct store_mailbox *mb,
                          struct append_ctx *a)
{
	if (a->too_big) {
		imap_reply_no(cmd, "[TOOBIG] Message too big (APPENDLIMIT %u)",
		              imap_append_limit(cmd->s));
		return;
	}
	if (a->empty) {
		imap_reply_no(cmd, "[CANNOT] Empty messages cannot be stored");
		return;
	}
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return;
	uint32_t *uids = xcalloc(a->n, sizeof(*uids));
	enum store_err e = append_store(cmd, conn, mb, a, uids);
	imap_db_return(cmd->s, &conn);
	if (e == STORE_OK)
		append_reply(cmd, mb, uids, a->n);
	else if (e == STORE_EINVALID)
		imap_reply_no(cmd, "[CANNOT] Invalid flags or message");
	else
		imap_reply_store_err(cmd, e, "append");
	free(uids);
}

int imap_cmd_append(struct imap_cmd *cmd)
{
	const char *name;
	struct store_mailbox mb = {0};
	if (imap_arg_sp(cmd) < 0 || imap_arg_mailbox(cmd, &name) < 0)
		return -1;
	/* The mailbox must exist before any message byte is read. */
	enum store_err e = imap_mailbox_get(cmd->s, name, &mb);
	if (e != STORE_OK) {
		imap_arg_skip_rest(cmd);
		if (e == STORE_ENOTFOUND)
			imap_reply_no(cmd, "[TRYCREATE] Mailbox does not exist");
		else
			imap_reply_store_err(cmd, e, "append");
		return 0;
	}
	struct append_ctx *a = xcalloc(1, sizeof(*a));
	int ret = 0;
	do {
		if (a->n == IMAP_APPEND_MAX) {
			cmd->error = "Too many messages in one APPEND";
			ret = -1;
			break;
		}
		if (append_one(cmd, a) < 0) {
			ret = -1;
			break;
		}
	} while (!cmd->aborted && !imap_arg_at_end(cmd));
	/* After a refused synchronising literal (cmd->aborted) this says
	 * [TOOBIG]; the client sent nothing more. */
	if (ret == 0)
		append_finish(cmd, &mb, a);
	append_free(a);
	free(a);
	store_mailbox_free_fields(&mb);
	return ret;
}
