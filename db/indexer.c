#include "indexer.h"

#include "clock.h"
#include "log.h"
#include "search-words.h"
#include "xalloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Messages per batch: their texts (256 KB at most each) pass through
 * this process together. */
#define INDEXER_BATCH     64
#define INDEXER_BORROW_MS 5000

/* A batch of pending texts leaves search_pending (claimed with SKIP
 * LOCKED: several nodes may index), lower-cased: SEARCH is
 * case-insensitive, and a LIKE of a lower-case string is its cheapest
 * exact test (imap/search-sql.c). Each is then filed in message_search
 * with its distinct words, listed here (core/search-words.h: the same
 * split in SQL took milliseconds per message), and a lower-cased copy of
 * its message's header fields, all in the same transaction. The words are
 * taken from the lower-cased text, so they are pieces of exactly the text
 * SEARCH matches. A message deleted meanwhile is skipped. */
static const char sql_claim[] =
    "DELETE FROM search_pending WHERE message_id IN (SELECT message_id FROM search_pending "
    "ORDER BY message_id LIMIT $1::integer FOR UPDATE SKIP LOCKED) "
    "RETURNING message_id, lower(body)";

static const char sql_file[] =
    "INSERT INTO message_search (message_id, headers, body, words) "
    "SELECT m.id, lower(m.headers), $2::text, $3::text FROM messages m WHERE m.id = $1::bigint "
    "ON CONFLICT (message_id) DO NOTHING";

/* One INSERT per text, all sent in one pipeline: one round trip. */
static int index_file(PGconn *conn, const PGresult *rows)
{
	if (PQenterPipelineMode(conn) != 1)
		return -1;
	struct buf words;
	buf_init(&words, BUF_NO_LIMIT);
	int sent = 0, n = PQntuples(rows);
	for (; sent < n; sent++) {
		buf_reset(&words);
		search_words(PQgetvalue(rows, sent, 1), (size_t)PQgetlength(rows, sent, 1), &words);
		const char *params[3] = {PQgetvalue(rows, sent, 0), PQgetvalue(rows, sent, 1),
		                         buf_cstr(&words)};
		if (PQsendQueryParams(conn, sql_file, 3, NULL, params, NULL, NULL, 0) != 1)
			break;
	}
	buf_free(&words);
	bool synced = PQpipelineSync(conn) == 1;
	int ret = db_pipeline_finish(conn, "index_file");
	return sent == n && synced ? ret : -1;
}

int store_index_pending(PGconn *conn, unsigned batch)
{
	char n[16];
	snprintf(n, sizeof(n), "%u", batch);
	const char *params[1] = {n};
	if (db_begin(conn) < 0)
		return -1;
	PGresult *rows = db_exec(conn, sql_claim, 1, params);
	int done = rows != NULL ? PQntuples(rows) : -1;
	if (done > 0 && index_file(conn, rows) < 0)
		done = -1;
	PQclear(rows);
	if (done < 0) {
		db_rollback(conn);
		return -1;
	}
	return db_commit(conn) < 0 ? -1 : done;
}

static _Atomic uint64_t indexer_last_delivery_ms;

void indexer_note_delivery(void)
{
	atomic_store(&indexer_last_delivery_ms, clock_monotonic_ms());
}

struct indexer {
	struct db_pool *pool;
	unsigned interval_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

/* Sleeps up to ms unless asked to stop; true when stopping. */
static bool indexer_sleep(struct indexer *ix, unsigned ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ix->lock);
	while (!ix->stop && pthread_cond_timedwait(&ix->cond, &ix->lock, &until) != ETIMEDOUT)
		;
	bool stop = ix->stop;
	pthread_mutex_unlock(&ix->lock);
	return stop;
}

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

static void *indexer_main(void *arg)
{
	struct indexer *ix = arg;
	log_set_session("indexer");
	uint64_t deferring_since = 0;
	bool catching_up = false;
	for (;;) {
		if (indexer_defer(&deferring_since, catching_up)) {
			if (indexer_sleep(ix, INDEXER_QUIET_MS))
				break;
			continue;
		}
		int done = -1;
		PGconn *conn = db_pool_borrow(ix->pool, INDEXER_BORROW_MS);
		if (conn != NULL) {
			done = store_index_pending(conn, INDEXER_BATCH);
			db_pool_return(ix->pool, &conn);
		}
		if (done > 0)
			log_debug("event=indexed messages=%d", done);
		/* A deferral that ran out: index everything before deferring again. */
		catching_up = done == INDEXER_BATCH || (deferring_since != 0 && done > 0);
		unsigned wait = done == INDEXER_BATCH ? 0 : ix->interval_ms;
		if (done < 0)
			wait = ix->interval_ms * 10; /* database trouble: back off */
		if (indexer_sleep(ix, wait))
			break;
	}
	return NULL;
}

struct indexer *indexer_start(struct db_pool *pool, unsigned interval_ms, char **error_r)
{
	struct indexer *ix = xcalloc(1, sizeof(*ix));
	ix->pool = pool;
	ix->interval_ms = interval_ms == 0 ? 200 : interval_ms;
	pthread_mutex_init(&ix->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ix->cond, &attr);
	pthread_condattr_destroy(&attr);
	int err = pthread_create(&ix->thread, NULL, indexer_main, ix);
	if (err != 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "cannot start the indexer thread: %s", strerror(err));
		*error_r = xstrdup(msg);
		pthread_cond_destroy(&ix->cond);
		pthread_mutex_destroy(&ix->lock);
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
	pthread_mutex_lock(&ix->lock);
	ix->stop = true;
	pthread_cond_signal(&ix->cond);
	pthread_mutex_unlock(&ix->lock);
	pthread_join(ix->thread, NULL);
	pthread_cond_destroy(&ix->cond);
	pthread_mutex_destroy(&ix->lock);
	free(ix);
	*ixp = NULL;
}
