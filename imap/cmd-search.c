/* cmd-search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4)
 * with ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and CONDSTORE's MODSEQ
 * (RFC 7162 3.1.5); also the query runner SORT and THREAD share.
 *
 * The program runs as ONE query (search-sql.c). Sets ("1:5", "UID 3:*",
 * "$") are resolved against the view into UID ranges first, and the query
 * is bounded by the view's highest UID, so messages the client has not been
 * told about (EXISTS) never show up. */
#include "imap-private.h"
#include "imap-search.h"
#include "indexer.h"
#include "mime.h"

#include "strnum.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- tokens ---- */

#define SEARCH_MAX_TOKENS (4 * IMAP_SEARCH_MAX_KEYS)

static int search_token(struct imap_cmd *cmd, struct imap_stok *t)
{
	if (imap_arg_peek(cmd, '(')) {
		t->type = IMAP_STOK_LPAREN;
		t->s = "(";
		return imap_arg_list_begin(cmd);
	}
	if (imap_arg_peek(cmd, ')')) {
		t->type = IMAP_STOK_RPAREN;
		t->s = ")";
		return imap_arg_list_end(cmd);
	}
	if (imap_arg_peek(cmd, '"') || imap_arg_peek(cmd, '{') || imap_arg_peek(cmd, '~')) {
		t->type = IMAP_STOK_STRING;
		return imap_arg_string(cmd, &t->s, &t->len);
	}
	t->type = IMAP_STOK_ATOM;
	if (imap_arg_word(cmd, &t->s) < 0)
		return -1;
	t->len = strlen(t->s);
	return 0;
}

int imap_search_read_tokens(struct imap_cmd *cmd, struct imap_stok **toks_r, size_t *n_r)
{
	struct imap_stok *toks = arena_alloc(cmd->arena, SEARCH_MAX_TOKENS * sizeof(*toks));
	size_t n = 0;
	while (!imap_arg_at_end(cmd)) {
		if (n >= SEARCH_MAX_TOKENS) {
			cmd->error = "Too many search keys";
			return -1;
		}
		if (search_token(cmd, &toks[n]) < 0)
			return -1;
		bool open = toks[n++].type == IMAP_STOK_LPAREN;
		if (imap_arg_at_end(cmd) || open || imap_arg_peek(cmd, ')'))
			continue;
		if (imap_arg_sp(cmd) < 0)
			return -1;
	}
	if (cmd->depth != 0) {
		cmd->error = "Missing )";
		return -1;
	}
	*toks_r = toks;
	*n_r = n;
	return 0;
}

bool imap_search_charset_ok(const char *charset)
{
	return strcasecmp(charset, "UTF-8") == 0 || strcasecmp(charset, "US-ASCII") == 0;
}

/* ---- sets to UID ranges ---- */

/* "{[a,b],[c,d]}" of ascending UIDs. */
static void search_multirange(const uint32_t *uids, size_t n, struct buf *out)
{
	buf_append_char(out, '{');
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		buf_printf(out, "%s[%u,%u]", i > 0 ? "," : "", uids[i], uids[j]);
		i = j + 1;
	}
	buf_append_char(out, '}');
}

/* The view's messages that are \Recent in this session. */
static int search_recent(const struct imap_session *s, struct buf *out)
{
	uint32_t *uids = xcalloc(s->view.count + 1, sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < s->view.count; i++)
		if (imap_recent_has(s, s->view.entries[i].uid))
			uids[n++] = s->view.entries[i].uid;
	search_multirange(uids, n, out);
	free(uids);
	return 0;
}

static int search_resolve_uids(void *ctx, enum imap_skey_type kind, const char *set,
                               struct buf *out)
{
	struct imap_cmd *cmd = ctx;
	struct imap_seqset ss = {0};
	if (kind == SKEY_RECENT)
		return search_recent(cmd->s, out);
	if (kind == SKEY_SAVED)
		ss.saved = true;
	else if (imap_seqset_parse(set, strlen(set), cmd->arena, &ss) < 0)
		return -1;
	size_t *idx = NULL, n = 0;
	if (imap_view_resolve(cmd, &ss, kind == SKEY_UIDSET, &idx, &n) < 0)
		return -1;
	uint32_t *uids = imap_view_uids(cmd->s, idx, n);
	search_multirange(uids, n, out);
	free(uids);
	free(idx);
	return 0;
}

