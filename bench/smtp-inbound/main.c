/* bench-smtp-inbound - load on a running Roost's smtp listener, and the raw
 * commit rate of its database at the same concurrency.
 *
 *   bench-smtp-inbound PORT CONNINFO DOMAIN USERS CONNS MESSAGES SERVER_PID
 *
 * CONNS client threads, each with one SMTP connection kept open (as a busy
 * MTA does), send MESSAGES messages in all: 2 KB to 200 KB (log-uniform),
 * each to 1..4 of the accounts user0..user{USERS-1}@DOMAIN, MAIL/RCPT/DATA
 * pipelined (RFC 2920). Latency: from MAIL to the 250 after the final dot.
 * Then the same messages go through store_deliver() directly (parsing
 * included, as in SMTP; each with a Received: field unique to the run, so
 * nothing is deduplicated against an earlier run), and the same bytes are
 * committed as one INSERT per
 * transaction, each from CONNS libpq connections: the store's cost without
 * SMTP, and the limit delivery can approach. Prints the three rates, their
 * ratios and the server's peak RSS (VmHWM of SERVER_PID). Driven by run.py,
 * which sets the server up (README.md). */
#include "../common/cpuacct.h"
#include "buf.h"
#include "notify-batch.h"
#include "pool.h"
#include "store.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RCPTS 4
/* The managed cluster allows 100 clients and the server holds some: the raw
 * rate at more than this many connections is measured at this many. */
#define RAW_CONNS_MAX 48

struct bench_msg {
	struct buf wire; /* dot-stuffed DATA payload ending in CRLF.CRLF */
	struct buf raw;  /* the message itself, for the raw INSERT */
	unsigned rcpts[MAX_RCPTS];
	unsigned nrcpts;
};

static struct {
	unsigned port, users, conns, nmsgs;
	const char *conninfo, *domain;
	struct bench_msg *msgs;
	atomic_uint next;
	double *lat_ms;
	atomic_uint failed;
	int64_t *account_ids; /* of user0..user{users-1} */
	double cpu_ms;        /* of the last run_threads(), per message (cpuacct.h) */
	double cpu_index_ms;  /* the same, with the indexing it left behind */
	double index_lag_ms;  /* longest wait for the indexer after a run */
	PGconn *watch;        /* asks how many messages wait for the indexer */
} B;

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rng_next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *const words[] = {
    "meeting",  "report",   "budget", "the",      "and",    "project", "customer", "invoice",
    "schedule", "please",   "review", "attached", "thanks", "team",    "update",   "server",
    "release",  "forecast", "we",     "will",     "have",   "a",       "new",      "office"};

static void gen_message(struct bench_msg *m, unsigned i)
{
	size_t size = (size_t)(2048.0 * pow(100.0, (double)(rng_next() % 1000) / 1000.0));
	buf_init(&m->raw, BUF_NO_LIMIT);
	buf_printf(&m->raw,
	           "From: Sender %u <sender%u@remote.example>\r\nTo: team@example\r\n"
	           "Subject: bench message %u\r\nMessage-ID: <%u.%llu@bench>\r\n"
	           "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
	           "Content-Type: text/plain; charset=utf-8\r\n\r\n",
	           i, i, i, i, (unsigned long long)rng_next());
	size_t col = 0;
	while (m->raw.len < size) {
		const char *w = words[rng_next() % (sizeof(words) / sizeof(words[0]))];
		buf_append_str(&m->raw, w);
		col += strlen(w) + 1;
		buf_append_str(&m->raw, col > 70 ? (col = 0, "\r\n") : " ");
		if (rng_next() % 97 == 0)
			buf_append_str(&m->raw, "\r\n.dot line\r\n");
	}
	buf_append_str(&m->raw, "\r\n");
	buf_init(&m->wire, BUF_NO_LIMIT);
	bool bol = true;
	for (size_t k = 0; k < m->raw.len; k++) {
		if (bol && m->raw.data[k] == '.')
			buf_append_char(&m->wire, '.');
		buf_append_char(&m->wire, m->raw.data[k]);
		bol = m->raw.data[k] == '\n';
	}
	buf_append_str(&m->wire, ".\r\n");
	m->nrcpts = 1 + (unsigned)(rng_next() % MAX_RCPTS);
	for (unsigned r = 0; r < m->nrcpts; r++)
		m->rcpts[r] = (unsigned)((i * 5 + r * 7) % B.users);
}

/* ---- SMTP client ---- */

struct client {
	int fd;
	char in[65536];
	size_t have;
};

