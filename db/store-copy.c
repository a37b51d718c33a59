/* store-copy.c - COPY/MOVE between mailboxes, EXPUNGE and the tombstones
 * both leave behind.
 *
 * Locks are always taken mailbox rows first (ascending id), then the
 * account row, like delivery, so concurrent changes never deadlock. */
#include "store-private.h"

#include "xalloc.h"

#include <stdlib.h>

/* The source entries a copy or expunge works on. */
struct entry_set {
	uint32_t *uids;
	size_t n;
	uint64_t size;
	uint64_t unseen;
};

static void entry_set_free(struct entry_set *s)
{
	free(s->uids);
	s->uids = NULL;
	s->n = 0;
}

/* Reads uid, size, flags rows into s. */
static void entry_set_from(const PGresult *r, struct entry_set *s)
{
	int n = PQntuples(r);
	s->uids = xcalloc((size_t)n + 1, sizeof(*s->uids));
	s->n = (size_t)n;
	s->size = 0;
	s->unseen = 0;
	for (int i = 0; i < n; i++) {
		s->uids[i] = (uint32_t)store_res_i64(r, i, 0);
		s->size += (uint64_t)store_res_i64(r, i, 1);
		if ((store_res_i64(r, i, 2) & STORE_FLAG_SEEN) == 0)
			s->unseen++;
	}
}

/* Entries of mailbox_id with the given uids (all when uids is NULL, only
 * \Deleted ones when deleted_only). */
static enum store_err entry_set_load(PGconn *conn, int64_t mailbox_id, const uint32_t *uids,
                                     size_t nuids, bool deleted_only, struct entry_set *s)
{
	struct buf lit;
	buf_init(&lit, BUF_NO_LIMIT);
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	const char *sql;
	if (uids != NULL) {
		store_uids_literal(uids, nuids, &lit);
		store_param_text(&p, buf_cstr(&lit));
		sql = "SELECT uid, size, flags FROM mailbox_entries WHERE mailbox_id = $1::bigint "
		      "AND uid = ANY($2::bigint[]) ORDER BY uid";
	} else if (deleted_only) {
		sql = "SELECT uid, size, flags FROM mailbox_entries WHERE mailbox_id = $1::bigint "
		      "AND (flags & 8) <> 0 ORDER BY uid";
	} else {
		sql = "SELECT uid, size, flags FROM mailbox_entries WHERE mailbox_id = $1::bigint "
		      "ORDER BY uid";
	}
	enum store_err err;
	PGresult *r = store_exec(conn, "entries_load", sql, &p, &err);
	buf_free(&lit);
	if (r == NULL)
		return err;
	entry_set_from(r, s);
	PQclear(r);
	return STORE_OK;
}

static const char sql_remove[] =
    "WITH m AS (UPDATE mailboxes SET highestmodseq = highestmodseq + 1, "
    "  messages = GREATEST(messages - $3::bigint, 0), "
    "  unseen = GREATEST(unseen - $4::bigint, 0), "
    "  size_bytes = GREATEST(size_bytes - $5::bigint, 0) WHERE id = $1::bigint "
    "  RETURNING highestmodseq, pg_notify('" STORE_NOTIFY_CHANNEL "', id::text)), "
    "d AS (DELETE FROM mailbox_entries WHERE mailbox_id = $1::bigint "
    "  AND uid = ANY($2::bigint[])), "
    "a AS (UPDATE accounts SET used_bytes = GREATEST(used_bytes - $6::bigint, 0) "
    "  WHERE id = $7::bigint AND $6::bigint > 0) "
    "INSERT INTO expunged (mailbox_id, uid, modseq) "
    "SELECT $1::bigint, x, m.highestmodseq FROM unnest($2::bigint[]) AS x, m "
    "ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq";

enum store_err store_remove_entries_tx(PGconn *conn, int64_t mailbox_id, int64_t account_id,
                                       const uint32_t *uids, size_t n, uint64_t unseen,
                                       uint64_t size, uint64_t release)
{
	struct buf lit;
	buf_init(&lit, BUF_NO_LIMIT);
	store_uids_literal(uids, n, &lit);
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	store_param_text(&p, buf_cstr(&lit));
	store_param_u64(&p, n);
	store_param_u64(&p, unseen);
	store_param_u64(&p, size);
	store_param_u64(&p, release);
	store_param_i64(&p, account_id);
	enum store_err err = store_exec_cmd(conn, "entries_remove", sql_remove, &p);
	buf_free(&lit);
	return err;
}

