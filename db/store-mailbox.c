/* store-mailbox.c - mailboxes: list, look up, create, delete, rename,
 * subscribe, and the defaults of a new account. */
#include "store-private.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define MAILBOX_SELECT "SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes "

void store_mailbox_free_fields(struct store_mailbox *mb)
{
	free(mb->name);
	free(mb->special_use);
	mb->name = NULL;
	mb->special_use = NULL;
}

void store_mailboxes_free(struct store_mailbox **mbs, size_t n)
{
	if (*mbs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_mailbox_free_fields(&(*mbs)[i]);
	free(*mbs);
	*mbs = NULL;
}

enum store_err store_mailbox_list(PGconn *conn, int64_t account_id, struct store_mailbox **mbs_r,
                                  size_t *n_r)
{
	*mbs_r = NULL;
	*n_r = 0;
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, account_id);
	enum store_err err;
	PGresult *r = store_exec(conn, "mailbox_list",
	                         MAILBOX_SELECT "WHERE account_id = $1::bigint "
	                                        "ORDER BY name COLLATE \"C\"",
	                         &p, &err);
	if (r == NULL)
		return err;
	int n = PQntuples(r);
	*mbs_r = xcalloc((size_t)n + 1, sizeof(**mbs_r));
	for (int i = 0; i < n; i++)
		store_mailbox_from_row(r, i, &(*mbs_r)[i]);
	*n_r = (size_t)n;
	PQclear(r);
	return STORE_OK;
}

/* Runs a query for at most one mailbox row. */
static enum store_err mailbox_fetch_one(PGconn *conn, const char *sql, const struct store_params *p,
                                        struct store_mailbox *mb_r)
{
	memset(mb_r, 0, sizeof(*mb_r));
	enum store_err err;
	PGresult *r = store_exec(conn, "mailbox_get", sql, p, &err);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 1)
		store_mailbox_from_row(r, 0, mb_r);
	else
		err = STORE_ENOTFOUND;
	PQclear(r);
	return err;
}

enum store_err store_mailbox_get(PGconn *conn, int64_t account_id, const char *name,
                                 struct store_mailbox *mb_r)
{
	memset(mb_r, 0, sizeof(*mb_r));
	struct buf norm;
	buf_init(&norm, BUF_NO_LIMIT);
	enum store_err err = store_mailbox_name_normalize(name, &norm);
	if (err == STORE_OK) {
		struct store_params p;
		store_params_init(&p);
		store_param_i64(&p, account_id);
		store_param_text(&p, buf_cstr(&norm));
		err = mailbox_fetch_one(
		    conn, MAILBOX_SELECT "WHERE account_id = $1::bigint AND name = $2", &p, mb_r);
	}
	buf_free(&norm);
	return err;
}

enum store_err store_mailbox_get_by_id(PGconn *conn, int64_t mailbox_id, struct store_mailbox *mb_r)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	return mailbox_fetch_one(conn, MAILBOX_SELECT "WHERE id = $1::bigint", &p, mb_r);
}

static bool special_use_valid(const char *s)
{
	static const char *const uses[] = {
	    "\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash",
	};
	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
		if (strcmp(s, uses[i]) == 0)
			return true;
	return false;
}

/* Inserts a mailbox with an already normalised name. */
static enum store_err mailbox_insert(PGconn *conn, int64_t account_id, const char *name,
                                     const char *special_use, int64_t *id_r)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, account_id);
	store_param_text(&p, name);
	store_param_text(&p, special_use);
	enum store_err err;
	PGresult *r = store_exec(conn, "mailbox_create",
	                         "INSERT INTO mailboxes (account_id, name, special_use) "
	                         "VALUES ($1::bigint, $2, $3) RETURNING id",
	                         &p, &err);
	if (r == NULL)
		return err;
	if (id_r != NULL)
		*id_r = store_res_i64(r, 0, 0);
	PQclear(r);
	return STORE_OK;
}