static int client_send(struct client *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one reply; returns its code or -1. */
static int client_reply(struct client *c)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->have);
		while (nl != NULL) {
			size_t len = (size_t)(nl - c->in) + 1;
			int code = len >= 4 ? (int)strtol(c->in, NULL, 10) : -1;
			bool last = len >= 4 && c->in[3] != '-';
			memmove(c->in, c->in + len, c->have - len);
			c->have -= len;
			if (last)
				return code;
			nl = memchr(c->in, '\n', c->have);
		}
		ssize_t r = recv(c->fd, c->in + c->have, sizeof(c->in) - c->have, 0);
		if (r <= 0)
			return -1;
		c->have += (size_t)r;
	}
}

static int client_open(struct client *c)
{
	c->have = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)B.port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || client_reply(c) != 220)
		return -1;
	const char *ehlo = "EHLO bench.example\r\n";
	return client_send(c, ehlo, strlen(ehlo)) == 0 && client_reply(c) == 250 ? 0 : -1;
}

static int client_message(struct client *c, const struct bench_msg *m)
{
	struct buf cmd;
	buf_init(&cmd, BUF_NO_LIMIT);
	buf_printf(&cmd, "MAIL FROM:<sender@remote.example> SIZE=%zu\r\n", m->raw.len);
	for (unsigned r = 0; r < m->nrcpts; r++)
		buf_printf(&cmd, "RCPT TO:<user%u@%s>\r\n", m->rcpts[r], B.domain);
	buf_append_str(&cmd, "DATA\r\n");
	int ok = client_send(c, cmd.data, cmd.len) == 0 && client_reply(c) == 250;
	for (unsigned r = 0; ok && r < m->nrcpts; r++)
		ok = client_reply(c) == 250;
	ok = ok && client_reply(c) == 354 && client_send(c, m->wire.data, m->wire.len) == 0 &&
	     client_reply(c) == 250;
	buf_free(&cmd);
	return ok ? 0 : -1;
}

static void *smtp_worker(void *arg)
{
	(void)arg;
	struct client c;
	if (client_open(&c) < 0) {
		fprintf(stderr, "connect failed\n");
		atomic_fetch_add(&B.failed, 1);
		return NULL;
	}
	unsigned i;
	while ((i = atomic_fetch_add(&B.next, 1)) < B.nmsgs) {
		double t0 = now_ms();
		if (client_message(&c, &B.msgs[i]) < 0) {
			atomic_fetch_add(&B.failed, 1);
			close(c.fd);
			if (client_open(&c) < 0)
				return NULL;
		}
		B.lat_ms[i] = now_ms() - t0;
	}
	client_send(&c, "QUIT\r\n", 6);
	client_reply(&c);
	close(c.fd);
	return NULL;
}

/* ---- store_deliver() alone: the same work without SMTP ---- */

/* A trace field unique to this run and message, as SMTP's Received: is:
 * without it a later run (the next concurrency) would find every message
 * already stored and measure only the deduplicated path. */
static void store_trace(struct buf *out, unsigned i)
{
	buf_printf(out, "Received: from bench.example by store_deliver id %ld.%u.%u\r\n",
	           (long)time(NULL), (unsigned)getpid(), i);
}

static void *store_worker(void *arg)
{
	PGconn *pg = arg;
	struct mime_limits limits;
	mime_limits_default(&limits);
	struct buf trace;
	buf_init(&trace, BUF_NO_LIMIT);
	unsigned i;
	while ((i = atomic_fetch_add(&B.next, 1)) < B.nmsgs) {
		const struct bench_msg *m = &B.msgs[i];
		double t0 = now_ms();
		struct store_incoming *in = store_incoming_new(UINT32_MAX, &limits);
		buf_reset(&trace);
		store_trace(&trace, i);
		store_incoming_write(in, trace.data, trace.len);
		store_incoming_write(in, m->raw.data, m->raw.len);
		store_incoming_finish(in);
		struct store_target t[MAX_RCPTS];
		memset(t, 0, sizeof(t));
		for (unsigned r = 0; r < m->nrcpts; r++)
			t[r].account_id = B.account_ids[m->rcpts[r]];
		if (store_deliver(pg, in, t, m->nrcpts, true) != STORE_OK)
			atomic_fetch_add(&B.failed, 1);
		store_incoming_free(&in);
		B.lat_ms[i] = now_ms() - t0;
	}
	buf_free(&trace);
	return NULL;
}

/* ---- raw commits ---- */

