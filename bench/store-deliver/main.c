/* bench-store-deliver - how close store_deliver() comes to the raw rate of
 * committing the same bytes.
 *
 *   bench-store-deliver [messages-per-run]     (default 1500)
 *
 * Uses $ROOST_BENCH_DSN (a scratch database: the accounts, messages and
 * bench_raw rows stay there), or starts a managed cluster in a temporary
 * directory that is removed at the end. Creates 16 accounts, generates realistic messages (2 KB to
 * 200 KB: plain text, HTML alternatives, base64 attachments) and, at 1, 4
 * and 16 threads (each with its own connection), delivers them through
 * store_deliver() and, separately, commits each one as a single
 * INSERT INTO bench_raw(data) per transaction. Prints messages/s, MB/s and
 * p50/p99 latency of both and their ratio. Parsing (store_incoming_*)
 * happens before the clock starts: the figure is the database work.
 *
 * As in `roost serve`, the workers keep their connections for the whole
 * run, notifications go to the sender thread, and concurrent deliveries
 * share transactions ($ROOST_BENCH_LANES sets [database] delivery_lanes,
 * default 4; 0 stores each alone). Raw and store slices alternate, each
 * starting with the search indexer idle. With $ROOST_BENCH_CPUACCT
 * (../common/cpuacct.h) it also prints CPU time per message. It also says
 * how many deliveries shared a transaction, and with how many others. */
#include "../common/cpuacct.h"
#include "buf.h"
#include "log.h"
#include "migrate.h"
#include "pgmanaged.h"
#include "indexer.h"
#include "notify-batch.h"
#include "store.h"
#include "strnum.h"

#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_ACCOUNTS 16

static char bench_root[64];
static struct pgmanaged *bench_pg;
static const char *bench_conninfo;
static int64_t bench_accounts[BENCH_ACCOUNTS];

