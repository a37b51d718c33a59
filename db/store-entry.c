/* store-entry.c - reading entries and messages, expunge tombstones, and
 * garbage collection of unreferenced blobs. */
#include "store-private.h"

#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

void store_entries_free(struct store_entry **entries, size_t n)
{
	if (*entries == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_keywords_free((*entries)[i].keywords);
	free(*entries);
	*entries = NULL;
}

static enum store_err mailbox_exists(PGconn *conn, int64_t mailbox_id)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	enum store_err err;
	PGresult *r = store_exec(conn, "mailbox_exists",
	                         "SELECT 1 FROM mailboxes WHERE id = $1::bigint", &p, &err);
	if (r != NULL && PQntuples(r) == 0)
		err = STORE_ENOTFOUND;
	PQclear(r);
	return err;
}

static void entry_from_row(const PGresult *r, int i, struct store_entry *e)
{
	e->uid = (uint32_t)store_res_i64(r, i, 0);
	e->flags = (unsigned)store_res_i64(r, i, 1);
	e->keywords = store_res_keywords(r, i, 2);
	e->modseq = (uint64_t)store_res_i64(r, i, 3);
	e->internaldate = (time_t)store_res_i64(r, i, 4);
	e->size = (uint64_t)store_res_i64(r, i, 5);
	e->message_id = store_res_i64(r, i, 6);
}

enum store_err store_entries_list(PGconn *conn, int64_t mailbox_id, uint32_t uid_lo,
                                  uint32_t uid_hi, uint64_t changedsince,
                                  struct store_entry **entries_r, size_t *n_r)
{
	*entries_r = NULL;
	*n_r = 0;
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	store_param_u64(&p, uid_lo);
	store_param_u64(&p, uid_hi);
	store_param_u64(&p, changedsince);
	enum store_err err;
	PGresult *r =
	    store_exec(conn, "entries_list",
	               "SELECT uid, flags, array_to_string(keywords, ' '), modseq, "
	               "extract(epoch FROM internaldate)::bigint, size, message_id "
	               "FROM mailbox_entries WHERE mailbox_id = $1::bigint "
	               "AND uid BETWEEN $2::bigint AND $3::bigint AND modseq > $4::bigint "
	               "ORDER BY uid",
	               &p, &err);
	if (r == NULL)
		return err;
	int n = PQntuples(r);
	if (n == 0) {
		PQclear(r);
		return mailbox_exists(conn, mailbox_id);
	}
	*entries_r = xcalloc((size_t)n, sizeof(**entries_r));
	for (int i = 0; i < n; i++)
		entry_from_row(r, i, &(*entries_r)[i]);
	*n_r = (size_t)n;
	PQclear(r);
	return STORE_OK;
}

