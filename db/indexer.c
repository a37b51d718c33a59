#include "indexer.h"

#include "clock.h"
#include "log.h"
#include "mime.h"
#include "prepared.h"
#include "search-words.h"
#include "store-private.h"
#include "utf8.h"
#include "worker.h"
#include "xalloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Messages per batch, and bytes of filed text held before they are sent
 * (each text is 256 KB at most, plus its words). */
#define INDEXER_BATCH      64
#define INDEXER_BORROW_MS  5000
#define INDEXER_SEND_BYTES (4u * 1024 * 1024)

/* SEARCH BODY/TEXT looks at the first 256 KB of a message's decoded text:
 * every byte more costs trigrams in the index and time in each recheck,
 * and what people search for is near the top. */
#define INDEXER_TEXT_MAX (256 * 1024)

/* A batch leaves search_pending, claimed with SKIP LOCKED (several nodes
 * may index). Delivery writes only the message's id there: the text is
 * taken again from the stored blob by the MIME parser, so the delivery
 * transaction carries no second copy of the message, and the text is
 * written once, here. */
static const char sql_claim[] =
    "DELETE FROM search_pending WHERE message_id IN (SELECT message_id FROM search_pending "
    "ORDER BY message_id LIMIT $1::integer FOR UPDATE SKIP LOCKED) RETURNING message_id";

/* SEARCH's claim: every pending message of one mailbox, waiting for those
 * a batch in flight holds (it has filed them when it lets go, and the
 * DELETE then finds them gone). Locked in id order, so two of these never
 * wait on each other in a circle. */
static const char sql_claim_mailbox[] =
    "DELETE FROM search_pending WHERE message_id IN (SELECT p.message_id FROM search_pending p "
    "WHERE p.message_id IN (SELECT e.message_id FROM mailbox_entries e "
    "WHERE e.mailbox_id = $1::bigint) ORDER BY p.message_id FOR UPDATE) RETURNING message_id";

static const char sql_fetch[] =
    "SELECT b.data, m.headers FROM messages m JOIN blobs b ON b.sha256 = m.sha256 "
    "WHERE m.id = $1::bigint";

/* A message deleted meanwhile is skipped. */
static const char sql_file[] =
    "INSERT INTO message_search (message_id, headers, body, words) "
    "SELECT m.id, $2::text, $3::text, $4::text FROM messages m WHERE m.id = $1::bigint "
    "ON CONFLICT (message_id) DO NOTHING";

/* Statements run once per message, prepared once per connection. */
enum { IX_FETCH, IX_FILE, IX_COUNT };

static const struct {
	const char *name, *sql;
} ix_stmts[IX_COUNT] = {
    [IX_FETCH] = {"roost_index_fetch", sql_fetch},
    [IX_FILE] = {"roost_index_file", sql_file},
};

/* The statement's name once it is prepared on conn; NULL if it cannot be
 * (then its text is sent). Outside pipeline mode. */
static const char *ix_prepared(PGconn *conn, int i)
{
	unsigned *bits = db_prepared_bits(conn, DB_PREPARED_INDEXER);
	if (bits == NULL ||
	    !db_prepare_once(conn, bits, (unsigned)i, ix_stmts[i].name, ix_stmts[i].sql, 0))
		return NULL;
	return ix_stmts[i].name;
}

/* Runs statement i with text parameters; results in format fmt. */
static PGresult *ix_exec(PGconn *conn, int i, int n, const char *const *params, int fmt)
{
	const char *name = ix_prepared(conn, i);
	if (name != NULL)
		return PQexecPrepared(conn, name, n, params, NULL, NULL, fmt);
	return PQexecParams(conn, ix_stmts[i].sql, n, NULL, params, NULL, NULL, fmt);
}

/* Texts ready to be filed, sent together in one pipeline. */
struct index_rows {
	size_t n, cap, bytes;
	struct index_row {
		char id[24];
		struct buf headers, body, words;
	} * row;
};