/* Locks src and dst (ascending id) and checks they share an account. */
static enum store_err copy_lock(PGconn *conn, int64_t src, int64_t dst, int64_t *account_r,
                                uint32_t *dst_uidvalidity_r)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, src);
	store_param_i64(&p, dst);
	enum store_err err;
	PGresult *r = store_exec(conn, "copy_lock",
	                         "SELECT id, account_id, uidvalidity FROM mailboxes "
	                         "WHERE id IN ($1::bigint, $2::bigint) ORDER BY id FOR UPDATE",
	                         &p, &err);
	if (r == NULL)
		return err;
	int want = src == dst ? 1 : 2;
	if (PQntuples(r) != want) {
		err = STORE_ENOTFOUND;
	} else if (store_res_i64(r, 0, 1) != store_res_i64(r, want - 1, 1)) {
		err = STORE_EINVALID;
	} else {
		*account_r = store_res_i64(r, 0, 1);
		int d = store_res_i64(r, 0, 0) == dst ? 0 : 1;
		*dst_uidvalidity_r = (uint32_t)store_res_i64(r, d, 2);
	}
	PQclear(r);
	return err;
}

static enum store_err quota_take(PGconn *conn, int64_t account_id, uint64_t size)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, account_id);
	store_param_u64(&p, size);
	enum store_err err;
	PGresult *r = store_exec(conn, "quota_take",
	                         "UPDATE accounts SET used_bytes = used_bytes + $2::bigint "
	                         "WHERE id = $1::bigint AND (quota_bytes = 0 OR "
	                         "used_bytes + $2::bigint <= quota_bytes) RETURNING id",
	                         &p, &err);
	if (r != NULL && PQntuples(r) == 0)
		err = STORE_EQUOTA;
	PQclear(r);
	return err;
}

/* Reserves s->n UIDs and a MODSEQ in dst and counts the new entries. */
static enum store_err copy_reserve(PGconn *conn, int64_t dst, const struct entry_set *s,
                                   uint64_t *first_uid_r, uint64_t *modseq_r)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, dst);
	store_param_u64(&p, s->n);
	store_param_u64(&p, s->unseen);
	store_param_u64(&p, s->size);
	enum store_err err;
	PGresult *r =
	    store_exec(conn, "copy_reserve",
	               "UPDATE mailboxes SET uidnext = uidnext + $2::bigint, "
	               "highestmodseq = highestmodseq + 1, messages = messages + $2::bigint, "
	               "unseen = unseen + $3::bigint, size_bytes = size_bytes + $4::bigint "
	               "WHERE id = $1::bigint RETURNING uidnext - $2::bigint, highestmodseq, "
	               "pg_notify('" STORE_NOTIFY_CHANNEL "', id::text)",
	               &p, &err);
	if (r == NULL)
		return err;
	*first_uid_r = (uint64_t)store_res_i64(r, 0, 0);
	*modseq_r = (uint64_t)store_res_i64(r, 0, 1);
	PQclear(r);
	/* UIDs are 32-bit (the CHECK on mailbox_entries would refuse them too). */
	return *first_uid_r + s->n - 1 > UINT32_MAX ? STORE_EINVALID : STORE_OK;
}

/* New entries share the source's message rows: no blob is copied. The
 * n-th source UID (ascending) gets first_uid + n. */
static const char sql_copy_insert[] =
    "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, flags, keywords, modseq, "
    "  internaldate, size) "
    "SELECT $1::bigint, $2::bigint + row_number() OVER (ORDER BY uid) - 1, message_id, "
    "  flags, keywords, $3::bigint, internaldate, size FROM mailbox_entries "
    "WHERE mailbox_id = $4::bigint AND uid = ANY($5::bigint[])";

static enum store_err copy_insert(PGconn *conn, int64_t src, int64_t dst, const struct entry_set *s,
                                  uint64_t first_uid, uint64_t modseq)
{
	struct buf lit;
	buf_init(&lit, BUF_NO_LIMIT);
	store_uids_literal(s->uids, s->n, &lit);
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, dst);
	store_param_u64(&p, first_uid);
	store_param_u64(&p, modseq);
	store_param_i64(&p, src);
	store_param_text(&p, buf_cstr(&lit));
	enum store_err err = store_exec_cmd(conn, "copy_insert", sql_copy_insert, &p);
	buf_free(&lit);
	return err;
}