void store_message_free_fields(struct store_message *m)
{
	free(m->envelope);
	free(m->body);
	free(m->bodystructure);
	free(m->parts);
	free(m->preview);
	m->envelope = m->body = m->bodystructure = m->preview = NULL;
	m->parts = NULL;
	m->nparts = 0;
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char hexdig[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hexdig[in[i] >> 4];
		out[2 * i + 1] = hexdig[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static enum store_err message_from_row(const PGresult *r, struct store_message *m)
{
	m->id = store_res_i64(r, 0, 0);
	if (PQgetlength(r, 0, 1) != 32)
		return STORE_EINVALID;
	hex_encode((const unsigned char *)PQgetvalue(r, 0, 1), 32, m->sha256_hex);
	m->size = (uint64_t)store_res_i64(r, 0, 2);
	m->header_size = (uint64_t)store_res_i64(r, 0, 3);
	m->envelope = store_res_strdup(r, 0, 4);
	m->body = store_res_strdup(r, 0, 5);
	m->bodystructure = store_res_strdup(r, 0, 6);
	m->preview = store_res_strdup(r, 0, 8);
	m->has_date = !store_res_null(r, 0, 9);
	m->date = (time_t)store_res_i64(r, 0, 9);
	if (mime_parts_unpack(PQgetvalue(r, 0, 7), (size_t)PQgetlength(r, 0, 7), m->size, &m->parts,
	                      &m->nparts) < 0) {
		log_error("event=store_parts_corrupt message=%lld", (long long)m->id);
		return STORE_EINVALID;
	}
	return STORE_OK;
}

enum store_err store_message_get(PGconn *conn, int64_t message_id, struct store_message *m_r)
{
	memset(m_r, 0, sizeof(*m_r));
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, message_id);
	enum store_err err;
	PGresult *r = store_exec(conn, "message_get",
	                         "SELECT id, sha256, size, header_size, envelope, body, "
	                         "bodystructure, parts, preview, "
	                         "extract(epoch FROM sent_date)::bigint FROM messages "
	                         "WHERE id = $1::bigint",
	                         &p, &err);
	if (r == NULL)
		return err;
	err = PQntuples(r) == 1 ? message_from_row(r, m_r) : STORE_ENOTFOUND;
	PQclear(r);
	if (err != STORE_OK)
		store_message_free_fields(m_r);
	return err;
}

enum store_err store_message_read(PGconn *conn, int64_t message_id, uint64_t offset, uint64_t len,
                                  struct buf *out)
{
	/* substring() takes 32-bit positions; a bytea never reaches 2 GB, so
	 * clamping only ever trims what is not there. */
	if (offset > INT32_MAX - 1)
		offset = INT32_MAX - 1;
	if (len > INT32_MAX)
		len = INT32_MAX;
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, message_id);
	store_param_u64(&p, offset + 1);
	store_param_u64(&p, len);
	enum store_err err;
	PGresult *r = store_exec(conn, "message_read",
	                         "SELECT substring(b.data FROM $2::integer FOR $3::integer) "
	                         "FROM messages m JOIN blobs b ON b.sha256 = m.sha256 "
	                         "WHERE m.id = $1::bigint",
	                         &p, &err);
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1)
		err = STORE_ENOTFOUND;
	else if (buf_append(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0)) < 0)
		err = STORE_EINVALID; /* the caller's buffer is too small */
	PQclear(r);
	return err;
}

enum store_err store_expunged_since(PGconn *conn, int64_t mailbox_id, uint64_t since,
                                    uint32_t **uids_r, size_t *n_r)
{
	*uids_r = NULL;
	*n_r = 0;
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, mailbox_id);
	store_param_u64(&p, since);
	enum store_err err;
	PGresult *r = store_exec(conn, "expunged_since",
	                         "SELECT uid FROM expunged WHERE mailbox_id = $1::bigint "
	                         "AND modseq > $2::bigint ORDER BY uid",
	                         &p, &err);
	if (r == NULL)
		return err;
	int n = PQntuples(r);
	*uids_r = xcalloc((size_t)n + 1, sizeof(**uids_r));
	for (int i = 0; i < n; i++)
		(*uids_r)[i] = (uint32_t)store_res_i64(r, i, 0);
	*n_r = (size_t)n;
	PQclear(r);
	return STORE_OK;
}

/* Garbage collection. Orphans are looked for without the reference fence
 * (store-private.h), which may take a while on a large store, and deleted
 * under it, each checked again: what a delivery referred to meanwhile has
 * committed by then and stays. Deliveries wait for the fence only while a
 * batch is deleted. Rows another transaction holds locked (the indexer
 * filing a message's text) are left for the next run. */
#define STORE_GC_BATCH 500

static const char sql_gc_find_messages[] =
    "SELECT array_agg(id)::text FROM (SELECT id FROM messages m WHERE NOT EXISTS "
    "(SELECT 1 FROM mailbox_entries e WHERE e.message_id = m.id) LIMIT $1::integer) AS o";

