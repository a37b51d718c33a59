/* imap-view.c - the session's view of the selected mailbox: sequence
 * numbers, UIDs and flags as the client was last told, and bringing it up
 * to date (EXISTS, FETCH FLAGS, EXPUNGE/VANISHED) only at the moments RFC
 * 3501 section 7.4.1 and RFC 9051 allow. */
#include "imap-private.h"

#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void kw_free(char **kw)
{
	if (kw == NULL)
		return;
	for (size_t i = 0; kw[i] != NULL; i++)
		free(kw[i]);
	free(kw);
}

static char **kw_dup(char *const *kw)
{
	size_t n = 0;
	while (kw != NULL && kw[n] != NULL)
		n++;
	char **r = xcalloc(n + 1, sizeof(*r));
	for (size_t i = 0; i < n; i++)
		r[i] = xstrdup(kw[i]);
	return r;
}

static bool kw_equal(char *const *a, char *const *b)
{
	size_t i = 0;
	for (; a != NULL && b != NULL && a[i] != NULL && b[i] != NULL; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return (a == NULL || a[i] == NULL) && (b == NULL || b[i] == NULL);
}

/* Keywords every client may use: announced even when unused. */
static char *const common_keywords[] = {"$Forwarded", "$Junk", "$NotJunk", "$MDNSent", NULL};

static bool kw_known(const struct imap_view *v, const char *kw)
{
	for (size_t i = 0; i < v->nkeywords; i++)
		if (strcasecmp(v->keywords[i], kw) == 0)
			return true;
	return false;
}

/* Adds the keywords of kw not announced yet; true if there were any. */
static bool kw_note(struct imap_view *v, char *const *kw)
{
	bool added = false;
	for (size_t i = 0; kw != NULL && kw[i] != NULL; i++) {
		if (kw_known(v, kw[i]))
			continue;
		v->keywords = xreallocarray(v->keywords, v->nkeywords + 1, sizeof(*v->keywords));
		v->keywords[v->nkeywords++] = xstrdup(kw[i]);
		added = true;
	}
	return added;
}

void imap_view_send_flags(struct imap_session *s)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_append_str(&b, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (size_t i = 0; i < s->view.nkeywords; i++)
		buf_printf(&b, " %s", s->view.keywords[i]);
	buf_append_str(&b, ")\r\n");
	imap_write(s, b.data, b.len);
	buf_free(&b);
}

void imap_view_close(struct imap_session *s)
{
	struct imap_view *v = &s->view;
	for (size_t i = 0; i < v->count; i++)
		kw_free(v->entries[i].keywords);
	for (size_t i = 0; i < v->nkeywords; i++)
		free(v->keywords[i]);
	free(v->keywords);
	free(v->recent);
	free(v->entries);
	free(v->name);
	if (v->sub != NULL)
		notifier_unsubscribe(&v->sub);
	memset(v, 0, sizeof(*v));
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
	free(s->searchres);
	s->searchres = NULL;
	s->nsearchres = 0;
}

/* Takes the entries array (ascending by UID) as the new contents. */
void imap_view_take_entries(struct imap_session *s, struct store_entry *entries, size_t n)
{
	s->view.entries = entries;
	s->view.count = n;
	s->view.cap = n;
	kw_note(&s->view, common_keywords);
	for (size_t i = 0; i < n; i++)
		kw_note(&s->view, entries[i].keywords);
}

/* ---- loading ---- */

/* Binary columns, fixed widths first: uid, flags, modseq, internaldate,
 * size, message_id; then the keywords, NULL when there are none (most
 * messages: no array is allocated for them). */
#define SQL_ENTRIES                                                                                \
	"SELECT uid, flags, modseq, internaldate, size, message_id, "                              \
	"CASE WHEN cardinality(keywords) > 0 THEN array_to_string(keywords, ' ') END "             \
	"FROM mailbox_entries WHERE mailbox_id = $1::bigint AND modseq > $2::bigint "              \
	"ORDER BY uid"
#define ENTRY_FIXED_COLS 6
#define ENTRY_COLS       7
#define ENTRY_HINT_MAX   (1u << 22)
/* Seconds from 1970-01-01 to 2000-01-01, PostgreSQL's timestamp origin. */
#define PG_EPOCH_OFFSET 946684800

struct entry_loader {
	struct store_entry *entries;
	size_t n, cap;
};

static uint64_t be_uint(const char *p, int len)
{
	uint64_t v = 0;
	for (int i = 0; i < len; i++)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

/* A binary timestamptz (microseconds from 2000) in Unix seconds, rounded
 * half away from zero: what extract(epoch ...)::bigint gives in
 * store_entries_list, so a message shows one INTERNALDATE however loaded. */
static time_t pg_time_to_unix(int64_t us)
{
	int64_t sec = us / 1000000, rem = us % 1000000;
	if (rem >= 500000)
		sec++;
	else if (rem <= -500000)
		sec--;
	return (time_t)(sec + PG_EPOCH_OFFSET);
}

/* "a b c" into a NULL-terminated array (as store_entries_list does). */
static char **kw_split(const char *p, size_t len)
{
	size_t n = 0;
	char **kw = xcalloc(1, sizeof(*kw));
	for (size_t i = 0, start = 0; i <= len; i++) {
		if (i < len && p[i] != ' ')
			continue;
		if (i > start) {
			kw = xreallocarray(kw, n + 2, sizeof(*kw));
			kw[n++] = xmemdup0(&p[start], i - start);
			kw[n] = NULL;
		}
		start = i + 1;
	}
	return kw;
}

int imap_view_entry_parse(const char *const *values, const int *lengths, int ncols,
                          uint32_t prev_uid, struct store_entry *e_r)
{
	static const int width[ENTRY_FIXED_COLS] = {8, 4, 8, 8, 8, 8};
	if (ncols != ENTRY_COLS)
		return -1;
	for (int c = 0; c < ENTRY_FIXED_COLS; c++)
		if (values[c] == NULL || lengths[c] != width[c])
			return -1;
	uint64_t uid = be_uint(values[0], 8);
	/* The view relies on strictly ascending UIDs. */
	if (uid <= prev_uid || uid > UINT32_MAX || (values[6] != NULL && lengths[6] < 0))
		return -1;
	memset(e_r, 0, sizeof(*e_r));
	e_r->uid = (uint32_t)uid;
	e_r->flags = (unsigned)be_uint(values[1], 4);
	e_r->modseq = be_uint(values[2], 8);
	e_r->internaldate = pg_time_to_unix((int64_t)be_uint(values[3], 8));
	e_r->size = be_uint(values[4], 8);
	e_r->message_id = (int64_t)be_uint(values[5], 8);
	if (values[6] != NULL)
		e_r->keywords = kw_split(values[6], (size_t)lengths[6]);
	return 0;
}

/* Row i of a result appended to ld; -1 if it is not what SQL_ENTRIES
 * returns. */
static int entry_load_row(struct entry_loader *ld, const PGresult *r, int i)
{
	const char *values[ENTRY_COLS];
	int lengths[ENTRY_COLS];
	int ncols = PQnfields(r);
	if (ncols != ENTRY_COLS)
		return -1;
	for (int c = 0; c < ncols; c++) {
		values[c] = PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c);
		lengths[c] = PQgetlength(r, i, c);
	}
	if (ld->n == ld->cap) {
		ld->cap = ld->cap < 64 ? 64 : ld->cap * 2;
		ld->entries = xreallocarray(ld->entries, ld->cap, sizeof(*ld->entries));
	}
	uint32_t prev = ld->n > 0 ? ld->entries[ld->n - 1].uid : 0;
	if (imap_view_entry_parse(values, lengths, ncols, prev, &ld->entries[ld->n]) < 0)
		return -1;
	ld->n++;
	return 0;
}

static void entry_load_failed(PGconn *conn, const PGresult *r, int64_t mailbox_id)
{
	const char *msg = r != NULL ? PQresultErrorMessage(r) : "";
	char q[LOG_QUOTE_MAX];
	log_warn("event=imap_view_load_failed mailbox=%lld error=%s", (long long)mailbox_id,
	         log_quote(q, sizeof(q), msg[0] != '\0' ? msg : PQerrorMessage(conn)));
}

/* Single-row mode: each row is converted as it arrives, while the server
 * is still producing the next ones, and no result of the whole mailbox is
 * ever held (measured on 100,000 entries: less CPU on both sides than one
 * big result, which is also faster than the text form with a numeric
 * epoch and a keyword array per row). The results are drained to the end
 * in every case, so the connection goes back to the pool idle. */
enum store_err imap_view_load(PGconn *conn, int64_t mailbox_id, uint64_t changedsince, size_t hint,
                              struct store_entry **entries_r, size_t *n_r)
{
	char id[24], since[24];
	snprintf(id, sizeof(id), "%lld", (long long)mailbox_id);
	snprintf(since, sizeof(since), "%llu", (unsigned long long)changedsince);
	const char *params[] = {id, since};
	/* The hint is a counter of ours; capped all the same. */
	struct entry_loader ld = {.cap = hint < ENTRY_HINT_MAX ? hint : ENTRY_HINT_MAX};
	ld.entries = ld.cap > 0 ? xreallocarray(NULL, ld.cap, sizeof(*ld.entries)) : NULL;
	int ret = 0;
	if (PQsendQueryParams(conn, SQL_ENTRIES, 2, NULL, params, NULL, NULL, 1) != 1) {
		entry_load_failed(conn, NULL, mailbox_id);
		ret = -1;
	} else {
		PQsetSingleRowMode(conn); /* if refused, the rows come in one result */
	}
	for (PGresult *r; ret == 0 && (r = PQgetResult(conn)) != NULL; PQclear(r)) {
		ExecStatusType st = PQresultStatus(r);
		if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK) {
			entry_load_failed(conn, r, mailbox_id);
			ret = -1;
		}
		for (int i = 0; ret == 0 && i < PQntuples(r); i++) {
			if (entry_load_row(&ld, r, i) < 0) {
				log_warn("event=imap_view_load_bad_row mailbox=%lld",
				         (long long)mailbox_id);
				ret = -1;
			}
		}
	}
	for (PGresult *r; (r = PQgetResult(conn)) != NULL;)
		PQclear(r);
	if (ret < 0) {
		store_entries_free(&ld.entries, ld.n);
		ld.n = 0;
	}
	*entries_r = ld.entries;
	*n_r = ld.n;
	return ret < 0 ? STORE_ETEMP : STORE_OK;
}