/* A substring search is planned with sequential scans made unattractive:
 * the planner overestimates a trigram index scan when one of the string's
 * trigrams is frequent, and reading every message instead costs ten times
 * as much (the bench: 1.7 s instead of 0.2 s on 100,000 messages). Without
 * a usable index the plan is the same as before. And without JIT: the
 * per-entry estimates of the EXISTS put a large mailbox's plan past
 * jit_above_cost, and compiling it took 220 ms of a 100,000-message
 * search that runs in less. Local settings end with the transaction, so
 * the pooled connection keeps its own. The same transaction first files
 * the texts of the mailbox's messages the indexer has not reached yet
 * (db/indexer.h), so the search sees them. */
static PGresult *search_exec(struct imap_cmd *cmd, PGconn *conn, const char *sql, bool substring,
                             int nparams, const char *const *params)
{
	if (!substring)
		return db_exec(conn, sql, nparams, params);
	if (db_begin(conn) < 0)
		return NULL;
	struct mime_limits limits;
	config_mime_limits(imap_cfg(cmd->s), &limits);
	PGresult *set = NULL;
	if (store_index_mailbox(conn, cmd->s->view.mailbox_id, &limits) >= 0)
		set = db_exec(conn,
		              "SELECT set_config('enable_seqscan', 'off', true), "
		              "set_config('jit', 'off', true)",
		              0, NULL);
	PGresult *r = set != NULL ? db_exec(conn, sql, nparams, params) : NULL;
	PQclear(set);
	if (r == NULL || db_commit(conn) < 0) {
		db_rollback(conn);
		PQclear(r);
		return NULL;
	}
	return r;
}

int imap_search_run(struct imap_cmd *cmd, PGconn *conn, const struct imap_search_prog *prog,
                    const char *cols, bool join, PGresult **res_r)
{
	struct imap_session *s = cmd->s;
	struct imap_search_sql sql;
	imap_search_sql_init(&sql, cmd->arena);
	struct imap_search_resolver res = {cmd, search_resolve_uids};
	const char *error = NULL;
	if (imap_search_sql_build(prog, &res, 3, &sql, &error) < 0) {
		if (cmd->error == NULL)
			cmd->error = error;
		imap_search_sql_free(&sql);
		return -1;
	}
	size_t n = s->view.count;
	uint32_t maxuid = n > 0 ? s->view.entries[n - 1].uid : 0;
	struct buf q;
	buf_init(&q, BUF_NO_LIMIT);
	buf_printf(&q,
	           "SELECT %s FROM mailbox_entries e%s WHERE e.mailbox_id = $1::bigint "
	           "AND e.uid <= $2::bigint AND %s ORDER BY e.uid",
	           cols,
	           join || sql.needs_messages ? " JOIN messages m ON m.id = e.message_id" : "",
	           buf_cstr(&sql.where));
	const char *params[IMAP_SEARCH_MAX_PARAMS + 2];
	params[0] = arena_printf(cmd->arena, "%lld", (long long)s->view.mailbox_id);
	params[1] = arena_printf(cmd->arena, "%u", maxuid);
	memcpy(params + 2, sql.params, (size_t)sql.nparams * sizeof(params[0]));
	*res_r = search_exec(cmd, conn, buf_cstr(&q), sql.substring, sql.nparams + 2, params);
	buf_free(&q);
	imap_search_sql_free(&sql);
	return *res_r == NULL ? -2 : 0;
}

