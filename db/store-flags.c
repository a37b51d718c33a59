/* store-flags.c - STORE: flags and keywords with CONDSTORE (RFC 7162).
 *
 * The mailbox row is locked first by taking the call's new MODSEQ; the new
 * state of each entry is worked out here and written with one UPDATE. If
 * nothing actually changes, the transaction is rolled back so MODSEQ does
 * not move. */
#include "store-private.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Borrowed keyword pointers. */
struct kw_list {
	const char **v;
	size_t n;
};

static bool kw_has_ci(const char *const *v, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i], k) == 0)
			return true;
	return false;
}

static size_t kw_count(const char *const *v)
{
	size_t n = 0;
	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

static void kw_push(struct kw_list *l, const char *k)
{
	if (kw_has_ci(l->v, l->n, k))
		return;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = k;
}

/* Keywords compare case-insensitively (RFC 3501: flags are). */
static void kw_apply(enum store_flag_mode mode, char **cur, const char *const *given,
                     struct kw_list *out)
{
	size_t ncur = kw_count((const char *const *)cur);
	size_t ngiven = kw_count(given);
	if (mode != STORE_FLAGS_SET)
		for (size_t i = 0; i < ncur; i++)
			if (mode == STORE_FLAGS_ADD || !kw_has_ci(given, ngiven, cur[i]))
				kw_push(out, cur[i]);
	if (mode != STORE_FLAGS_REMOVE)
		for (size_t i = 0; i < ngiven; i++)
			kw_push(out, given[i]);
}

static bool kw_same(char **cur, const struct kw_list *l)
{
	if (kw_count((const char *const *)cur) != l->n)
		return false;
	for (size_t i = 0; i < l->n; i++) {
		bool found = false;
		for (size_t j = 0; cur[j] != NULL && !found; j++)
			found = strcmp(cur[j], l->v[i]) == 0;
		if (!found)
			return false;
	}
	return true;
}

static unsigned flags_apply(enum store_flag_mode mode, unsigned cur, unsigned flags)
{
	switch (mode) {
	case STORE_FLAGS_SET:
		return flags;
	case STORE_FLAGS_ADD:
		return cur | flags;
	case STORE_FLAGS_REMOVE:
		return cur & ~flags;
	}
	return cur;
}

struct flags_call {
	enum store_flag_mode mode;
	unsigned flags;
	const char *const *keywords;
	uint64_t unchangedsince;
	uint64_t modseq; /* the call's new MODSEQ */
	/* The UPDATE's arrays. */
	struct buf uids, newflags, newkw;
	size_t nupdates;
	int64_t unseen_delta;
	/* Outputs. */
	struct store_flag_change *changed;
	size_t nchanged;
	uint32_t *failed;
	size_t nfailed;
};

static char **kw_dup(const struct kw_list *l)
{
	char **kw = xcalloc(l->n + 1, sizeof(*kw));
	for (size_t i = 0; i < l->n; i++)
		kw[i] = xstrdup(l->v[i]);
	return kw;
}

static void flags_queue_update(struct flags_call *c, uint32_t uid, unsigned oldf, unsigned newf,
                               const struct kw_list *kw)
{
	const char *sep = c->nupdates > 0 ? "," : "";
	buf_printf(&c->uids, "%s%u", sep, uid);
	buf_printf(&c->newflags, "%s%u", sep, newf);
	/* Keywords hold no space, quote or backslash (store_keyword_valid). */
	buf_printf(&c->newkw, "%s\"", sep);
	for (size_t i = 0; i < kw->n; i++)
		buf_printf(&c->newkw, "%s%s", i > 0 ? " " : "", kw->v[i]);
	buf_append_char(&c->newkw, '"');
	c->nupdates++;
	bool was_seen = oldf & STORE_FLAG_SEEN, is_seen = newf & STORE_FLAG_SEEN;
	c->unseen_delta += was_seen == is_seen ? 0 : is_seen ? -1 : 1;
}

/* One selected row (uid, flags, keywords, modseq): decide and record. */
static void flags_row(struct flags_call *c, const PGresult *r, int i)
{
	struct store_flag_change *ch = &c->changed[c->nchanged++];
	ch->uid = (uint32_t)store_res_i64(r, i, 0);
	unsigned oldf = (unsigned)store_res_i64(r, i, 1);
	char **oldkw = store_res_keywords(r, i, 2);
	uint64_t oldmodseq = (uint64_t)store_res_i64(r, i, 3);
	ch->flags = oldf;
	ch->modseq = oldmodseq;
	ch->keywords = oldkw;
	if (c->unchangedsince > 0 && oldmodseq > c->unchangedsince) {
		c->failed[c->nfailed++] = ch->uid;
		return;
	}
	struct kw_list kw = {0};
	kw_apply(c->mode, oldkw, c->keywords, &kw);
	unsigned newf = flags_apply(c->mode, oldf, c->flags);
	if (newf != oldf || !kw_same(oldkw, &kw)) {
		flags_queue_update(c, ch->uid, oldf, newf, &kw);
		ch->flags = newf;
		ch->modseq = c->modseq;
		ch->keywords = kw_dup(&kw);
		store_keywords_free(oldkw);
	}
	free(kw.v);
}

static enum store_err flags_lock(PGconn *conn, int64_t mailbox_id, uint64_t *modseq_r)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	enum store_err err;
	PGresult *r = store_exec(conn, "flags_lock",
	                         "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 "
	                         "WHERE id = $1::bigint RETURNING highestmodseq",
	                         &p, &err);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 1)
		*modseq_r = (uint64_t)store_res_i64(r, 0, 0);
	else
		err = STORE_ENOTFOUND;
	PQclear(r);
	return err;
}