static enum store_err copy_entries(PGconn *conn, int64_t src, int64_t dst, int64_t account,
                                   bool move, const struct entry_set *s, uint64_t *first_r)
{
	uint64_t modseq = 0;
	/* A move adds and removes the same bytes: the quota does not change. */
	enum store_err err = move ? STORE_OK : quota_take(conn, account, s->size);
	if (err == STORE_OK)
		err = copy_reserve(conn, dst, s, first_r, &modseq);
	if (err == STORE_OK)
		err = copy_insert(conn, src, dst, s, *first_r, modseq);
	if (err == STORE_OK && move)
		err = store_remove_entries_tx(conn, src, account, s->uids, s->n, s->unseen, s->size,
		                              0);
	return err;
}

enum store_err store_copy_tx(PGconn *conn, int64_t src, const uint32_t *uids, size_t nuids,
                             int64_t dst, bool move, uint32_t **src_uids_r, uint32_t **dst_uids_r,
                             size_t *n_r, uint32_t *dst_uidvalidity_r)
{
	*src_uids_r = NULL;
	*dst_uids_r = NULL;
	*n_r = 0;
	int64_t account = 0;
	enum store_err err = copy_lock(conn, src, dst, &account, dst_uidvalidity_r);
	struct entry_set s = {0};
	if (err == STORE_OK)
		err = entry_set_load(conn, src, uids, nuids, false, &s);
	uint64_t first = 0;
	if (err == STORE_OK && s.n > 0)
		err = copy_entries(conn, src, dst, account, move, &s, &first);
	if (err != STORE_OK) {
		entry_set_free(&s);
		return err;
	}
	*dst_uids_r = xcalloc(s.n + 1, sizeof(**dst_uids_r));
	for (size_t i = 0; i < s.n; i++)
		(*dst_uids_r)[i] = (uint32_t)(first + i);
	*src_uids_r = s.uids;
	*n_r = s.n;
	return STORE_OK;
}

enum store_err store_copy(PGconn *conn, int64_t src_mailbox_id, const uint32_t *uids, size_t nuids,
                          int64_t dst_mailbox_id, bool move, uint32_t **src_uids_r,
                          uint32_t **dst_uids_r, size_t *n_r, uint32_t *dst_uidvalidity_r)
{
	*src_uids_r = NULL;
	*dst_uids_r = NULL;
	*n_r = 0;
	*dst_uidvalidity_r = 0;
	if (uids == NULL)
		return STORE_EINVALID;
	enum store_err err = store_tx_begin(conn);
	if (err != STORE_OK)
		return err;
	err = store_copy_tx(conn, src_mailbox_id, uids, nuids, dst_mailbox_id, move, src_uids_r,
	                    dst_uids_r, n_r, dst_uidvalidity_r);
	if (err == STORE_OK)
		err = store_tx_commit(conn);
	else
		store_tx_rollback(conn);
	if (err != STORE_OK) {
		free(*src_uids_r);
		free(*dst_uids_r);
		*src_uids_r = NULL;
		*dst_uids_r = NULL;
		*n_r = 0;
	}
	return err;
}

static enum store_err expunge_tx(PGconn *conn, int64_t mailbox_id, const uint32_t *uids,
                                 size_t nuids, struct entry_set *s)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	enum store_err err;
	PGresult *r = store_exec(
	    conn, "expunge_lock",
	    "SELECT account_id FROM mailboxes WHERE id = $1::bigint FOR UPDATE", &p, &err);
	if (r == NULL)
		return err;
	int64_t account = PQntuples(r) == 1 ? store_res_i64(r, 0, 0) : 0;
	PQclear(r);
	if (account == 0)
		return STORE_ENOTFOUND;
	err = entry_set_load(conn, mailbox_id, uids, nuids, uids == NULL, s);
	if (err == STORE_OK && s->n > 0)
		err = store_remove_entries_tx(conn, mailbox_id, account, s->uids, s->n, s->unseen,
		                              s->size, s->size);
	return err;
}

enum store_err store_expunge(PGconn *conn, int64_t mailbox_id, const uint32_t *uids, size_t nuids,
                             uint32_t **expunged_r, size_t *n_r)
{
	*expunged_r = NULL;
	*n_r = 0;
	enum store_err err = store_tx_begin(conn);
	if (err != STORE_OK)
		return err;
	struct entry_set s = {0};
	err = expunge_tx(conn, mailbox_id, uids, nuids, &s);
	if (err == STORE_OK && s.n > 0)
		err = store_tx_commit(conn);
	else
		store_tx_rollback(conn);
	if (err != STORE_OK) {
		entry_set_free(&s);
		return err;
	}
	*expunged_r = s.uids;
	*n_r = s.n;
	return STORE_OK;
}