static int search_charset_program(struct imap_cmd *cmd, const struct imap_stok *toks, size_t n,
                                  size_t pos, struct imap_search_prog *prog)
{
	if (pos >= n || (toks[pos].type != IMAP_STOK_ATOM && toks[pos].type != IMAP_STOK_STRING)) {
		cmd->error = "Missing charset";
		return -1;
	}
	if (!imap_search_charset_ok(toks[pos].s)) {
		imap_reply_no(cmd, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return 1;
	}
	pos++;
	const char *error = NULL;
	if (imap_search_parse(cmd->arena, toks, n, &pos, prog, &error) < 0) {
		cmd->error = error;
		return -1;
	}
	if (prog->uses_modseq)
		cmd->s->enabled |= IMAP_EXT_CONDSTORE;
	return 0;
}

int imap_search_select(struct imap_cmd *cmd, const struct imap_stok *toks, size_t n, size_t pos,
                       const char *cols, const char *what, PGresult **res_r)
{
	struct imap_search_prog prog;
	int r = search_charset_program(cmd, toks, n, pos, &prog);
	if (r != 0)
		return r;
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 1;
	r = imap_search_run(cmd, conn, &prog, cols, true, res_r);
	imap_db_return(cmd->s, &conn);
	if (r == -2) {
		imap_reply_internal(cmd, what);
		return 1;
	}
	return r;
}

/* ---- SEARCH ---- */

#define SR_MIN   0x01u
#define SR_MAX   0x02u
#define SR_ALL   0x04u
#define SR_COUNT 0x08u
#define SR_SAVE  0x10u

struct search_opts {
	bool esearch; /* answer with ESEARCH */
	unsigned ret; /* SR_* */
};

/* RETURN (...) of RFC 4731 / RFC 9051. */
static int search_parse_return(struct imap_cmd *cmd, const struct imap_stok *t, size_t n,
                               size_t *pos, struct search_opts *o)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {{"MIN", SR_MIN},
	            {"MAX", SR_MAX},
	            {"ALL", SR_ALL},
	            {"COUNT", SR_COUNT},
	            {"SAVE", SR_SAVE}};
	size_t i = *pos;
	if (i + 1 >= n || t[i].type != IMAP_STOK_ATOM || strcasecmp(t[i].s, "RETURN") != 0 ||
	    t[i + 1].type != IMAP_STOK_LPAREN)
		return 0;
	o->esearch = true;
	for (i += 2; i < n && t[i].type == IMAP_STOK_ATOM; i++) {
		size_t k = 0;
		while (k < sizeof(opts) / sizeof(opts[0]) && strcasecmp(opts[k].name, t[i].s) != 0)
			k++;
		if (k == sizeof(opts) / sizeof(opts[0])) {
			cmd->error = "Unknown RETURN option";
			return -1;
		}
		o->ret |= opts[k].bit;
	}
	if (i >= n || t[i].type != IMAP_STOK_RPAREN) {
		cmd->error = "Invalid RETURN options";
		return -1;
	}
	if (o->ret == 0)
		o->ret = SR_ALL;
	*pos = i + 1;
	return 0;
}

/* "CHARSET x": 1 if unsupported (the caller answers NO [BADCHARSET]). */
static int search_parse_charset(struct imap_cmd *cmd, const struct imap_stok *t, size_t n,
                                size_t *pos)
{
	size_t i = *pos;
	if (i >= n || t[i].type != IMAP_STOK_ATOM || strcasecmp(t[i].s, "CHARSET") != 0)
		return 0;
	if (i + 1 >= n || t[i + 1].type == IMAP_STOK_LPAREN || t[i + 1].type == IMAP_STOK_RPAREN) {
		cmd->error = "Missing charset";
		return -1;
	}
	*pos = i + 2;
	return imap_search_charset_ok(t[i + 1].s) ? 0 : 1;
}

struct search_result {
	uint32_t *ids;  /* MSNs or UIDs as answered */
	uint32_t *uids; /* for SAVE */
	size_t n;
	uint64_t maxmodseq;
};

static void search_collect(struct imap_cmd *cmd, PGresult *res, struct search_result *r)
{
	int rows = PQntuples(res);
	r->ids = xcalloc((size_t)rows + 1, sizeof(*r->ids));
	r->uids = xcalloc((size_t)rows + 1, sizeof(*r->uids));
	for (int i = 0; i < rows; i++) {
		uint32_t uid;
		uint64_t modseq = 0;
		if (str_to_u32(PQgetvalue(res, i, 0), &uid) < 0)
			continue;
		ssize_t k = imap_view_find_uid(cmd->s, uid);
		if (k < 0)
			continue;
		if (str_to_u64(PQgetvalue(res, i, 1), INT64_MAX, &modseq) == 0 &&
		    modseq > r->maxmodseq)
			r->maxmodseq = modseq;
		r->uids[r->n] = uid;
		r->ids[r->n++] = cmd->uid ? uid : (uint32_t)k + 1;
	}
}

static void search_answer_classic(struct imap_cmd *cmd, const struct search_result *r, bool modseq)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_append_str(&b, "* SEARCH");
	for (size_t i = 0; i < r->n; i++)
		buf_printf(&b, " %u", r->ids[i]);
	if (modseq && r->n > 0)
		buf_printf(&b, " (MODSEQ %llu)", (unsigned long long)r->maxmodseq);
	buf_append_str(&b, "\r\n");
	imap_write(cmd->s, b.data, b.len);
	buf_free(&b);
}