enum store_err store_mailbox_create(PGconn *conn, int64_t account_id, const char *name,
                                    const char *special_use, int64_t *id_r)
{
	if (special_use != NULL && !special_use_valid(special_use))
		return STORE_EINVALID;
	struct buf norm;
	buf_init(&norm, BUF_NO_LIMIT);
	enum store_err err = store_mailbox_name_normalize(name, &norm);
	if (err == STORE_OK)
		err = mailbox_insert(conn, account_id, buf_cstr(&norm), special_use, id_r);
	buf_free(&norm);
	return err;
}

/* Locks the named mailbox of the account; *id_r its id. */
static enum store_err mailbox_lock(PGconn *conn, int64_t account_id, const char *name,
                                   int64_t *id_r)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, account_id);
	store_param_text(&p, name);
	enum store_err err;
	PGresult *r = store_exec(conn, "mailbox_lock",
	                         "SELECT id FROM mailboxes WHERE account_id = $1::bigint "
	                         "AND name = $2 FOR UPDATE",
	                         &p, &err);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 1)
		*id_r = store_res_i64(r, 0, 0);
	else
		err = STORE_ENOTFOUND;
	PQclear(r);
	return err;
}

/* The entries go with the mailbox (its delete trigger, migration 015);
 * their bytes are released from the quota in the same statement. Message
 * rows and blobs are left to store_gc(). */
static const char sql_mailbox_delete[] =
    "WITH s AS (SELECT COALESCE(sum(size), 0)::bigint AS total FROM mailbox_entries "
    "  WHERE mailbox_id = $1::bigint), "
    "d AS (DELETE FROM mailboxes WHERE id = $1::bigint "
    "  RETURNING id, pg_notify('" STORE_NOTIFY_CHANNEL "', id::text)) "
    "UPDATE accounts SET used_bytes = GREATEST(used_bytes - (SELECT total FROM s), 0) "
    "WHERE id = $2::bigint AND EXISTS (SELECT 1 FROM d)";

static enum store_err mailbox_delete_tx(PGconn *conn, int64_t account_id, const char *name)
{
	int64_t id = 0;
	enum store_err err = mailbox_lock(conn, account_id, name, &id);
	if (err != STORE_OK)
		return err;
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, id);
	store_param_i64(&p, account_id);
	return store_exec_cmd(conn, "mailbox_delete", sql_mailbox_delete, &p);
}

enum store_err store_mailbox_delete(PGconn *conn, int64_t account_id, const char *name)
{
	struct buf norm;
	buf_init(&norm, BUF_NO_LIMIT);
	enum store_err err = store_mailbox_name_normalize(name, &norm);
	if (err == STORE_OK && store_mailbox_name_is_inbox(buf_cstr(&norm)))
		err = STORE_EPERM;
	if (err == STORE_OK)
		err = store_tx_begin(conn);
	if (err == STORE_OK) {
		err = mailbox_delete_tx(conn, account_id, buf_cstr(&norm));
		if (err == STORE_OK)
			err = store_tx_commit(conn);
		else
			store_tx_rollback(conn);
	}
	buf_free(&norm);
	return err;
}

/* RFC 3501 6.3.5: renaming INBOX moves its messages to a new mailbox and
 * leaves INBOX in place, empty; INBOX's children stay where they are. */
static enum store_err rename_inbox_tx(PGconn *conn, int64_t account_id, const char *to)
{
	int64_t inbox = 0, dst = 0;
	enum store_err err = mailbox_lock(conn, account_id, "INBOX", &inbox);
	if (err == STORE_OK)
		err = mailbox_insert(conn, account_id, to, NULL, &dst);
	if (err != STORE_OK)
		return err;
	uint32_t *src_uids = NULL, *dst_uids = NULL, uidvalidity = 0;
	size_t n = 0;
	err =
	    store_copy_tx(conn, inbox, NULL, 0, dst, true, &src_uids, &dst_uids, &n, &uidvalidity);
	free(src_uids);
	free(dst_uids);
	return err;
}

/* "a" and every "a/..." move under the new name; the unique index answers
 * EEXISTS if any new name is taken. */
static const char sql_rename[] =
    "WITH l AS (SELECT id FROM mailboxes WHERE account_id = $1::bigint AND "
    "  (name = $2::text OR left(name, length($2::text) + 1) = $2::text || '/') "
    "  ORDER BY id FOR UPDATE) "
    "UPDATE mailboxes SET name = $3::text || substr(name, length($2::text) + 1), "
    "  highestmodseq = highestmodseq + 1 "
    "WHERE id IN (SELECT id FROM l) "
    "RETURNING name = $3::text, pg_notify('" STORE_NOTIFY_CHANNEL "', id::text)";