ssize_t imap_view_find_uid(const struct imap_session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->view.count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t u = s->view.entries[mid].uid;
		if (u == uid)
			return (ssize_t)mid;
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* First index with uid >= u. */
static size_t lower_bound(const struct imap_session *s, uint32_t u)
{
	size_t lo = 0, hi = s->view.count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->view.entries[mid].uid < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Marks the indexes named by one range of UIDs. */
static void mark_uid_range(const struct imap_session *s, uint32_t lo, uint32_t hi, bool *mark)
{
	for (size_t i = lower_bound(s, lo); i < s->view.count && s->view.entries[i].uid <= hi; i++)
		mark[i] = true;
}

static int mark_ranges(struct imap_cmd *cmd, const struct imap_seqset *set, bool uid, bool *mark)
{
	const struct imap_session *s = cmd->s;
	size_t n = s->view.count;
	uint32_t star = uid ? (n > 0 ? s->view.entries[n - 1].uid : 0) : (uint32_t)n;
	for (size_t i = 0; i < set->n; i++) {
		uint32_t lo, hi;
		imap_seq_range_resolve(&set->ranges[i], star, &lo, &hi);
		if (uid) {
			/* "*" in an empty mailbox names nothing. */
			if (n > 0)
				mark_uid_range(s, lo, hi, mark);
			continue;
		}
		if (lo == 0 || hi > n) {
			cmd->error = "Invalid message sequence number";
			return -1;
		}
		for (uint32_t m = lo; m <= hi; m++)
			mark[m - 1] = true;
	}
	return 0;
}

int imap_view_resolve(struct imap_cmd *cmd, const struct imap_seqset *set, bool uid, size_t **idx_r,
                      size_t *n_r)
{
	struct imap_session *s = cmd->s;
	size_t n = s->view.count;
	bool *mark = xcalloc(n + 1, sizeof(*mark));
	int ret = 0;
	if (set->saved) {
		for (size_t i = 0; i < s->nsearchres; i++)
			mark_uid_range(s, s->searchres[i], s->searchres[i], mark);
	} else {
		ret = mark_ranges(cmd, set, uid, mark);
	}
	*idx_r = NULL;
	*n_r = 0;
	if (ret == 0) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			k += mark[i];
		*idx_r = k > 0 ? xcalloc(k, sizeof(**idx_r)) : NULL;
		for (size_t i = 0; i < n; i++)
			if (mark[i])
				(*idx_r)[(*n_r)++] = i;
	}
	free(mark);
	return ret;
}

uint32_t *imap_view_uids(const struct imap_session *s, const size_t *idx, size_t n)
{
	uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = s->view.entries[idx[i]].uid;
	return uids;
}

void imap_send_fetch_flags(struct imap_session *s, size_t idx, bool with_uid)
{
	const struct store_entry *e = &s->view.entries[idx];
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_append_str(&b, "* ");
	imap_append_number(&b, idx + 1);
	buf_append_str(&b, " FETCH (");
	if (with_uid) {
		buf_append_str(&b, "UID ");
		imap_append_number(&b, e->uid);
		buf_append_char(&b, ' ');
	}
	buf_append_str(&b, "FLAGS ");
	imap_view_flags_format(s, e, &b);
	if ((s->enabled & IMAP_EXT_CONDSTORE) != 0) {
		buf_append_str(&b, " MODSEQ (");
		imap_append_number(&b, e->modseq);
		buf_append_char(&b, ')');
	}
	buf_append_str(&b, ")\r\n");
	imap_write(s, b.data, b.len);
	buf_free(&b);
}

void imap_view_apply_changes(struct imap_session *s, const struct store_flag_change *ch, size_t n)
{
	bool added = false;
	for (size_t i = 0; i < n; i++)
		added |= kw_note(&s->view, ch[i].keywords);
	if (added)
		imap_view_send_flags(s);
	for (size_t i = 0; i < n; i++) {
		ssize_t k = imap_view_find_uid(s, ch[i].uid);
		if (k < 0)
			continue;
		struct store_entry *e = &s->view.entries[k];
		e->flags = ch[i].flags;
		e->modseq = ch[i].modseq;
		kw_free(e->keywords);
		e->keywords = kw_dup(ch[i].keywords);
	}
}

void imap_searchres_set(struct imap_session *s, uint32_t *uids, size_t n)
{
	free(s->searchres);
	s->searchres = uids;
	s->nsearchres = n;
}

/* ---- synchronisation ---- */

/* "1:3,7" of ascending UIDs into b. */
void imap_uidset_format(const uint32_t *uids, size_t n, struct buf *b)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			buf_append_char(b, ',');
		if (j > i)
			buf_printf(b, "%u:%u", uids[i], uids[j]);
		else
			buf_printf(b, "%u", uids[i]);
		i = j + 1;
	}
}