static void index_rows_clear(struct index_rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		buf_free(&r->row[i].headers);
		buf_free(&r->row[i].body);
		buf_free(&r->row[i].words);
	}
	r->n = 0;
	r->bytes = 0;
}

/* The decoded text, valid UTF-8, cut at INDEXER_TEXT_MAX (at a character
 * boundary), lower-cased into row->body; its words; the header fields
 * lower-cased. */
static void index_row_fill(struct index_row *row, const struct mime_message *m, const char *headers)
{
	struct buf tmp;
	buf_init(&tmp, BUF_NO_LIMIT);
	const char *text = store_utf8_clean(m->search_text, &tmp);
	size_t len = utf8_cut(text, strlen(text), INDEXER_TEXT_MAX);
	(void)search_lower(text, len, &row->body);
	(void)search_words(buf_cstr(&row->body), row->body.len, &row->words);
	(void)search_lower(headers, strlen(headers), &row->headers);
	buf_free(&tmp);
}

/* Parses message id's blob into a new row of r (none if the message is
 * gone meanwhile); -1 if the database failed. */
static int index_prepare(PGconn *conn, const char *id, const struct mime_limits *limits,
                         struct index_rows *r)
{
	const char *params[1] = {id};
	PGresult *res = ix_exec(conn, IX_FETCH, 1, params, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		store_log_failure(conn, res, "index_fetch");
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) == 1) {
		struct mime_limits lim;
		if (limits != NULL)
			lim = *limits;
		else
			mime_limits_default(&lim);
		lim.max_search_text = INDEXER_TEXT_MAX;
		struct mime_message *m =
		    mime_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), &lim);
		if (r->n == r->cap) {
			r->cap = r->cap == 0 ? 16 : r->cap * 2;
			r->row = xrealloc(r->row, r->cap * sizeof(*r->row));
		}
		struct index_row *row = &r->row[r->n++];
		snprintf(row->id, sizeof(row->id), "%s", id);
		buf_init(&row->headers, BUF_NO_LIMIT);
		buf_init(&row->body, BUF_NO_LIMIT);
		buf_init(&row->words, BUF_NO_LIMIT);
		index_row_fill(row, m, PQgetvalue(res, 0, 1));
		r->bytes += row->headers.len + row->body.len + row->words.len;
		mime_message_free(&m);
	}
	PQclear(res);
	return 0;
}

/* One INSERT per text, all sent in one pipeline: one round trip. */
static int index_send(PGconn *conn, struct index_rows *r)
{
	if (r->n == 0)
		return 0;
	const char *name = ix_prepared(conn, IX_FILE);
	if (PQenterPipelineMode(conn) != 1) {
		index_rows_clear(r);
		return -1;
	}
	size_t sent = 0;
	for (; sent < r->n; sent++) {
		const struct index_row *row = &r->row[sent];
		const char *params[4] = {row->id, buf_cstr(&row->headers), buf_cstr(&row->body),
		                         buf_cstr(&row->words)};
		int ok = name != NULL
		             ? PQsendQueryPrepared(conn, name, 4, params, NULL, NULL, 0)
		             : PQsendQueryParams(conn, sql_file, 4, NULL, params, NULL, NULL, 0);
		if (ok != 1)
			break;
	}
	bool synced = PQpipelineSync(conn) == 1;
	int ret = db_pipeline_finish(conn, "index_file");
	bool all = sent == r->n;
	index_rows_clear(r);
	return all && synced ? ret : -1;
}

/* Files the texts of the messages claimed (column 0 of claimed). */
static int index_claimed(PGconn *conn, const PGresult *claimed, const struct mime_limits *limits)
{
	struct index_rows r = {0};
	int ret = 0;
	for (int i = 0; i < PQntuples(claimed) && ret == 0; i++) {
		ret = index_prepare(conn, PQgetvalue(claimed, i, 0), limits, &r);
		if (ret == 0 && r.bytes >= INDEXER_SEND_BYTES)
			ret = index_send(conn, &r);
	}
	if (ret == 0)
		ret = index_send(conn, &r);
	index_rows_clear(&r);
	free(r.row);
	return ret;
}