static void search_answer_esearch(struct imap_cmd *cmd, const struct search_result *r, unsigned ret,
                                  bool modseq)
{
	struct buf b;
	buf_init(&b, BUF_NO_LIMIT);
	buf_printf(&b, "* ESEARCH (TAG \"%s\")%s", cmd->tag, cmd->uid ? " UID" : "");
	if ((ret & SR_MIN) && r->n > 0)
		buf_printf(&b, " MIN %u", r->ids[0]);
	if ((ret & SR_MAX) && r->n > 0)
		buf_printf(&b, " MAX %u", r->ids[r->n - 1]);
	if ((ret & SR_COUNT))
		buf_printf(&b, " COUNT %zu", r->n);
	if ((ret & SR_ALL) && r->n > 0) {
		buf_append_str(&b, " ALL ");
		imap_uidset_format(r->ids, r->n, &b);
	}
	if (modseq && r->n > 0)
		buf_printf(&b, " MODSEQ %llu", (unsigned long long)r->maxmodseq);
	buf_append_str(&b, "\r\n");
	imap_write(cmd->s, b.data, b.len);
	buf_free(&b);
}

/* SAVE keeps MIN and/or MAX only when those are asked for (RFC 5182 2.4). */
static void search_save(struct imap_session *s, struct search_result *r, unsigned ret)
{
	uint32_t *keep = xcalloc(r->n + 1, sizeof(*keep));
	size_t k = 0;
	if ((ret & (SR_MIN | SR_MAX)) && !(ret & (SR_ALL | SR_COUNT)) && r->n > 0) {
		if (ret & SR_MIN)
			keep[k++] = r->uids[0];
		if ((ret & SR_MAX) && (k == 0 || r->uids[r->n - 1] != keep[0]))
			keep[k++] = r->uids[r->n - 1];
	} else {
		memcpy(keep, r->uids, r->n * sizeof(*keep));
		k = r->n;
	}
	imap_searchres_set(s, keep, k);
}

static int search_execute(struct imap_cmd *cmd, const struct imap_search_prog *prog,
                          const struct search_opts *o)
{
	PGconn *conn = imap_db_borrow(cmd);
	if (conn == NULL)
		return 0;
	PGresult *res = NULL;
	int ret = imap_search_run(cmd, conn, prog, "e.uid, e.modseq", false, &res);
	imap_db_return(cmd->s, &conn);
	if (ret == -1)
		return -1;
	if (ret == -2) {
		imap_reply_internal(cmd, "search");
		return 0;
	}
	struct search_result r = {0};
	search_collect(cmd, res, &r);
	PQclear(res);
	if (o->ret & SR_SAVE)
		search_save(cmd->s, &r, o->ret);
	if (!o->esearch)
		search_answer_classic(cmd, &r, prog->uses_modseq);
	else if (o->ret != SR_SAVE)
		search_answer_esearch(cmd, &r, o->ret, prog->uses_modseq);
	free(r.ids);
	free(r.uids);
	imap_reply_ok(cmd, "%s completed", cmd->name);
	return 0;
}

int imap_cmd_search(struct imap_cmd *cmd)
{
	struct imap_stok *toks;
	size_t n, pos = 0;
	struct search_opts o = {0};
	if (imap_arg_sp(cmd) < 0 || imap_search_read_tokens(cmd, &toks, &n) < 0 ||
	    search_parse_return(cmd, toks, n, &pos, &o) < 0)
		goto bad;
	int cs = search_parse_charset(cmd, toks, n, &pos);
	if (cs < 0)
		goto bad;
	if (cs > 0) {
		if (o.ret & SR_SAVE)
			imap_searchres_set(cmd->s, NULL, 0);
		imap_reply_no(cmd, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return 0;
	}
	if ((cmd->s->enabled & IMAP_EXT_REV2) && !o.esearch) {
		o.esearch = true;
		o.ret = SR_ALL;
	}
	struct imap_search_prog prog;
	const char *error = NULL;
	if (imap_search_parse(cmd->arena, toks, n, &pos, &prog, &error) < 0) {
		cmd->error = error;
		goto bad;
	}
	if (prog.uses_modseq)
		cmd->s->enabled |= IMAP_EXT_CONDSTORE;
	if (search_execute(cmd, &prog, &o) == 0)
		return 0;
bad:
	/* A failed SEARCH ... SAVE leaves "$" empty (RFC 5182 2.1). */
	if (o.ret & SR_SAVE)
		imap_searchres_set(cmd->s, NULL, 0);
	return -1;
}