/* Drops the marked entries in one pass. */
static void view_compact(struct imap_view *v, const bool *drop)
{
	size_t k = 0;
	for (size_t i = 0; i < v->count; i++) {
		if (drop[i]) {
			kw_free(v->entries[i].keywords);
			continue;
		}
		v->entries[k++] = v->entries[i];
	}
	v->count = k;
}

/* Removes expunged UIDs from the view and tells the client. */
void imap_view_expunged(struct imap_session *s, const uint32_t *uids, size_t n)
{
	struct imap_view *v = &s->view;
	bool vanished = (s->enabled & IMAP_EXT_QRESYNC) != 0;
	uint32_t *gone = xcalloc(n + 1, sizeof(*gone));
	bool *drop = xcalloc(v->count + 1, sizeof(*drop));
	size_t ngone = 0;
	/* Highest first, so each EXPUNGE's number is still right when sent
	 * (only messages above it are gone); the entries are compacted once at
	 * the end, not moved per message (10,000 expunges in a mailbox of
	 * 100,000 would otherwise move gigabytes). */
	for (size_t i = n; i-- > 0;) {
		ssize_t k = imap_view_find_uid(s, uids[i]);
		if (k < 0 || drop[k])
			continue;
		if (!vanished)
			imap_untagged(s, "%zd EXPUNGE", k + 1);
		drop[k] = true;
		gone[ngone++] = uids[i];
	}
	view_compact(v, drop);
	free(drop);
	if (vanished && ngone > 0) {
		struct buf b;
		buf_init(&b, BUF_NO_LIMIT);
		for (size_t i = 0; i < ngone / 2; i++) {
			uint32_t t = gone[i];
			gone[i] = gone[ngone - 1 - i];
			gone[ngone - 1 - i] = t;
		}
		imap_uidset_format(gone, ngone, &b);
		imap_untagged(s, "VANISHED %s", buf_cstr(&b));
		buf_free(&b);
	}
	free(gone);
}

