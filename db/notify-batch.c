/* notify-batch.c - one thread sending the deliveries' notifications
 * (notify-batch.h). */
#include "notify-batch.h"

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "prepared.h"
#include "store-private.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTIFY_BORROW_MS 5000

/* In its own transaction, which does not wait for the disk: it carries no
 * data, and after a crash there is no listener left to tell. Prepared
 * once per connection: planned afresh, it cost more than it ran. */
static const struct db_stmt notify_stmt = {
    "roost_notify_batch",
    "SELECT set_config('synchronous_commit', 'off', true), "
    "pg_notify('" STORE_NOTIFY_CHANNEL "', id::text) FROM unnest($1::bigint[]) AS id",
    1,
};

/* Under load a transaction goes out at most this often, carrying what
 * gathered meanwhile: at 16 delivering connections the sender otherwise
 * sent one for every two deliveries, and each costs the database a
 * transaction and every listener a wake-up. A notification that finds the
 * sender idle for this long goes out at once. */
#define NOTIFY_GATHER_MS 5

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC (notify_batch_start()) */
	pthread_t thread;
	struct db_pool *pool;
	bool running, stop;
	int64_t *ids; /* queued, NOTIFY_BATCH_MAX slots */
	size_t n;
} nb = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* ids sorted, each once, as an array literal. */
static void notify_literal(int64_t *ids, size_t n, struct buf *out)
{
	qsort(ids, n, sizeof(*ids), id_cmp);
	buf_append_char(out, '{');
	for (size_t i = 0; i < n; i++)
		if (i == 0 || ids[i] != ids[i - 1])
			buf_printf(out, "%s%lld", i > 0 ? "," : "", (long long)ids[i]);
	buf_append_char(out, '}');
}

void notify_now(PGconn *conn, int64_t *mailbox_ids, size_t n)
{
	struct buf lit;
	buf_init(&lit, BUF_NO_LIMIT);
	notify_literal(mailbox_ids, n, &lit);
	const char *params[1] = {buf_cstr(&lit)};
	PQclear(db_exec_prepared(conn, DB_PREPARED_NOTIFY, 0, &notify_stmt, params));
	buf_free(&lit);
}

static void notify_send(int64_t *ids, size_t n)
{
	PGconn *conn = db_pool_borrow(nb.pool, NOTIFY_BORROW_MS);
	if (conn == NULL) {
		log_warn("event=notify_lost mailboxes=%zu reason=\"no database connection\"", n);
		return;
	}
	notify_now(conn, ids, n);
	db_pool_return(nb.pool, &conn);
}

static void *notify_main(void *arg)
{
	(void)arg;
	log_set_session("notify");
	int64_t *batch = xcalloc(NOTIFY_BATCH_MAX, sizeof(*batch));
	uint64_t next = 0; /* clock_monotonic_ms() the next batch may go at */
	pthread_mutex_lock(&nb.lock);
	for (;;) {
		while (nb.n == 0 && !nb.stop)
			pthread_cond_wait(&nb.cond, &nb.lock);
		if (nb.n == 0)
			break; /* stopping, and everything is out */
		/* Gathers until the window since the last batch has passed (a
		 * queue half full or stopping sends at once). */
		uint64_t now = clock_monotonic_ms();
		struct timespec until = clock_monotonic_at(next);
		while (!nb.stop && nb.n < NOTIFY_BATCH_MAX / 2 && now < next) {
			pthread_cond_timedwait(&nb.cond, &nb.lock, &until);
			now = clock_monotonic_ms();
		}
		next = now + NOTIFY_GATHER_MS;
		size_t n = nb.n;
		memcpy(batch, nb.ids, n * sizeof(*batch));
		nb.n = 0;
		pthread_mutex_unlock(&nb.lock);
		notify_send(batch, n);
		pthread_mutex_lock(&nb.lock);
	}
	pthread_mutex_unlock(&nb.lock);
	free(batch);
	return NULL;
}

int notify_batch_start(struct db_pool *pool, char **error_r)
{
	pthread_mutex_lock(&nb.lock);
	if (nb.running) {
		pthread_mutex_unlock(&nb.lock);
		*error_r = xstrdup("the notification sender runs already");
		return -1;
	}
	/* The gathering wait must not stretch when the wall clock is set. */
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_destroy(&nb.cond);
	pthread_cond_init(&nb.cond, &attr);
	pthread_condattr_destroy(&attr);
	nb.pool = pool;
	nb.stop = false;
	nb.n = 0;
	nb.ids = xcalloc(NOTIFY_BATCH_MAX, sizeof(*nb.ids));
	int err = pthread_create(&nb.thread, NULL, notify_main, NULL);
	if (err != 0) {
		free(nb.ids);
		nb.ids = NULL;
		pthread_mutex_unlock(&nb.lock);
		char msg[128];
		snprintf(msg, sizeof(msg), "cannot start the notification sender: %s",
		         strerror(err));
		*error_r = xstrdup(msg);
		return -1;
	}
	nb.running = true;
	pthread_mutex_unlock(&nb.lock);
	return 0;
}

void notify_batch_stop(void)
{
	pthread_mutex_lock(&nb.lock);
	if (!nb.running) {
		pthread_mutex_unlock(&nb.lock);
		return;
	}
	nb.stop = true;
	nb.running = false; /* from now on deliveries notify by themselves */
	pthread_cond_signal(&nb.cond);
	pthread_mutex_unlock(&nb.lock);
	pthread_join(nb.thread, NULL);
	pthread_mutex_lock(&nb.lock);
	free(nb.ids);
	nb.ids = NULL;
	nb.pool = NULL;
	pthread_mutex_unlock(&nb.lock);
}

bool notify_batch_add(const int64_t *mailbox_ids, size_t n)
{
	pthread_mutex_lock(&nb.lock);
	bool ok = nb.running && NOTIFY_BATCH_MAX - nb.n >= n;
	if (ok) {
		/* The sender waits for the first, or gathers until half full. */
		if (nb.n == 0 || nb.n + n >= NOTIFY_BATCH_MAX / 2)
			pthread_cond_signal(&nb.cond);
		memcpy(nb.ids + nb.n, mailbox_ids, n * sizeof(*mailbox_ids));
		nb.n += n;
	}
	pthread_mutex_unlock(&nb.lock);
	return ok;
}

bool notify_batch_running(void)
{
	pthread_mutex_lock(&nb.lock);
	bool r = nb.running;
	pthread_mutex_unlock(&nb.lock);
	return r;
}