static enum store_err flags_select(PGconn *conn, int64_t mailbox_id, const uint32_t *uids,
                                   size_t nuids, struct flags_call *c)
{
	struct buf lit;
	buf_init(&lit, BUF_NO_LIMIT);
	store_uids_literal(uids, nuids, &lit);
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	store_param_text(&p, buf_cstr(&lit));
	enum store_err err;
	PGresult *r = store_exec(conn, "flags_select",
	                         "SELECT uid, flags, array_to_string(keywords, ' '), modseq "
	                         "FROM mailbox_entries WHERE mailbox_id = $1::bigint "
	                         "AND uid = ANY($2::bigint[]) ORDER BY uid",
	                         &p, &err);
	buf_free(&lit);
	if (r == NULL)
		return err;
	int n = PQntuples(r);
	c->changed = xcalloc((size_t)n + 1, sizeof(*c->changed));
	c->failed = xcalloc((size_t)n + 1, sizeof(*c->failed));
	for (int i = 0; i < n; i++)
		flags_row(c, r, i);
	PQclear(r);
	return STORE_OK;
}

static const char sql_flags_update[] =
    "WITH v AS (SELECT * FROM unnest($2::bigint[], $3::integer[], $4::text[]) "
    "  AS v(uid, f, k)), "
    "e AS (UPDATE mailbox_entries e SET flags = v.f, "
    "  keywords = string_to_array(v.k, ' '), modseq = $5::bigint FROM v "
    "  WHERE e.mailbox_id = $1::bigint AND e.uid = v.uid) "
    "UPDATE mailboxes SET unseen = GREATEST(unseen + $6::bigint, 0) WHERE id = $1::bigint "
    "RETURNING pg_notify('" STORE_NOTIFY_CHANNEL "', id::text)";

static enum store_err flags_update(PGconn *conn, int64_t mailbox_id, struct flags_call *c)
{
	buf_append_char(&c->uids, '}');
	buf_append_char(&c->newflags, '}');
	buf_append_char(&c->newkw, '}');
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	store_param_text(&p, buf_cstr(&c->uids));
	store_param_text(&p, buf_cstr(&c->newflags));
	store_param_text(&p, buf_cstr(&c->newkw));
	store_param_u64(&p, c->modseq);
	store_param_i64(&p, c->unseen_delta);
	return store_exec_cmd(conn, "flags_update", sql_flags_update, &p);
}

static enum store_err flags_tx(PGconn *conn, int64_t mailbox_id, const uint32_t *uids, size_t nuids,
                               struct flags_call *c)
{
	enum store_err err = store_tx_begin(conn);
	if (err != STORE_OK)
		return err;
	err = flags_lock(conn, mailbox_id, &c->modseq);
	if (err == STORE_OK)
		err = flags_select(conn, mailbox_id, uids, nuids, c);
	if (err == STORE_OK && c->nupdates > 0) {
		err = flags_update(conn, mailbox_id, c);
		if (err == STORE_OK)
			return store_tx_commit(conn);
	}
	store_tx_rollback(conn);
	return err;
}

void store_flag_changes_free(struct store_flag_change **c, size_t n)
{
	if (*c == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_keywords_free((*c)[i].keywords);
	free(*c);
	*c = NULL;
}

static bool flags_args_valid(unsigned flags, const char *const *keywords)
{
	if ((flags & ~0x1fu) != 0)
		return false;
	for (size_t i = 0; keywords != NULL && keywords[i] != NULL; i++)
		if (!store_keyword_valid(keywords[i]))
			return false;
	return true;
}

enum store_err store_flags_change(PGconn *conn, int64_t mailbox_id, const uint32_t *uids,
                                  size_t nuids, enum store_flag_mode mode, unsigned flags,
                                  const char *const *keywords, uint64_t unchangedsince,
                                  struct store_flag_change **changed_r, size_t *nchanged_r,
                                  uint32_t **failed_r, size_t *nfailed_r)
{
	*changed_r = NULL;
	*nchanged_r = 0;
	*failed_r = NULL;
	*nfailed_r = 0;
	if (!flags_args_valid(flags, keywords))
		return STORE_EINVALID;
	if (nuids == 0)
		return STORE_OK;
	struct flags_call c = {
	    .mode = mode,
	    .flags = flags,
	    .keywords = keywords,
	    .unchangedsince = unchangedsince,
	};
	buf_init(&c.uids, BUF_NO_LIMIT);
	buf_init(&c.newflags, BUF_NO_LIMIT);
	buf_init(&c.newkw, BUF_NO_LIMIT);
	buf_append_char(&c.uids, '{');
	buf_append_char(&c.newflags, '{');
	buf_append_char(&c.newkw, '{');
	enum store_err err = flags_tx(conn, mailbox_id, uids, nuids, &c);
	buf_free(&c.uids);
	buf_free(&c.newflags);
	buf_free(&c.newkw);
	if (err != STORE_OK) {
		store_flag_changes_free(&c.changed, c.nchanged);
		free(c.failed);
		return err;
	}
	*changed_r = c.changed;
	*nchanged_r = c.nchanged;
	*failed_r = c.failed;
	*nfailed_r = c.nfailed;
	return STORE_OK;
}