static void view_append(struct imap_view *v, struct store_entry *e)
{
	if (v->count == v->cap) {
		v->cap = v->cap < 64 ? 64 : v->cap * 2;
		v->entries = xreallocarray(v->entries, v->cap, sizeof(*v->entries));
	}
	v->entries[v->count++] = *e;
	e->keywords = NULL;
}

/* Flag changes and new messages from changed (ascending by UID). */
static void apply_entries(struct imap_session *s, struct store_entry *changed, size_t n)
{
	struct imap_view *v = &s->view;
	size_t before = v->count;
	bool condstore = (s->enabled & IMAP_EXT_CONDSTORE) != 0;
	bool added = false;
	for (size_t i = 0; i < n; i++)
		added |= kw_note(v, changed[i].keywords);
	if (added)
		imap_view_send_flags(s);
	for (size_t i = 0; i < n; i++) {
		struct store_entry *c = &changed[i];
		if (before == 0 || c->uid > v->entries[before - 1].uid) {
			if (v->count == 0 || c->uid > v->entries[v->count - 1].uid)
				view_append(v, c);
			continue;
		}
		ssize_t k = imap_view_find_uid(s, c->uid);
		if (k < 0)
			continue;
		struct store_entry *e = &v->entries[k];
		bool differ = e->flags != c->flags || !kw_equal(e->keywords, c->keywords);
		if (!differ && !(condstore && e->modseq != c->modseq))
			continue;
		e->flags = c->flags;
		e->modseq = c->modseq;
		kw_free(e->keywords);
		e->keywords = c->keywords;
		c->keywords = NULL;
		imap_send_fetch_flags(s, (size_t)k, false);
	}
	if (v->count != before) {
		imap_untagged(s, "%zu EXISTS", v->count);
		imap_recent_send(s);
	}
}

