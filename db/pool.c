/* pool.c - the PostgreSQL connection pool and the unit-of-work helpers. */
#include "pool.h"

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "xalloc.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* SQLSTATE reported when there is no server answer at all. */
#define DB_SQLSTATE_CONNECTION_FAILURE "08006"

/* A borrower waiting for a connection. Connections that come back, and
 * slots that free up, go to the waiters in arrival order, handed over
 * under the mutex: a borrower arriving later cannot take them first, so
 * under overload every borrower waits its turn instead of some waiting
 * past their timeout while others are served again and again. */
struct db_pool_waiter {
	pthread_cond_t cond;
	PGconn *conn;  /* handed over */
	bool open_new; /* handed a slot: open a connection in it */
	struct db_pool_waiter *next;
};

struct db_pool {
	char *conninfo;
	unsigned size; /* most connections open at once */
	unsigned open; /* open now (idle + borrowed + being opened) */
	unsigned nidle;
	PGconn **idle; /* size slots, nidle used (a stack: warm ones first) */
	pthread_mutex_t mutex;
	pthread_condattr_t cond_attr;                  /* CLOCK_MONOTONIC, for the waiters */
	struct db_pool_waiter *waiters, *waiters_tail; /* oldest first */
};

static _Thread_local char db_sqlstate[6];

static char *db_error_dup(const char *prefix, const PGconn *conn)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_printf(&b, "%s: %s", prefix, conn != NULL ? PQerrorMessage(conn) : "out of memory");
	/* libpq messages end with a newline; an error string should not. */
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		buf_truncate(&b, b.len - 1);
	return buf_steal(&b, NULL);
}

/* Notices (and the FATAL a terminated backend sends) go to our log, not
 * straight to stderr as libpq would do. */
static void db_notice(void *arg, const char *message)
{
	char q[LOG_QUOTE_MAX];
	log_info("event=db_notice notice=%s", log_quote(q, sizeof(q), message));
}

/* Every pool connection says who it is, so that pg_stat_activity shows
 * roost's sessions, and turns JIT compilation off: our queries are short,
 * and a large cost estimate (a SEARCH over 100,000 messages) would have
 * PostgreSQL spend longer compiling than running them (400 ms against 120
 * measured). A conninfo that sets application_name or options itself wins:
 * later entries override earlier ones when libpq expands dbname. */
static PGconn *db_connect(const char *conninfo)
{
	const char *const keys[] = {"application_name", "options", "dbname", NULL};
	const char *const values[] = {"roost", "-c jit=off", conninfo, NULL};
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	if (conn != NULL)
		PQsetNoticeProcessor(conn, db_notice, NULL);
	return conn;
}

int db_pool_create(const char *conninfo, unsigned size, struct db_pool **pool_r, char **error_r)
{
	PGconn *conn = db_connect(conninfo);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		*error_r = db_error_dup("cannot connect to PostgreSQL", conn);
		PQfinish(conn);
		return -1;
	}
	struct db_pool *pool = xcalloc(1, sizeof(*pool));
	pool->conninfo = xstrdup(conninfo);
	pool->size = size > 0 ? size : 1;
	pool->idle = xcalloc(pool->size, sizeof(PGconn *));
	pool->idle[pool->nidle++] = conn;
	pool->open = 1;
	pthread_mutex_init(&pool->mutex, NULL);
	pthread_condattr_init(&pool->cond_attr);
	pthread_condattr_setclock(&pool->cond_attr, CLOCK_MONOTONIC);
	*pool_r = pool;
	return 0;
}

void db_pool_destroy(struct db_pool **poolp)
{
	struct db_pool *pool = *poolp;
	if (pool == NULL)
		return;
	if (pool->open != pool->nidle)
		log_warn("event=db_pool_destroy borrowed=%u msg=\"connections still borrowed are "
		         "left open\"",
		         pool->open - pool->nidle);
	for (unsigned i = 0; i < pool->nidle; i++)
		PQfinish(pool->idle[i]);
	pthread_condattr_destroy(&pool->cond_attr);
	pthread_mutex_destroy(&pool->mutex);
	free(pool->idle);
	free(pool->conninfo);
	free(pool);
	*poolp = NULL;
}

const char *db_pool_conninfo(const struct db_pool *pool)
{
	return pool->conninfo;
}

/* Under the mutex: the oldest waiter, taken off the queue, or NULL. */
static struct db_pool_waiter *db_pool_next_waiter(struct db_pool *pool)
{
	struct db_pool_waiter *w = pool->waiters;
	if (w != NULL) {
		pool->waiters = w->next;
		if (pool->waiters == NULL)
			pool->waiters_tail = NULL;
	}
	return w;
}

/* Gives up a slot whose connection was closed or never opened: to the
 * oldest waiter, who opens a connection in it, if anyone waits. */
