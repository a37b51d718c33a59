/* cmd-sort.c - SORT and UID SORT (RFC 5256 section 3): ARRIVAL, CC, DATE,
 * FROM, SIZE, SUBJECT, TO, each optionally REVERSE. The search runs as one
 * query that also returns the sort fields; the keys (base subject, first
 * mailbox) are computed once per message and the rows sorted in memory. */
#include "imap-private.h"
#include "imap-search.h"

#include "strnum.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum sort_key { SK_ARRIVAL, SK_CC, SK_DATE, SK_FROM, SK_SIZE, SK_SUBJECT, SK_TO };

#define SORT_MAX_CRITERIA 16

struct sort_crit {
	enum sort_key key;
	bool reverse;
};

struct sort_row {
	uint32_t id;  /* MSN or UID as answered */
	uint32_t seq; /* MSN: the final tie-break */
	int64_t arrival, date;
	uint64_t size;
	char *text[4]; /* subject base, from, to, cc keys */
};

enum { ST_SUBJECT, ST_FROM, ST_TO, ST_CC };

struct sort_ctx {
	const struct sort_crit *crit;
	size_t ncrit;
};

static const char sort_cols[] =
    "e.uid, extract(epoch FROM e.internaldate)::bigint, "
    "extract(epoch FROM COALESCE(m.sent_date, e.internaldate))::bigint, e.size, "
    "m.subject, m.from_addr, m.to_addr, m.cc_addr";

static int sort_parse_criteria(struct imap_cmd *cmd, const struct imap_stok *t, size_t n,
                               size_t *pos, struct sort_crit *crit, size_t *ncrit)
{
	static const struct {
		const char *name;
		enum sort_key key;
	} keys[] = {
	    {"ARRIVAL", SK_ARRIVAL}, {"CC", SK_CC},           {"DATE", SK_DATE}, {"FROM", SK_FROM},
	    {"SIZE", SK_SIZE},       {"SUBJECT", SK_SUBJECT}, {"TO", SK_TO}};
	size_t i = *pos;
	if (i >= n || t[i].type != IMAP_STOK_LPAREN) {
		cmd->error = "Expected sort criteria";
		return -1;
	}
	bool reverse = false;
	for (i++; i < n && t[i].type == IMAP_STOK_ATOM; i++) {
		if (strcasecmp(t[i].s, "REVERSE") == 0 && !reverse) {
			reverse = true;
			continue;
		}
		size_t k = 0;
		while (k < sizeof(keys) / sizeof(keys[0]) && strcasecmp(keys[k].name, t[i].s) != 0)
			k++;
		if (k == sizeof(keys) / sizeof(keys[0]) || *ncrit >= SORT_MAX_CRITERIA) {
			cmd->error = "Invalid sort criterion";
			return -1;
		}
		crit[(*ncrit)++] = (struct sort_crit){keys[k].key, reverse};
		reverse = false;
	}
	if (i >= n || t[i].type != IMAP_STOK_RPAREN || *ncrit == 0 || reverse) {
		cmd->error = "Invalid sort criteria";
		return -1;
	}
	*pos = i + 1;
	return 0;
}

static int sort_cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int sort_cmp_one(const struct sort_row *x, const struct sort_row *y, enum sort_key k)
{
	switch (k) {
	case SK_ARRIVAL: /* arrival order is mailbox order within a second */
		return x->arrival != y->arrival ? sort_cmp_num(x->arrival, y->arrival)
		                                : sort_cmp_num(x->seq, y->seq);
	case SK_DATE:
		return sort_cmp_num(x->date, y->date);
	case SK_SIZE:
		return x->size < y->size ? -1 : x->size > y->size;
	case SK_SUBJECT:
		return strcasecmp(x->text[ST_SUBJECT], y->text[ST_SUBJECT]);
	case SK_FROM:
		return strcasecmp(x->text[ST_FROM], y->text[ST_FROM]);
	case SK_TO:
		return strcasecmp(x->text[ST_TO], y->text[ST_TO]);
	case SK_CC:
		return strcasecmp(x->text[ST_CC], y->text[ST_CC]);
	}
	return 0;
}

static int sort_cmp(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *c = arg;
	const struct sort_row *x = a, *y = b;
	for (size_t i = 0; i < c->ncrit; i++) {
		int r = sort_cmp_one(x, y, c->crit[i].key);
		if (r != 0)
			return c->crit[i].reverse ? -r : r;
	}
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static char *sort_text(const char *v, bool subject)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	if (subject)
		imap_base_subject(v, &b, NULL);
	else
		imap_first_mailbox(v, &b);
	char *r = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return r;
}

static size_t sort_rows_load(struct imap_cmd *cmd, PGresult *res, struct sort_row *rows)
{
	size_t k = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		struct sort_row *r = &rows[k];
		uint32_t uid;
		uint64_t a, d, size;
		if (str_to_u32(PQgetvalue(res, i, 0), &uid) < 0)
			continue;
		ssize_t idx = imap_view_find_uid(cmd->s, uid);
		/* Dates before 1970 come back negative: they sort first. */
		r->arrival = str_to_u64(PQgetvalue(res, i, 1), INT64_MAX, &a) == 0 ? (int64_t)a : 0;
		r->date = str_to_u64(PQgetvalue(res, i, 2), INT64_MAX, &d) == 0 ? (int64_t)d : 0;
		if (idx < 0 || str_to_u64(PQgetvalue(res, i, 3), INT64_MAX, &size) < 0)
			continue;
		r->size = size;
		r->seq = (uint32_t)idx + 1;
		r->id = cmd->uid ? uid : r->seq;
		for (int t = 0; t < 4; t++)
			r->text[t] = sort_text(PQgetvalue(res, i, 4 + t), t == ST_SUBJECT);
		k++;
	}
	return k;
}

static void sort_answer(struct imap_cmd *cmd, PGresult *res, const struct sort_crit *crit,
                        size_t ncrit)
{
	size_t n = (size_t)PQntuples(res);
	struct sort_row *rows = xcalloc(n + 1, sizeof(*rows));
	n = sort_rows_load(cmd, res, rows);
	struct sort_ctx c = {crit, ncrit};
	qsort_r(rows, n, sizeof(*rows), sort_cmp, &c);
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_append_str(&b, "* SORT");
	for (size_t i = 0; i < n; i++) {
		buf_printf(&b, " %u", rows[i].id);
		for (int t = 0; t < 4; t++)
			free(rows[i].text[t]);
	}
	buf_append_str(&b, "\r\n");
	imap_write(cmd->s, b.data, b.len);
	buf_free(&b);
	free(rows);
}

int imap_cmd_sort(struct imap_cmd *cmd)
{
	struct imap_stok *toks;
	size_t n, pos = 0, ncrit = 0;
	struct sort_crit crit[SORT_MAX_CRITERIA];
	if (imap_arg_sp(cmd) < 0 || imap_search_read_tokens(cmd, &toks, &n) < 0 ||
	    sort_parse_criteria(cmd, toks, n, &pos, crit, &ncrit) < 0)
		return -1;
	PGresult *res = NULL;
	int r = imap_search_select(cmd, toks, n, pos, sort_cols, "sort", &res);
	if (r != 0)
		return r < 0 ? -1 : 0;
	sort_answer(cmd, res, crit, ncrit);
	PQclear(res);
	imap_reply_ok(cmd, "%s completed", cmd->name);
	return 0;
}