static enum store_err rename_tx(PGconn *conn, int64_t account_id, const char *from, const char *to)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, account_id);
	store_param_text(&p, from);
	store_param_text(&p, to);
	enum store_err err;
	PGresult *r = store_exec(conn, "mailbox_rename", sql_rename, &p, &err);
	if (r == NULL)
		return err;
	err = STORE_ENOTFOUND;
	for (int i = 0; i < PQntuples(r); i++)
		if (store_res_bool(r, i, 0))
			err = STORE_OK;
	PQclear(r);
	return err;
}

static enum store_err rename_check(const char *from, const char *to)
{
	size_t flen = strlen(from);
	if (store_mailbox_name_is_inbox(to) || strcmp(from, to) == 0)
		return STORE_EEXISTS;
	/* Into its own subtree: the names would collide while moving (INBOX
	 * is different: its children stay). */
	if (!store_mailbox_name_is_inbox(from) && strncmp(to, from, flen) == 0 && to[flen] == '/')
		return STORE_EINVALID;
	return STORE_OK;
}

enum store_err store_mailbox_rename(PGconn *conn, int64_t account_id, const char *from,
                                    const char *to)
{
	struct buf f, t;
	buf_init(&f, BUF_NO_LIMIT);
	buf_init(&t, BUF_NO_LIMIT);
	enum store_err err = store_mailbox_name_normalize(from, &f);
	if (err == STORE_OK)
		err = store_mailbox_name_normalize(to, &t);
	if (err == STORE_OK)
		err = rename_check(buf_cstr(&f), buf_cstr(&t));
	if (err == STORE_OK)
		err = store_tx_begin(conn);
	if (err == STORE_OK) {
		if (store_mailbox_name_is_inbox(buf_cstr(&f)))
			err = rename_inbox_tx(conn, account_id, buf_cstr(&t));
		else
			err = rename_tx(conn, account_id, buf_cstr(&f), buf_cstr(&t));
		if (err == STORE_OK)
			err = store_tx_commit(conn);
		else
			store_tx_rollback(conn);
	}
	buf_free(&f);
	buf_free(&t);
	return err;
}

enum store_err store_mailbox_subscribe(PGconn *conn, int64_t account_id, const char *name,
                                       bool subscribed)
{
	struct buf norm;
	buf_init(&norm, BUF_NO_LIMIT);
	enum store_err err = store_mailbox_name_normalize(name, &norm);
	if (err != STORE_OK) {
		buf_free(&norm);
		return err;
	}
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, account_id);
	store_param_text(&p, buf_cstr(&norm));
	store_param_bool(&p, subscribed);
	PGresult *r = store_exec(conn, "mailbox_subscribe",
	                         "UPDATE mailboxes SET subscribed = $3::boolean "
	                         "WHERE account_id = $1::bigint AND name = $2 RETURNING id",
	                         &p, &err);
	if (r != NULL && PQntuples(r) == 0)
		err = STORE_ENOTFOUND;
	PQclear(r);
	buf_free(&norm);
	return err;
}

enum store_err store_mailboxes_create_defaults(PGconn *conn, int64_t account_id)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, account_id);
	store_param_text(&p, "\\Sent");
	store_param_text(&p, "\\Drafts");
	store_param_text(&p, "\\Trash");
	store_param_text(&p, "\\Junk");
	store_param_text(&p, "\\Archive");
	return store_exec_cmd(conn, "mailbox_defaults",
	                      "INSERT INTO mailboxes (account_id, name, special_use) VALUES "
	                      "($1::bigint, 'INBOX', NULL), ($1::bigint, 'Sent', $2), "
	                      "($1::bigint, 'Drafts', $3), ($1::bigint, 'Trash', $4), "
	                      "($1::bigint, 'Junk', $5), ($1::bigint, 'Archive', $6) "
	                      "ON CONFLICT (account_id, name) DO NOTHING",
	                      &p);
}