static void db_pool_release_slot(struct db_pool *pool)
{
	pthread_mutex_lock(&pool->mutex);
	assert(pool->open > 0);
	struct db_pool_waiter *w = db_pool_next_waiter(pool);
	if (w != NULL) {
		w->open_new = true;
		pthread_cond_signal(&w->cond);
	} else {
		pool->open--;
	}
	pthread_mutex_unlock(&pool->mutex);
}

static void db_log_conn_failure(const char *event, const PGconn *conn)
{
	char q[LOG_QUOTE_MAX];
	log_error("event=%s error=%s", event,
	          log_quote(q, sizeof(q), conn != NULL ? PQerrorMessage(conn) : "out of memory"));
}

/* An idle connection may have lost its server while it sat in the pool
 * (restart, pg_terminate_backend). A closed socket shows as hang-up without
 * a round trip; anything pending (a notice, a notification) is consumed. */
static bool db_conn_alive(PGconn *conn)
{
	if (PQstatus(conn) != CONNECTION_OK)
		return false;
	struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN | POLLRDHUP};
	if (poll(&p, 1, 0) < 0)
		return false;
	if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0)
		return false;
	if ((p.revents & POLLIN) != 0 && PQconsumeInput(conn) == 0)
		return false;
	PGnotify *n;
	while ((n = PQnotifies(conn)) != NULL)
		PQfreemem(n);
	return PQstatus(conn) == CONNECTION_OK;
}

/* Makes conn usable again, or closes it and gives up its slot. */
static PGconn *db_pool_revive(struct db_pool *pool, PGconn *conn)
{
	if (db_conn_alive(conn))
		return conn;
	PQreset(conn);
	if (PQstatus(conn) == CONNECTION_OK)
		return conn;
	db_log_conn_failure("db_reconnect_failed", conn);
	PQfinish(conn);
	db_pool_release_slot(pool);
	return NULL;
}

static void db_deadline(struct timespec *ts, unsigned timeout_ms)
{
	*ts = clock_monotonic_at(clock_monotonic_ms() + timeout_ms);
}

/* Under the mutex: takes w off the queue wherever it is (a timeout). */
static void db_pool_unqueue(struct db_pool *pool, struct db_pool_waiter *w)
{
	struct db_pool_waiter **p = &pool->waiters, *prev = NULL;
	while (*p != NULL && *p != w) {
		prev = *p;
		p = &(*p)->next;
	}
	if (*p == NULL)
		return;
	*p = w->next;
	if (pool->waiters_tail == w)
		pool->waiters_tail = prev;
}

/* Under the mutex: an idle connection, or NULL with *open_new_r set when
 * the caller may open a new one, or NULL on timeout. Nobody passes the
 * borrowers already waiting. */
static PGconn *db_pool_wait(struct db_pool *pool, unsigned timeout_ms, bool *open_new_r)
{
	*open_new_r = false;
	if (pool->waiters == NULL) {
		if (pool->nidle > 0)
			return pool->idle[--pool->nidle];
		if (pool->open < pool->size) {
			pool->open++;
			*open_new_r = true;
			return NULL;
		}
	}
	struct db_pool_waiter w = {0};
	pthread_cond_init(&w.cond, &pool->cond_attr);
	if (pool->waiters_tail != NULL)
		pool->waiters_tail->next = &w;
	else
		pool->waiters = &w;
	pool->waiters_tail = &w;
	struct timespec deadline;
	db_deadline(&deadline, timeout_ms);
	int ret = 0;
	while (w.conn == NULL && !w.open_new && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&w.cond, &pool->mutex, &deadline);
	if (w.conn == NULL && !w.open_new)
		db_pool_unqueue(pool, &w);
	pthread_cond_destroy(&w.cond);
	*open_new_r = w.open_new;
	return w.conn;
}

PGconn *db_pool_borrow(struct db_pool *pool, unsigned timeout_ms)
{
	bool open_new;
	pthread_mutex_lock(&pool->mutex);
	PGconn *conn = db_pool_wait(pool, timeout_ms, &open_new);
	pthread_mutex_unlock(&pool->mutex);

	if (conn != NULL)
		return db_pool_revive(pool, conn);
	if (!open_new) {
		log_warn("event=db_pool_timeout timeout_ms=%u size=%u", timeout_ms, pool->size);
		return NULL;
	}
	conn = db_connect(pool->conninfo);
	if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
		return conn;
	db_log_conn_failure("db_connect_failed", conn);
	PQfinish(conn);
	db_pool_release_slot(pool);
	return NULL;
}

/* A returned connection must be idle: roll back what the borrower left
 * open; a connection still busy with a query or broken is not worth saving. */
static bool db_conn_clean(PGconn *conn)
{
	if (PQstatus(conn) != CONNECTION_OK)
		return false;
	switch (PQtransactionStatus(conn)) {
	case PQTRANS_IDLE:
		return true;
	case PQTRANS_INTRANS:
	case PQTRANS_INERROR: {
		log_warn("event=db_pool_return msg=\"connection returned inside a transaction; "
		         "rolled back\"");
		PGresult *res = PQexec(conn, "ROLLBACK");
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
		return ok && PQtransactionStatus(conn) == PQTRANS_IDLE;
	}
	default:
		return false;
	}
}

