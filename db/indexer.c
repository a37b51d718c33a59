#include "indexer.h"

#include "clock.h"
#include "log.h"
#include "strnum.h"
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

#define INDEXER_BATCH     200
#define INDEXER_BORROW_MS 5000

/* Claims a batch of pending texts (SKIP LOCKED: several nodes may index),
 * deletes them and files each with a copy of its message's header fields
 * under the trigram indexes, both in lower case: SEARCH is
 * case-insensitive, and a LIKE of a lower-case string is its cheapest
 * exact test (imap/search-sql.c). The database derives the text's
 * distinct words from it (a generated column, migration 012). A message
 * deleted meanwhile is skipped. */
static const char sql_index[] =
    "WITH batch AS (SELECT message_id FROM search_pending ORDER BY message_id "
    "  LIMIT $1::integer FOR UPDATE SKIP LOCKED), "
    "moved AS (DELETE FROM search_pending p USING batch WHERE p.message_id = batch.message_id "
    "  RETURNING p.message_id, p.body) "
    "INSERT INTO message_search (message_id, headers, body) "
    "SELECT m.id, lower(m.headers), lower(moved.body) FROM moved JOIN messages m ON m.id = "
    "moved.message_id "
    "ON CONFLICT (message_id) DO NOTHING";

int store_index_pending(PGconn *conn, unsigned batch)
{
	char n[16];
	snprintf(n, sizeof(n), "%u", batch);
	const char *params[1] = {n};
	PGresult *res = db_exec(conn, sql_index, 1, params);
	if (res == NULL)
		return -1;
	uint64_t done = 0;
	if (str_to_u64(PQcmdTuples(res), batch, &done) < 0)
		done = 0;
	PQclear(res);
	return (int)done;
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
