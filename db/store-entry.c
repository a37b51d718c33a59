/* store-entry.c - reading entries and messages, expunge tombstones, and
 * garbage collection of unreferenced blobs. */
#include "store-private.h"

#include "log.h"
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

/* Garbage collection. Orphans are looked for in one scan per kind (which
 * may take a while on a large store), then deleted in batches: each batch
 * first takes the exclusive side of the fences (store-private.h) of the
 * rows it found, skipping those a delivery holds, and then, in a statement
 * of its own (so its snapshot sees what those deliveries committed),
 * deletes the ones still unreferenced. Rows skipped, rows another
 * transaction holds locked (the indexer filing a message's text) and
 * orphans past the first STORE_GC_SCAN are left for the next run.
 * Messages go first, so the blobs they held go in the same run. */
#define STORE_GC_SCAN  100000
#define STORE_GC_BATCH 200

struct gc_kind {
	const char *what;
	const char *find;   /* $1 the most to find; one text column */
	const char *fence;  /* $1 a text array of found rows: those fenced */
	const char *delete; /* $1 a text array of fenced rows; how many went */
};

#define GC_FENCE_WHERE                                                                             \
	"pg_try_advisory_xact_lock(" STORE_FENCE_CLASS ", " STORE_FENCE_KEY("c.sha256") ")"

static const struct gc_kind gc_messages = {
    "gc_messages",
    "SELECT id::text FROM messages m WHERE NOT EXISTS "
    "(SELECT 1 FROM mailbox_entries e WHERE e.message_id = m.id) LIMIT $1::integer",
    /* OFFSET 0: the fences of these rows only, whatever the plan. */
    "SELECT c.id::text FROM (SELECT id, sha256 FROM messages "
    "WHERE id = ANY($1::text[]::bigint[]) OFFSET 0) AS c WHERE " GC_FENCE_WHERE,
    /* The dashboard still counts them as received (migration 016). */
    "WITH d AS (DELETE FROM messages WHERE id IN (SELECT id FROM messages m "
    "WHERE id = ANY($1::text[]::bigint[]) AND NOT EXISTS "
    "(SELECT 1 FROM mailbox_entries e WHERE e.message_id = m.id) FOR UPDATE SKIP LOCKED) "
    "RETURNING created_at), "
    "s AS (INSERT INTO mail_hourly (hour, received) SELECT date_trunc('hour', created_at), "
    "count(*) FROM d WHERE created_at > now() - interval '2 days' GROUP BY 1 "
    "ON CONFLICT (hour) DO UPDATE SET received = mail_hourly.received + EXCLUDED.received) "
    "SELECT count(*) FROM d",
};

#define GC_BLOB_UNUSED                                                                             \
	"NOT EXISTS (SELECT 1 FROM messages m WHERE m.sha256 = b.sha256) AND NOT EXISTS "          \
	"(SELECT 1 FROM queue q WHERE q.sha256 = b.sha256)"
#define GC_BLOB_LISTED "sha256 IN (SELECT decode(h, 'hex') FROM unnest($1::text[]) AS h)"

static const struct gc_kind gc_blobs = {
    "gc_blobs",
    "SELECT encode(sha256, 'hex') FROM blobs b WHERE " GC_BLOB_UNUSED " LIMIT $1::integer",
    "SELECT encode(c.sha256, 'hex') FROM (SELECT sha256 FROM blobs WHERE " GC_BLOB_LISTED
    " OFFSET 0) AS c WHERE " GC_FENCE_WHERE,
    "WITH d AS (DELETE FROM blobs WHERE sha256 IN (SELECT sha256 FROM blobs b WHERE " GC_BLOB_LISTED
    " AND " GC_BLOB_UNUSED " FOR UPDATE SKIP LOCKED) RETURNING 1) "
    "SELECT count(*) FROM d",
};

/* rows[from, to) of r's first column as an array literal in out. */
static void gc_list(const PGresult *r, int from, int to, struct buf *out)
{
	buf_reset(out);
	buf_append_char(out, '{');
	for (int i = from; i < to; i++)
		buf_printf(out, "%s%s", i > from ? "," : "", PQgetvalue(r, i, 0));
	buf_append_char(out, '}');
}

/* Deletes what list names that is still unreferenced and not being
 * delivered, in one transaction. Rows deleted, or -1. */
static int64_t gc_batch(PGconn *conn, const struct gc_kind *k, const char *list)
{
	if (store_tx_begin(conn) != STORE_OK)
		return -1;
	struct store_params p;
	store_params_init(&p);
	store_param_text(&p, list);
	enum store_err err;
	PGresult *fenced = store_exec(conn, "gc_fence", k->fence, &p, &err);
	PGresult *r = NULL;
	if (fenced != NULL && PQntuples(fenced) > 0) {
		struct buf ids;
		buf_init(&ids, BUF_NO_LIMIT);
		gc_list(fenced, 0, PQntuples(fenced), &ids);
		store_params_init(&p);
		store_param_text(&p, buf_cstr(&ids));
		r = store_exec(conn, k->what, k->delete, &p, &err);
		buf_free(&ids);
	}
	int64_t n = r != NULL && PQntuples(r) == 1 ? store_res_i64(r, 0, 0) : 0;
	PQclear(r);
	PQclear(fenced);
	if (err == STORE_OK)
		err = store_tx_commit(conn);
	else
		store_tx_rollback(conn);
	return err == STORE_OK ? n : -1;
}

/* One kind's orphans: rows deleted, or -1. */
static int64_t gc_pass(PGconn *conn, const struct gc_kind *k, bool (*stop)(void *), void *arg)
{
	struct store_params p;
	store_params_init(&p);
	store_param_i64(&p, STORE_GC_SCAN);
	enum store_err err;
	PGresult *found = store_exec(conn, k->what, k->find, &p, &err);
	if (found == NULL)
		return -1;
	int rows = PQntuples(found);
	int64_t total = 0;
	struct buf list;
	buf_init(&list, BUF_NO_LIMIT);
	for (int i = 0; i < rows && total >= 0; i += STORE_GC_BATCH) {
		if (stop != NULL && stop(arg))
			break;
		gc_list(found, i, i + STORE_GC_BATCH < rows ? i + STORE_GC_BATCH : rows, &list);
		int64_t n = gc_batch(conn, k, buf_cstr(&list));
		total = n < 0 ? -1 : total + n;
	}
	buf_free(&list);
	PQclear(found);
	return total;
}

int64_t store_gc(PGconn *conn, bool (*stop)(void *arg), void *arg)
{
	if (store_exec_cmd(conn, "gc_hourly",
	                   "DELETE FROM mail_hourly WHERE hour < now() - interval '2 days'",
	                   NULL) != STORE_OK ||
	    gc_pass(conn, &gc_messages, stop, arg) < 0)
		return -1;
	if (stop != NULL && stop(arg))
		return 0;
	return gc_pass(conn, &gc_blobs, stop, arg);
}