void db_pool_return(struct db_pool *pool, PGconn **connp)
{
	PGconn *conn = *connp;
	*connp = NULL;
	if (conn == NULL)
		return;
	if (!db_conn_clean(conn)) {
		/* A fresh connection is opened lazily by the next borrower. */
		PQfinish(conn);
		db_pool_release_slot(pool);
		return;
	}
	pthread_mutex_lock(&pool->mutex);
	struct db_pool_waiter *w = db_pool_next_waiter(pool);
	if (w != NULL) {
		w->conn = conn;
		pthread_cond_signal(&w->cond);
	} else {
		assert(pool->nidle < pool->size);
		pool->idle[pool->nidle++] = conn;
	}
	pthread_mutex_unlock(&pool->mutex);
}

const char *db_last_sqlstate(void)
{
	return db_sqlstate;
}

/* The statement as one short line for the log: whitespace runs become one
 * space and a long statement ends in "...". */
static void db_shorten(const char *sql, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; sql[i] != '\0'; i++) {
		char c = sql[i];
		bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
		if (ws && (o == 0 || out[o - 1] == ' '))
			continue;
		if (o + 4 >= outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = ws ? ' ' : c;
	}
	out[o] = '\0';
}

/* Records the failure of res (which may be NULL) in db_sqlstate and the log. */
static void db_note_failure(PGconn *conn, const PGresult *res, const char *sql)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state == NULL || strlen(state) != 5)
		state = DB_SQLSTATE_CONNECTION_FAILURE;
	memcpy(db_sqlstate, state, 6);

	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
	if (msg[0] == '\0')
		msg = PQerrorMessage(conn);
	char stmt[96], q1[LOG_QUOTE_MAX], q2[LOG_QUOTE_MAX];
	db_shorten(sql, stmt, sizeof(stmt));
	/* Constraint violations and serialization failures are expected
	 * outcomes the caller handles; anything else is a real fault. */
	bool expected = state[0] == '2' && state[1] == '3';
	expected = expected || (state[0] == '4' && state[1] == '0');
	log_write(expected ? LOG_INFO : LOG_ERROR, "event=db_error sqlstate=%s stmt=%s error=%s",
	          state, log_quote(q1, sizeof(q1), stmt), log_quote(q2, sizeof(q2), msg));
}

PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	assert(conn != NULL);
	db_sqlstate[0] = '\0';
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (res != NULL && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK))
		return res;
	db_note_failure(conn, res, sql);
	PQclear(res);
	return NULL;
}

int db_pipeline_finish(PGconn *conn, const char *what)
{
	db_sqlstate[0] = '\0';
	int ret = -1, nulls = 0; /* two NULLs in a row: nothing left queued */
	bool failed = false;
	while (PQstatus(conn) == CONNECTION_OK && nulls < 2) {
		PGresult *r = PQgetResult(conn);
		ExecStatusType st = PQresultStatus(r);
		nulls = r == NULL ? nulls + 1 : 0;
		if (r != NULL && st == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			ret = failed ? -1 : 0;
			break;
		}
		if (r != NULL && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			if (!failed && st != PGRES_PIPELINE_ABORTED)
				db_note_failure(conn, r, what);
			failed = true;
		}
		PQclear(r);
	}
	PQexitPipelineMode(conn);
	return ret;
}

static int db_simple(PGconn *conn, const char *sql)
{
	PGresult *res = db_exec(conn, sql, 0, NULL);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int db_begin(PGconn *conn)
{
	return db_simple(conn, "BEGIN");
}

int db_commit(PGconn *conn)
{
	/* COMMIT of a failed transaction "succeeds" as a ROLLBACK; that must
	 * not look like a commit to the caller. */
	bool failed = PQtransactionStatus(conn) == PQTRANS_INERROR;
	if (db_simple(conn, "COMMIT") < 0)
		return -1;
	if (failed) {
		memcpy(db_sqlstate, "25P02", 6);
		log_error("event=db_error sqlstate=25P02 stmt=\"COMMIT\" error=\"commit of a "
		          "failed transaction was rolled back\"");
		return -1;
	}
	return 0;
}

/* Keeps db_sqlstate: callers roll back after a failure and then look at it. */
void db_rollback(PGconn *conn)
{
	if (PQtransactionStatus(conn) == PQTRANS_IDLE)
		return;
	char saved[6];
	memcpy(saved, db_sqlstate, sizeof(saved));
	PGresult *res = PQexec(conn, "ROLLBACK");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		db_note_failure(conn, res, "ROLLBACK");
	PQclear(res);
	memcpy(db_sqlstate, saved, sizeof(saved));
}