static bool sync_wanted(struct imap_session *s, bool force)
{
	bool changed = s->view.dirty;
	if (s->view.sub != NULL && notifier_sub_changed(s->view.sub))
		changed = true;
	return changed || force;
}

static enum store_err sync_load(PGconn *conn, struct imap_session *s, bool no_expunge,
                                struct store_mailbox *mb, struct store_entry **changed, size_t *n,
                                uint32_t **gone, size_t *ngone)
{
	struct imap_view *v = &s->view;
	enum store_err e = store_mailbox_get_by_id(conn, v->mailbox_id, mb);
	if (e != STORE_OK || mb->highestmodseq == v->highestmodseq)
		return e;
	e = imap_view_load(conn, v->mailbox_id, v->highestmodseq, 0, changed, n);
	if (e == STORE_OK && !no_expunge)
		e = store_expunged_since(conn, v->mailbox_id, v->highestmodseq, gone, ngone);
	return e;
}

/* The new messages about to be announced become \Recent here unless
 * another session announced them first (RFC 3501 2.3.2). */
static void sync_claim_recent(struct imap_session *s, PGconn *conn,
                              const struct store_entry *changed, size_t n)
{
	const struct imap_view *v = &s->view;
	uint32_t last = v->count > 0 ? v->entries[v->count - 1].uid : 0;
	if (n > 0 && changed[n - 1].uid > last)
		imap_recent_claim(s, conn, changed[n - 1].uid);
}

int imap_view_sync(struct imap_session *s, bool no_expunge, bool force)
{
	struct imap_view *v = &s->view;
	if (s->state != IMAP_STATE_SELECTED || !sync_wanted(s, force))
		return 0;
	PGconn *conn = db_pool_borrow(s->srv->pool, 5000);
	if (conn == NULL)
		return -1;
	struct store_mailbox mb = {0};
	struct store_entry *changed = NULL;
	uint32_t *gone = NULL;
	size_t n = 0, ngone = 0;
	enum store_err e = sync_load(conn, s, no_expunge, &mb, &changed, &n, &gone, &ngone);
	if (e == STORE_OK)
		sync_claim_recent(s, conn, changed, n);
	db_pool_return(s->srv->pool, &conn);
	if (e == STORE_ENOTFOUND) {
		/* Another session deleted it: nothing sensible is left to show. */
		imap_untagged(s, "BYE Selected mailbox was deleted, please reconnect");
		s->logout = true;
		v->dirty = false;
	} else if (e != STORE_OK) {
		log_warn("event=imap_sync_failed mailbox=%lld err=%s", (long long)v->mailbox_id,
		         store_err_str(e));
		v->dirty = true;
	} else if (mb.highestmodseq != v->highestmodseq) {
		if (!no_expunge)
			imap_view_expunged(s, gone, ngone);
		apply_entries(s, changed, n);
		if (mb.uidnext > v->uidnext)
			v->uidnext = mb.uidnext;
		/* Expunges not yet reported keep the old point, and a later
		 * sync looks again (applying flags twice changes nothing). */
		if (!no_expunge)
			v->highestmodseq = mb.highestmodseq;
		v->dirty = no_expunge;
	} else {
		v->dirty = false;
	}
	store_entries_free(&changed, n);
	free(gone);
	store_mailbox_free_fields(&mb);
	return e == STORE_OK ? 0 : -1;
}
