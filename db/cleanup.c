/* cleanup.c - store_gc() on a schedule (cleanup.h). */
#include "cleanup.h"

#include "clock.h"
#include "log.h"
#include "store.h"
#include "worker.h"
#include "xalloc.h"

#include <stdint.h>
#include <stdlib.h>

#define CLEANUP_BORROW_MS 5000

struct store_cleanup {
	struct db_pool *pool;
	unsigned interval_ms;
	struct worker *w;
};

static bool cleanup_stopping(void *w)
{
	return worker_stopping(w);
}

static unsigned cleanup_round(struct worker *w, void *arg)
{
	struct store_cleanup *c = arg;
	uint64_t start = clock_monotonic_ms();
	PGconn *conn = db_pool_borrow(c->pool, CLEANUP_BORROW_MS);
	if (conn == NULL)
		return c->interval_ms;
	int64_t blobs = store_gc(conn, cleanup_stopping, w);
	db_pool_return(c->pool, &conn);
	if (blobs > 0)
		log_info("event=store_cleanup blobs_deleted=%lld ms=%llu", (long long)blobs,
		         (unsigned long long)(clock_monotonic_ms() - start));
	else if (blobs < 0)
		log_warn("event=store_cleanup_failed");
	return c->interval_ms;
}

struct store_cleanup *store_cleanup_start(struct db_pool *pool, unsigned interval_s, char **error_r)
{
	struct store_cleanup *c = xcalloc(1, sizeof(*c));
	c->pool = pool;
	c->interval_ms = interval_s * 1000;
	c->w = worker_start("cleanup", c->interval_ms, cleanup_round, c, error_r);
	if (c->w == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void store_cleanup_stop(struct store_cleanup **cp)
{
	struct store_cleanup *c = *cp;
	if (c == NULL)
		return;
	worker_stop(&c->w);
	free(c);
	*cp = NULL;
}