/* ---- message generation ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char *const words[] = {
    "meeting",  "report",  "quarterly", "budget",   "the",     "and",    "of",       "project",
    "customer", "invoice", "delivery",  "schedule", "please",  "review", "attached", "thanks",
    "regards",  "team",    "update",    "server",   "release", "Monday", "Friday",   "numbers",
    "forecast", "to",      "we",        "will",     "have",    "a",      "new",      "office",
    "in",       "Lyon",    "Zürich",    "Kraków",   "order",
};

static void gen_text(struct buf *b, size_t bytes)
{
	size_t start = b->len, line = 0;
	while (b->len - start < bytes) {
		const char *w = words[rng_next() % (sizeof(words) / sizeof(words[0]))];
		buf_printf(b, "%s%s", w, rng_next() % 11 == 0 ? ". " : " ");
		line += strlen(w) + 1;
		if (line > 70) {
			buf_append_str(b, "\r\n");
			line = 0;
		}
	}
	buf_append_str(b, "\r\n");
}

static void gen_base64(struct buf *b, size_t bytes)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < bytes; i += 76) {
		char line[78];
		for (int k = 0; k < 76; k++)
			line[k] = b64[rng_next() & 63];
		line[76] = '\r';
		line[77] = '\n';
		buf_append(b, line, sizeof(line));
	}
}

static void gen_headers(struct buf *b, unsigned run, unsigned n)
{
	buf_printf(b,
	           "Return-Path: <sender%u@example.net>\r\n"
	           "Received: from mx.example.net (mx.example.net [192.0.2.7])\r\n"
	           "\tby mail.example.org with ESMTPS; Tue, 24 Nov 2026 13:00:%02u +0000\r\n"
	           "From: Sender %u <sender%u@example.net>\r\n"
	           "To: Colleague <user%u@example.org>\r\n"
	           "Subject: Quarterly update %u-%u\r\n"
	           "Date: Tue, 24 Nov 2026 13:00:%02u +0000\r\n"
	           "Message-ID: <bench-%u-%u@example.net>\r\n"
	           "MIME-Version: 1.0\r\n",
	           n % 97, n % 60, n % 97, n % 97, n % 16, run, n, n % 60, run, n);
}

/* One message of roughly size bytes; the kind follows from the size. */
static void gen_message(struct buf *b, unsigned run, unsigned n, size_t size)
{
	gen_headers(b, run, n);
	unsigned kind = size < 16 * 1024 ? (unsigned)(rng_next() % 2) : 2;
	if (kind == 0) {
		buf_append_str(b, "Content-Type: text/plain; charset=utf-8\r\n"
		                  "Content-Transfer-Encoding: 8bit\r\n\r\n");
		gen_text(b, size);
		return;
	}
	if (kind == 1) {
		buf_append_str(b, "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
		                  "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
		gen_text(b, size / 3);
		buf_append_str(b, "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
		                  "<html><body><p>");
		gen_text(b, size / 2);
		buf_append_str(b, "</p></body></html>\r\n--alt--\r\n");
		return;
	}
	buf_append_str(b, "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n"
	                  "--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
	gen_text(b, 1500 + rng_next() % 3000);
	buf_printf(b,
	           "--mix\r\nContent-Type: application/pdf; name=\"report-%u.pdf\"\r\n"
	           "Content-Disposition: attachment; filename=\"report-%u.pdf\"\r\n"
	           "Content-Transfer-Encoding: base64\r\n\r\n",
	           n, n);
	gen_base64(b, size);
	buf_append_str(b, "--mix--\r\n");
}

/* 2 KB .. 200 KB, log-uniform: many small messages, a few large ones. */
static size_t gen_size(void)
{
	double u = (double)(rng_next() % 1000000) / 1000000.0;
	double lo = 2048, hi = 200 * 1024;
	size_t s = (size_t)(lo * pow(hi / lo, u));
	return s < 1024 ? 1024 : s - 900; /* headers and MIME framing come on top */
}

struct bench_msg {
	struct buf raw;
	struct store_incoming *in;
};

static struct bench_msg *gen_messages(unsigned run, unsigned n, uint64_t *bytes_r)
{
	struct bench_msg *m = calloc(n, sizeof(*m));
	*bytes_r = 0;
	for (unsigned i = 0; i < n; i++) {
		buf_init(&m[i].raw, BUF_NO_LIMIT);
		gen_message(&m[i].raw, run, i, gen_size());
		m[i].in = store_incoming_new(64 * 1024 * 1024, NULL);
		store_incoming_write(m[i].in, m[i].raw.data, m[i].raw.len);
		store_incoming_finish(m[i].in);
		*bytes_r += m[i].raw.len;
	}
	return m;
}

static void free_messages(struct bench_msg *m, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		buf_free(&m[i].raw);
		store_incoming_free(&m[i].in);
	}
	free(m);
}

/* ---- the runs ---- */

/* The workers' connections, opened once and kept, as the server's pool
 * keeps its: a backend's first statements on each table cost catalog
 * lookups and plans that a long-lived connection pays once. (Opened per
 * slice, they made the 16-thread figure measure backend start-up: 16
 * fresh backends for 24 messages each.) Raw and store runs share them. */
#define BENCH_MAX_THREADS 16
static PGconn *bench_conns[BENCH_MAX_THREADS];

struct run {
	struct bench_msg *msgs;
	unsigned n;
	bool raw; /* the bench_raw insert instead of store_deliver */
	atomic_uint next;
	atomic_uint failures;
	atomic_uint worker;
	double *lat_ms; /* per message */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool raw_insert(PGconn *conn, const struct buf *raw)
{
	const char *values[1] = {raw->data};
	int lengths[1] = {(int)raw->len}, formats[1] = {1};
	PGresult *r = PQexecParams(conn, "INSERT INTO bench_raw (data) VALUES ($1::bytea)", 1, NULL,
	                           values, lengths, formats, 1);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok;
}

static bool store_insert(PGconn *conn, struct bench_msg *m, unsigned i)
{
	struct store_target t = {
	    .account_id = bench_accounts[(i * 7919u) % BENCH_ACCOUNTS],
	};
	return store_deliver(conn, m->in, &t, 1, false) == STORE_OK && t.result == STORE_OK;
}

static void *run_thread(void *arg)
{
	struct run *r = arg;
	PGconn *conn = bench_conns[atomic_fetch_add(&r->worker, 1)];
	unsigned i;
	while ((i = atomic_fetch_add(&r->next, 1)) < r->n) {
		double t0 = now_s();
		bool ok =
		    r->raw ? raw_insert(conn, &r->msgs[i].raw) : store_insert(conn, &r->msgs[i], i);
		r->lat_ms[i] = (now_s() - t0) * 1000.0;
		if (!ok)
			atomic_fetch_add(&r->failures, 1);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One mode's totals over the slices of a level. */
struct tally {
	double secs;
	double wal_bytes;
	double cpu_s;
	double *lat_ms;
	unsigned done, failures;
};

/* Runs msgs[0..n) at the given concurrency; latencies go to lat_ms. */
static void run_slice(struct bench_msg *msgs, unsigned n, unsigned threads, bool raw,
                      struct tally *t)
{
	struct run r = {.msgs = msgs, .n = n, .raw = raw, .lat_ms = t->lat_ms + t->done};
	atomic_init(&r.next, 0);
	atomic_init(&r.failures, 0);
	atomic_init(&r.worker, 0);
	pthread_t th[BENCH_MAX_THREADS];
	double t0 = now_s();
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, run_thread, &r);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t->secs += now_s() - t0;
	t->done += n;
	t->failures += atomic_load(&r.failures);
}

struct result {
	double msgs_s, mb_s, p50, p99, wal_kb, cpu_ms;
	unsigned failures;
};

static struct result tally_result(struct tally *t, uint64_t bytes)
{
	qsort(t->lat_ms, t->done, sizeof(double), cmp_double);
	return (struct result){
	    .msgs_s = t->done / t->secs,
	    .mb_s = (double)bytes / t->secs / 1e6,
	    .p50 = t->lat_ms[t->done / 2],
	    .p99 = t->lat_ms[(size_t)((double)t->done * 0.99)],
	    .wal_kb = t->wal_bytes / t->done / 1024.0,
	    .cpu_ms = t->cpu_s * 1000.0 / t->done,
	    .failures = t->failures,
	};
}

/* The machine may be busy with other work: raw and store runs alternate
 * in slices so that both see the same background. */
#define BENCH_SLICES 4

/* Bytes of WAL written so far (the setup connection asks). */
static double wal_position(PGconn *conn)
{
	PGresult *r = PQexec(conn, "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn");
	double v = PQresultStatus(r) == PGRES_TUPLES_OK ? strtod(PQgetvalue(r, 0, 0), NULL) : 0;
	PQclear(r);
	return v;
}

/* Messages delivered but not yet indexed (the indexer runs beside the
 * deliveries, as in `roost serve`). */
static long index_backlog(PGconn *conn)
{
	PGresult *r = PQexec(conn, "SELECT count(*) FROM search_pending");
	long v = PQresultStatus(r) == PGRES_TUPLES_OK ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
	PQclear(r);
	return v;
}

/* Longest wait for the indexer to catch up, in ms, over the level. */
static double index_lag_ms;

/* Every slice starts with the indexer idle, so neither mode is slowed by
 * indexing that an earlier store slice caused (during a slice the indexer
 * defers to deliveries, see indexer.h); the wait is reported as the lag. */
static void wait_for_indexer(PGconn *conn)
{
	double t0 = now_s();
	while (index_backlog(conn) > 0)
		usleep(5000);
	double lag = (now_s() - t0) * 1000.0;
	if (lag > index_lag_ms)
		index_lag_ms = lag;
}

static void run_measured(PGconn *conn, struct bench_msg *msgs, unsigned n, unsigned threads,
                         bool raw, struct tally *t)
{
	wait_for_indexer(conn);
	double w0 = wal_position(conn), c0 = bench_cpu_used_s();
	run_slice(msgs, n, threads, raw, t);
	t->cpu_s += bench_cpu_used_s() - c0;
	t->wal_bytes += wal_position(conn) - w0;
}

static void run_level(PGconn *conn, struct bench_msg *msgs, unsigned n, uint64_t bytes,
                      unsigned threads, struct result *store_r, struct result *raw_r)
{
	struct tally st = {.lat_ms = calloc(n, sizeof(double))};
	struct tally raw = {.lat_ms = calloc(n, sizeof(double))};
	unsigned per = n / BENCH_SLICES;
	for (unsigned s = 0; s < BENCH_SLICES; s++) {
		unsigned from = s * per, count = s + 1 == BENCH_SLICES ? n - from : per;
		bool raw_first = s % 2 == 0;
		run_measured(conn, msgs + from, count, threads, raw_first, raw_first ? &raw : &st);
		run_measured(conn, msgs + from, count, threads, !raw_first, raw_first ? &st : &raw);
	}
	*store_r = tally_result(&st, bytes);
	*raw_r = tally_result(&raw, bytes);
	free(st.lat_ms);
	free(raw.lat_ms);
}

/* ---- setup ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void bench_cleanup(void)
{
	pgmanaged_stop(&bench_pg);
	if (bench_root[0] != '\0')
		nftw(bench_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void bench_start_cluster(void)
{
	snprintf(bench_root, sizeof(bench_root), "/tmp/roost-bench-XXXXXX");
	if (mkdtemp(bench_root) == NULL)
		fatal("event=bench_mkdtemp_failed");
	chmod(bench_root, 0711);
	atexit(bench_cleanup);
	char path[128];
	snprintf(path, sizeof(path), "%s/data", bench_root);
	struct pgmanaged_opts o = {.data_dir = path, .quiet = true};
	if (geteuid() == 0)
		o.run_as = "postgres";
	char *error = NULL;
	if (pgmanaged_start(&o, &bench_pg, &error) < 0)
		fatal("event=bench_cluster_failed error=%s", error);
	bench_conninfo = pgmanaged_conninfo(bench_pg);
}

static void bench_sql(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fatal("event=bench_sql_failed sql=\"%s\" error=%s", sql, PQerrorMessage(conn));
	PQclear(r);
}

/* 16 accounts in a domain of their own (unique per run, so a shared DSN
 * can be used more than once). */
static void bench_accounts_create(PGconn *conn)
{
	char domain[64];
	snprintf(domain, sizeof(domain), "bench-%ld-%d.example", (long)time(NULL), (int)getpid());
	const char *p1[1] = {domain};
	PGresult *r = PQexecParams(conn, "INSERT INTO domains (name) VALUES ($1) RETURNING id", 1,
	                           NULL, p1, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fatal("event=bench_domain_failed error=%s", PQerrorMessage(conn));
	char domain_id[24];
	snprintf(domain_id, sizeof(domain_id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	bench_sql(conn, "BEGIN");
	for (int i = 0; i < BENCH_ACCOUNTS; i++) {
		char lp[16], addr[96];
		snprintf(lp, sizeof(lp), "user%d", i);
		snprintf(addr, sizeof(addr), "user%d@%s", i, domain);
		const char *p[3] = {domain_id, lp, addr};
		r = PQexecParams(conn,
		                 "INSERT INTO accounts (domain_id, localpart, address) "
		                 "VALUES ($1::bigint, $2, $3) RETURNING id",
		                 3, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fatal("event=bench_account_failed error=%s", PQerrorMessage(conn));
		uint64_t id = 0;
		str_to_u64(PQgetvalue(r, 0, 0), INT64_MAX, &id);
		bench_accounts[i] = (int64_t)id;
		PQclear(r);
		if (store_mailboxes_create_defaults(conn, bench_accounts[i]) != STORE_OK)
			fatal("event=bench_mailboxes_failed");
	}
	bench_sql(conn, "COMMIT");
}

static PGconn *bench_setup(void)
{
	const char *dsn = getenv("ROOST_BENCH_DSN");
	if (dsn != NULL && dsn[0] != '\0')
		bench_conninfo = dsn;
	else
		bench_start_cluster();
	PGconn *conn = PQconnectdb(bench_conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		fatal("event=bench_connect_failed error=%s", PQerrorMessage(conn));
	unsigned applied = 0;
	char *error = NULL;
	if (db_migrate(conn, &applied, &error) < 0)
		fatal("event=bench_migrate_failed error=%s", error);
	/* Stored like blobs.data (uncompressed, out of line) for a fair match. */
	bench_sql(conn, "SET client_min_messages = warning");
	bench_sql(conn, "CREATE TABLE IF NOT EXISTS bench_raw (data bytea NOT NULL)");
	bench_sql(conn, "ALTER TABLE bench_raw ALTER COLUMN data SET STORAGE EXTERNAL");
	bench_accounts_create(conn);
	for (int i = 0; i < BENCH_MAX_THREADS; i++) {
		bench_conns[i] = PQconnectdb(bench_conninfo);
		if (PQstatus(bench_conns[i]) != CONNECTION_OK)
			fatal("event=bench_connect_failed error=%s",
			      PQerrorMessage(bench_conns[i]));
	}
	return conn;
}

static void print_result(const char *what, const struct result *r)
{
	printf("  %-6s %8.1f msg/s %8.2f MB/s  p50 %7.2f ms  p99 %7.2f ms  WAL %6.1f KB/msg\n",
	       what, r->msgs_s, r->mb_s, r->p50, r->p99, r->wal_kb);
	if (r->cpu_ms > 0)
		printf("         CPU %.3f ms/msg (cgroup)\n", r->cpu_ms);
	if (r->failures)
		printf("         %u FAILED\n", r->failures);
}

int main(int argc, char **argv)
{
	uint64_t n = 1500;
	if (argc > 1 && (str_to_u64(argv[1], 10000000, &n) < 0 || n < 10)) {
		fprintf(stderr, "usage: %s [messages-per-run >= 10]\n", argv[0]);
		return 2;
	}
	log_set_level(LOG_WARN);
	PGconn *conn = bench_setup();
	struct db_pool *pool = NULL;
	char *perr = NULL;
	if (db_pool_create(bench_conninfo, 3, &pool, &perr) < 0)
		fatal("event=bench_pool_failed error=%s", perr);
	struct indexer *ix = indexer_start(pool, 0, NULL, &perr);
	if (ix == NULL)
		fatal("event=bench_indexer_failed error=%s", perr);
	/* Notifications as `roost serve` sends them (ROOST_BENCH_NOTIFY=inline:
	 * each delivery its own). */
	const char *how = getenv("ROOST_BENCH_NOTIFY");
	if ((how == NULL || strcmp(how, "inline") != 0) && notify_batch_start(pool, &perr) < 0)
		fatal("event=bench_notify_failed error=%s", perr);
	/* ROOST_BENCH_LANES: [database] delivery_lanes (store.h), default 4. */
	uint64_t lanes = 4;
	const char *lanes_env = getenv("ROOST_BENCH_LANES");
	if (lanes_env != NULL && str_to_u64(lanes_env, 64, &lanes) < 0)
		fatal("event=bench_bad_lanes value=%s", lanes_env);
	store_deliver_set_lanes((unsigned)lanes);
	static const unsigned levels[] = {1, 4, 16};
	for (unsigned l = 0; l < 3; l++) {
		uint64_t bytes;
		/* Fresh messages for each level, so no delivery is a dedupe hit;
		 * the raw run commits exactly the same bytes. */
		struct bench_msg *msgs = gen_messages(l, (unsigned)n, &bytes);
		bench_sql(conn, "CHECKPOINT");
		struct result st, raw;
		index_lag_ms = 0;
		struct store_deliver_stats b0, b1;
		store_deliver_stats_get(&b0);
		run_level(conn, msgs, (unsigned)n, bytes, levels[l], &st, &raw);
		store_deliver_stats_get(&b1);
		printf("threads=%u messages=%u avg_size=%.1f KB\n", levels[l], (unsigned)n,
		       (double)bytes / (double)n / 1024.0);
		print_result("store", &st);
		print_result("raw", &raw);
		printf("  ratio  %.0f%% of the raw commit rate\n", 100.0 * st.msgs_s / raw.msgs_s);
		uint64_t batches = b1.batches - b0.batches, batched = b1.batched - b0.batched;
		printf("  shared %.0f%% of deliveries in transactions of two or more (%.1f on "
		       "average)\n",
		       100.0 * (double)batched / (double)n,
		       batches > 0 ? (double)batched / (double)batches : 0.0);
		wait_for_indexer(conn);
		printf("  index  search index caught up at most %.0f ms after a slice\n",
		       index_lag_ms);
		fflush(stdout);
		free_messages(msgs, (unsigned)n);
	}
	notify_batch_stop();
	indexer_stop(&ix);
	db_pool_destroy(&pool);
	for (int i = 0; i < BENCH_MAX_THREADS; i++)
		PQfinish(bench_conns[i]);
	PQfinish(conn);
	return 0;
}