static const char sql_gc_find_blobs[] =
    "SELECT array_agg(sha256)::text FROM (SELECT sha256 FROM blobs b WHERE NOT EXISTS "
    "(SELECT 1 FROM messages m WHERE m.sha256 = b.sha256) AND NOT EXISTS "
    "(SELECT 1 FROM queue q WHERE q.sha256 = b.sha256) LIMIT $1::integer) AS o";

static const char sql_gc_fence[] = "SELECT " STORE_FENCE_EXCLUSIVE;

static const char sql_gc_messages[] =
    "DELETE FROM messages WHERE id IN (SELECT id FROM messages m "
    "WHERE id = ANY($1::bigint[]) AND NOT EXISTS "
    "(SELECT 1 FROM mailbox_entries e WHERE e.message_id = m.id) FOR UPDATE SKIP LOCKED)";

static const char sql_gc_blobs[] =
    "DELETE FROM blobs WHERE sha256 IN (SELECT sha256 FROM blobs b "
    "WHERE sha256 = ANY($1::bytea[]) AND NOT EXISTS "
    "(SELECT 1 FROM messages m WHERE m.sha256 = b.sha256) AND NOT EXISTS "
    "(SELECT 1 FROM queue q WHERE q.sha256 = b.sha256) FOR UPDATE SKIP LOCKED)";

/* An array literal of up to STORE_GC_BATCH orphans (NULL: none, or *err_r). */
static char *gc_find(PGconn *conn, const char *what, const char *sql, enum store_err *err_r)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, STORE_GC_BATCH);
	PGresult *r = store_exec(conn, what, sql, &p, err_r);
	if (r == NULL)
		return NULL;
	char *list = PQntuples(r) == 1 ? store_res_strdup(r, 0, 0) : NULL;
	PQclear(r);
	return list;
}

/* Rows deleted by sql with the list, or -1. */
static int64_t gc_delete(PGconn *conn, const char *what, const char *sql, const char *list)
{
	if (list == NULL)
		return 0;
	struct store_params p;
	store_params_init(&p);
	store_param_text(&p, list);
	enum store_err err;
	PGresult *r = store_exec(conn, what, sql, &p, &err);
	if (r == NULL)
		return -1;
	uint64_t n = 0;
	if (str_to_u64(PQcmdTuples(r), INT64_MAX, &n) < 0)
		n = 0;
	PQclear(r);
	return (int64_t)n;
}

/* One batch, in one transaction: messages rows deleted in *msgs_r, blobs in
 * *blobs_r. */
static enum store_err gc_round(PGconn *conn, int64_t *msgs_r, int64_t *blobs_r)
{
	*msgs_r = *blobs_r = 0;
	enum store_err err = store_tx_begin(conn);
	if (err != STORE_OK)
		return err;
	char *msgs = gc_find(conn, "gc_find_messages", sql_gc_find_messages, &err);
	char *blobs =
	    err == STORE_OK ? gc_find(conn, "gc_find_blobs", sql_gc_find_blobs, &err) : NULL;
	if (err == STORE_OK && (msgs != NULL || blobs != NULL))
		err = store_exec_cmd(conn, "gc_fence", sql_gc_fence, NULL);
	if (err == STORE_OK)
		*msgs_r = gc_delete(conn, "gc_messages", sql_gc_messages, msgs);
	if (err == STORE_OK && *msgs_r >= 0)
		*blobs_r = gc_delete(conn, "gc_blobs", sql_gc_blobs, blobs);
	if (err == STORE_OK && (*msgs_r < 0 || *blobs_r < 0))
		err = STORE_ETEMP;
	free(msgs);
	free(blobs);
	if (err == STORE_OK)
		err = store_tx_commit(conn);
	else
		store_tx_rollback(conn);
	return err;
}

int64_t store_gc(PGconn *conn)
{
	int64_t total = 0, msgs, blobs;
	do {
		if (gc_round(conn, &msgs, &blobs) != STORE_OK)
			return -1;
		total += blobs;
	} while (msgs > 0 || blobs > 0);
	return total;
}