static void *raw_worker(void *arg)
{
	PGconn *pg = arg;
	unsigned i;
	while ((i = atomic_fetch_add(&B.next, 1)) < B.nmsgs) {
		double t0 = now_ms();
		const char *vals[1] = {B.msgs[i].raw.data};
		int lens[1] = {(int)B.msgs[i].raw.len};
		int fmts[1] = {1};
		PGresult *r = PQexecParams(pg, "INSERT INTO bench_raw (data) VALUES ($1)", 1, NULL,
		                           vals, lens, fmts, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			atomic_fetch_add(&B.failed, 1);
		PQclear(r);
		B.lat_ms[i] = now_ms() - t0;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Runs fn on CONNS threads; returns messages/s and fills p50/p99. */
/* Waits until the server's indexer has filed every message delivered so
 * far (it defers to deliveries, db/indexer.h); returns the ms waited. */
static double wait_indexed(void)
{
	if (B.watch == NULL)
		B.watch = PQconnectdb(B.conninfo);
	double t0 = now_ms();
	for (int i = 0; i < 60000 / 5; i++) {
		PGresult *r = PQexec(B.watch, "SELECT count(*) FROM search_pending");
		bool idle =
		    PQresultStatus(r) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r, 0, 0), "0") == 0;
		PQclear(r);
		if (idle)
			break;
		usleep(5000);
	}
	return now_ms() - t0;
}

/* Every run starts with the indexer idle, so that none is slowed by the
 * indexing an earlier one left; the CPU of the indexing a run leaves is
 * counted apart (cpu_index_ms). */
static double run_threads(void *(*fn)(void *), void **args, double *p50, double *p99)
{
	pthread_t *t = calloc(B.conns, sizeof(*t));
	atomic_store(&B.next, 0);
	(void)wait_indexed();
	double t0 = now_ms(), c0 = bench_cpu_used_s();
	for (unsigned k = 0; k < B.conns; k++)
		pthread_create(&t[k], NULL, fn, args != NULL ? args[k] : NULL);
	for (unsigned k = 0; k < B.conns; k++)
		pthread_join(t[k], NULL);
	double secs = (now_ms() - t0) / 1e3;
	B.cpu_ms = (bench_cpu_used_s() - c0) * 1e3 / B.nmsgs;
	double lag = wait_indexed();
	if (lag > B.index_lag_ms)
		B.index_lag_ms = lag;
	B.cpu_index_ms = (bench_cpu_used_s() - c0) * 1e3 / B.nmsgs;
	free(t);
	qsort(B.lat_ms, B.nmsgs, sizeof(double), cmp_double);
	*p50 = B.lat_ms[B.nmsgs / 2];
	*p99 = B.lat_ms[(size_t)(B.nmsgs * 0.99)];
	return B.nmsgs / secs;
}

static void load_account_ids(PGconn *pg)
{
	B.account_ids = calloc(B.users, sizeof(*B.account_ids));
	char sql[256];
	for (unsigned u = 0; u < B.users; u++) {
		snprintf(sql, sizeof(sql), "SELECT id FROM accounts WHERE address = 'user%u@%s'", u,
		         B.domain);
		PGresult *r = PQexec(pg, sql);
		if (PQntuples(r) != 1) {
			fprintf(stderr, "no account user%u@%s\n", u, B.domain);
			exit(1);
		}
		B.account_ids[u] = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
}

static double store_rate(double *p50, double *p99)
{
	void **conns = calloc(B.conns, sizeof(*conns));
	for (unsigned k = 0; k < B.conns; k++)
		conns[k] = PQconnectdb(B.conninfo);
	if (B.account_ids == NULL)
		load_account_ids(conns[0]);
	/* As in `roost serve`: notifications sent in batches by one thread,
	 * and deliveries that overlap sharing a transaction (store.h), in as
	 * many lanes as the server ($ROOST_BENCH_LANES, as run.py gives it). */
	const char *lanes = getenv("ROOST_BENCH_LANES");
	if (lanes != NULL && *lanes != '\0')
		store_deliver_set_lanes((unsigned)strtoul(lanes, NULL, 10));
	struct db_pool *pool = NULL;
	char *err = NULL;
	if (db_pool_create(B.conninfo, 2, &pool, &err) < 0 || notify_batch_start(pool, &err) < 0) {
		fprintf(stderr, "store: %s\n", err);
		exit(1);
	}
	double rate = run_threads(store_worker, conns, p50, p99);
	notify_batch_stop();
	db_pool_destroy(&pool);
	for (unsigned k = 0; k < B.conns; k++)
		PQfinish(conns[k]);
	free(conns);
	return rate;
}

static double raw_rate(double *p50, double *p99)
{
	unsigned smtp_conns = B.conns;
	if (B.conns > RAW_CONNS_MAX)
		B.conns = RAW_CONNS_MAX;
	void **conns = calloc(B.conns, sizeof(*conns));
	for (unsigned k = 0; k < B.conns; k++) {
		conns[k] = PQconnectdb(B.conninfo);
		if (PQstatus(conns[k]) != CONNECTION_OK) {
			fprintf(stderr, "raw: %s", PQerrorMessage(conns[k]));
			exit(1);
		}
	}
	/* Stored like blobs.data: uncompressed, out of line. */
	PQclear(PQexec(conns[0], "SET client_min_messages = warning"));
	PQclear(PQexec(conns[0], "CREATE TABLE IF NOT EXISTS bench_raw (data bytea NOT NULL)"));
	PQclear(PQexec(conns[0], "ALTER TABLE bench_raw ALTER COLUMN data SET STORAGE EXTERNAL"));
	double rate = run_threads(raw_worker, conns, p50, p99);
	PQclear(PQexec(conns[0], "TRUNCATE bench_raw"));
	for (unsigned k = 0; k < B.conns; k++)
		PQfinish(conns[k]);
	free(conns);
	B.conns = smtp_conns;
	return rate;
}

static long peak_rss_kb(const char *pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f != NULL)
		fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: %s PORT CONNINFO DOMAIN USERS CONNS MESSAGES SERVER_PID\n",
		        argv[0]);
		return 2;
	}
	B.port = (unsigned)strtoul(argv[1], NULL, 10);
	B.conninfo = argv[2];
	B.domain = argv[3];
	B.users = (unsigned)strtoul(argv[4], NULL, 10);
	B.conns = (unsigned)strtoul(argv[5], NULL, 10);
	B.nmsgs = (unsigned)strtoul(argv[6], NULL, 10);
	B.msgs = calloc(B.nmsgs, sizeof(*B.msgs));
	B.lat_ms = calloc(B.nmsgs, sizeof(double));
	uint64_t bytes = 0;
	for (unsigned i = 0; i < B.nmsgs; i++) {
		gen_message(&B.msgs[i], i);
		bytes += B.msgs[i].raw.len;
	}
	double p50, p99, r50, r99;
	double smtp = run_threads(smtp_worker, NULL, &p50, &p99);
	double smtp_cpu = B.cpu_ms, smtp_cpu_index = B.cpu_index_ms;
	unsigned failed = atomic_load(&B.failed);
	printf("conns=%-4u messages=%u avg_size=%lluB smtp=%.1f msg/s p50=%.1fms p99=%.1fms "
	       "failed=%u server_peak_rss=%ldMB",
	       B.conns, B.nmsgs, (unsigned long long)(bytes / B.nmsgs), smtp, p50, p99, failed,
	       peak_rss_kb(argv[7]) / 1024);
	fflush(stdout);
	unsigned store_conns = B.conns < RAW_CONNS_MAX ? B.conns : RAW_CONNS_MAX;
	unsigned smtp_conns = B.conns;
	B.conns = store_conns;
	double s50, s99;
	double store = store_rate(&s50, &s99);
	double store_cpu = B.cpu_ms, store_cpu_index = B.cpu_index_ms;
	B.conns = smtp_conns;
	double raw = raw_rate(&r50, &r99);
	double raw_cpu = B.cpu_ms;
	printf("\n  store_deliver(%u conns)=%.1f msg/s p50=%.1fms p99=%.1fms"
	       " | raw_commit(%u conns)=%.1f msg/s p50=%.1fms p99=%.1fms"
	       " | smtp/raw=%.0f%% smtp/store=%.0f%%\n",
	       store_conns, store, s50, s99, store_conns, raw, r50, r99, 100.0 * smtp / raw,
	       100.0 * smtp / store);
	printf("  search index caught up at most %.0f ms after a run\n", B.index_lag_ms);
	if (smtp_cpu > 0)
		printf("  CPU per message (cgroup): smtp=%.3fms (%.3fms with its indexing) "
		       "store_deliver=%.3fms (%.3fms) raw_commit=%.3fms\n",
		       smtp_cpu, smtp_cpu_index, store_cpu, store_cpu_index, raw_cpu);
	return failed > 0 ? 1 : 0;
}