int store_index_pending(PGconn *conn, unsigned batch, const struct mime_limits *limits)
{
	char n[16];
	snprintf(n, sizeof(n), "%u", batch);
	const char *params[1] = {n};
	if (db_begin(conn) < 0)
		return -1;
	PGresult *rows = db_exec(conn, sql_claim, 1, params);
	int done = rows != NULL ? PQntuples(rows) : -1;
	if (done > 0 && index_claimed(conn, rows, limits) < 0)
		done = -1;
	PQclear(rows);
	if (done < 0) {
		db_rollback(conn);
		return -1;
	}
	return db_commit(conn) < 0 ? -1 : done;
}

int store_index_mailbox(PGconn *conn, int64_t mailbox_id, const struct mime_limits *limits)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)mailbox_id);
	const char *params[1] = {id};
	PGresult *rows = db_exec(conn, sql_claim_mailbox, 1, params);
	int done = rows != NULL ? PQntuples(rows) : -1;
	if (done > 0 && index_claimed(conn, rows, limits) < 0)
		done = -1;
	PQclear(rows);
	return done;
}

static _Atomic uint64_t indexer_last_delivery_ms;

void indexer_note_delivery(void)
{
	atomic_store(&indexer_last_delivery_ms, clock_monotonic_ms());
}

struct indexer {
	struct db_pool *pool;
	struct mime_limits limits;
	unsigned interval_ms;
	uint64_t deferring_since;
	bool catching_up;
	struct worker *w;
};

/* True while deliveries are running and indexing may wait a little: at most
 * INDEXER_MAX_DEFER_MS, after which it catches up on the whole backlog
 * before it defers again. */
static bool indexer_defer(uint64_t *deferring_since, bool catching_up)
{
	uint64_t now = clock_monotonic_ms();
	if (catching_up || now - atomic_load(&indexer_last_delivery_ms) >= INDEXER_QUIET_MS) {
		*deferring_since = 0;
		return false;
	}
	if (*deferring_since == 0)
		*deferring_since = now;
	return now - *deferring_since < INDEXER_MAX_DEFER_MS;
}

static unsigned indexer_round(struct worker *w, void *arg)
{
	struct indexer *ix = arg;
	(void)w;
	if (indexer_defer(&ix->deferring_since, ix->catching_up))
		return INDEXER_QUIET_MS;
	int done = -1;
	PGconn *conn = db_pool_borrow(ix->pool, INDEXER_BORROW_MS);
	if (conn != NULL) {
		done = store_index_pending(conn, INDEXER_BATCH, &ix->limits);
		db_pool_return(ix->pool, &conn);
	}
	if (done > 0)
		log_debug("event=indexed messages=%d", done);
	/* A deferral that ran out: index everything before deferring again. */
	ix->catching_up = done == INDEXER_BATCH || (ix->deferring_since != 0 && done > 0);
	if (done < 0)
		return ix->interval_ms * 10; /* database trouble: back off */
	return done == INDEXER_BATCH ? 0 : ix->interval_ms;
}

struct indexer *indexer_start(struct db_pool *pool, unsigned interval_ms,
                              const struct mime_limits *limits, char **error_r)
{
	struct indexer *ix = xcalloc(1, sizeof(*ix));
	ix->pool = pool;
	if (limits != NULL)
		ix->limits = *limits;
	else
		mime_limits_default(&ix->limits);
	ix->interval_ms = interval_ms == 0 ? 200 : interval_ms;
	ix->w = worker_start("indexer", 0, indexer_round, ix, error_r);
	if (ix->w == NULL) {
		free(ix);
		return NULL;
	}
	return ix;
}

void indexer_stop(struct indexer **ixp)
{
	struct indexer *ix = *ixp;
	if (ix == NULL)
		return;
	worker_stop(&ix->w);
	free(ix);
	*ixp = NULL;
}
