/* queue-runner.c - the outbound delivery threads (outbound.h).
 *
 * Each runner thread has its own database connection: it LISTENs on
 * roost_queue and claims one due row at a time inside a transaction that
 * stays open during the delivery (FOR UPDATE SKIP LOCKED), so a crash
 * releases the row at once and no other runner takes it meanwhile. Each
 * recipient's result is committed on a pooled connection right after the
 * remote reply; the row's schedule is updated (or the row deleted) when the
 * claim commits. */
#include "outbound-private.h"

#include "log.h"
#include "strnum.h"
#include "tls.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNNER_POLL_MS            1000
#define RUNNER_BORROW_TIMEOUT_MS  10000
#define RUNNER_COMMAND_TIMEOUT_MS 300000

struct runner_thread {
	struct queue_runner *qr;
	pthread_t tid;
	bool started;
	pthread_mutex_t lock; /* guards active */
	struct conn *active;  /* the SMTP connection in use, for a forced stop */
};

struct queue_runner {
	const struct config *cfg;
	struct db_pool *pool;
	struct directory *dir;
	struct dns_resolver dns;
	struct ssl_ctx_st *tls;       /* opportunistic STARTTLS to MX hosts: no checks */
	struct ssl_ctx_st *relay_tls; /* the smarthost: verifying unless relayhost_verify = no */
	atomic_bool stopping;
	int stop_pipe[2];
	struct runner_thread *threads;
	size_t nthreads;
};

/* One recipient during an attempt. */
struct runner_rcpt {
	struct queue_rcpt *rc;
	struct smtpc_reply reply;
	char mta[DNS_NAME_MAX + 1];
	bool done; /* handled in this attempt (any result) */
};

/* Where a domain's mail goes: hosts in order, and how to talk to them. */
struct runner_route {
	struct dns_mx *hosts;
	size_t nhosts;
	uint16_t port;
	struct smtpc_options o;
};

static uint64_t runner_delay_ms(const struct queue_entry *e)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - e->created_ms;
	return ms > 0 ? (uint64_t)ms : 0;
}

static const char *runner_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at != NULL ? at + 1 : address;
}

/* Records one recipient's result at once on a pooled connection and logs
 * it. A recipient accepted by the remote is never left pending. */
static void runner_record(struct queue_runner *qr, const struct queue_entry *e,
                          struct runner_rcpt *r)
{
	unsigned code = r->reply.code;
	enum queue_rcpt_status st = code >= 200 && code < 300   ? QUEUE_RCPT_SENT
	                            : code >= 500 && code < 600 ? QUEUE_RCPT_FAILED
	                                                        : QUEUE_RCPT_PENDING;
	r->rc->status = st;
	r->done = true;
	PGconn *conn = db_pool_borrow(qr->pool, RUNNER_BORROW_TIMEOUT_MS);
	int ok = conn != NULL ? queue_rcpt_set(conn, e->id, r->rc->address, st,
	                                       st == QUEUE_RCPT_SENT ? NULL : r->reply.text,
	                                       r->mta[0] != '\0' ? r->mta : NULL, r->reply.esc)
	                      : -1;
	if (conn != NULL)
		db_pool_return(qr->pool, &conn);
	char q[LOG_QUOTE_MAX], t[LOG_QUOTE_MAX];
	log_info("event=delivery queue_id=%lld rcpt=%s mx=%s status=%s dsn=%s delay_ms=%" PRIu64
	         " reply=%s%s",
	         (long long)e->id, log_quote(q, sizeof(q), r->rc->address),
	         r->mta[0] != '\0' ? r->mta : "-",
	         st == QUEUE_RCPT_SENT     ? "sent"
	         : st == QUEUE_RCPT_FAILED ? "bounced"
	                                   : "deferred",
	         r->reply.esc, runner_delay_ms(e), log_quote(t, sizeof(t), r->reply.text),
	         ok < 0 ? " record=failed" : "");
}

/* [smtp] relayhost = host:port (or host: port 25, 465 for implicit TLS). */
static void runner_route_relay(struct queue_runner *qr, const char *relay, struct runner_route *rt)
{
	const struct config *cfg = qr->cfg;
	const char *mode = config_str(cfg, CFG_SMTP_RELAYHOST_TLS);
	rt->o.tls = strcmp(mode, "implicit") == 0 ? SMTPC_TLS_IMPLICIT
	            : strcmp(mode, "none") == 0   ? SMTPC_TLS_NONE
	                                          : SMTPC_TLS_REQUIRED;
	rt->o.tls_ctx = qr->relay_tls;
	rt->o.auth_user = config_str(cfg, CFG_SMTP_RELAYHOST_USER);
	rt->o.auth_password = config_str(cfg, CFG_SMTP_RELAYHOST_PASSWORD);
	struct config_listen_addr *a = NULL;
	size_t n = 0;
	const char *err;
	rt->hosts = xcalloc(1, sizeof(*rt->hosts));
	rt->nhosts = 1;
	rt->port = rt->o.tls == SMTPC_TLS_IMPLICIT ? 465 : 25;
	if (config_listen_parse(relay, &a, &n, &err) == 0 && n == 1) {
		snprintf(rt->hosts[0].host, sizeof(rt->hosts[0].host), "%s", a[0].host);
		uint32_t port = 0;
		if (str_to_u32(a[0].port, &port) == 0 && port > 0 && port < 65536)
			rt->port = (uint16_t)port;
	} else {
		snprintf(rt->hosts[0].host, sizeof(rt->hosts[0].host), "%s", relay);
	}
	free(a);
}

/* The route of a domain: the smarthost, or its MX hosts. On a DNS failure
 * fills *fail_r and returns -1. */
static int runner_route(struct queue_runner *qr, const char *domain, struct runner_route *rt,
                        struct smtpc_reply *fail_r)
{
	const struct config *cfg = qr->cfg;
	const char *relay = config_str(cfg, CFG_SMTP_RELAYHOST);
	memset(rt, 0, sizeof(*rt));
	rt->o.helo = config_str(cfg, CFG_SERVER_HOSTNAME);
	rt->o.tls_ctx = qr->tls;
	rt->o.connect_timeout_ms = (uint32_t)config_uint(cfg, CFG_QUEUE_CONNECT_TIMEOUT) * 1000;
	rt->o.command_timeout_ms = RUNNER_COMMAND_TIMEOUT_MS;
	rt->o.stop_fd = qr->stop_pipe[0];
	rt->port = (uint16_t)config_uint(cfg, CFG_QUEUE_SMTP_PORT);
	if (relay[0] != '\0') {
		runner_route_relay(qr, relay, rt);
		return 0;
	}
	rt->o.tls = SMTPC_TLS_OPPORTUNISTIC;
	enum dns_result res = dns_mx_lookup(&qr->dns, domain, &rt->hosts, &rt->nhosts);
	if (res == DNS_OK)
		return 0;
	if (res == DNS_NXDOMAIN)
		smtpc_reply_set(fail_r, 550, "5.1.2", "recipient domain does not exist");
	else if (res == DNS_NODATA)
		smtpc_reply_set(fail_r, 556, "5.1.10",
		                "recipient domain does not accept mail (null MX)");
	else
		smtpc_reply_set(fail_r, 451, "4.4.3", dns_result_str(res));
	return -1;
}

static void runner_set_active(struct runner_thread *t, struct conn *c)
{
	pthread_mutex_lock(&t->lock);
	t->active = c;
	/* A stop that came just before would have missed this conn. */
	if (c != NULL && atomic_load(&t->qr->stopping))
		conn_shutdown_force(c);
	pthread_mutex_unlock(&t->lock);
}

/* One transaction on an open session for the recipients of a domain,
 * recorded one by one as soon as the final reply is in. */
static void runner_transaction(struct runner_thread *t, const struct queue_entry *e,
                               struct smtpc_session *s, const char *host, struct runner_rcpt **g,
                               size_t n)
{
	const char **addrs = xcalloc(n, sizeof(*addrs));
	struct smtpc_reply *replies = xcalloc(n, sizeof(*replies));
	for (size_t i = 0; i < n; i++)
		addrs[i] = g[i]->rc->address;
	smtpc_send(s, e->sender, addrs, n, &e->data, e->smtputf8, replies);
	for (size_t i = 0; i < n; i++) {
		g[i]->reply = replies[i];
		snprintf(g[i]->mta, sizeof(g[i]->mta), "%s", host);
		runner_record(t->qr, e, g[i]);
	}
	free(addrs);
	free(replies);
}

/* Tries the route's hosts and addresses in order until one takes the
 * transaction; *last_r: the last failure otherwise. */
static bool runner_try_hosts(struct runner_thread *t, const struct queue_entry *e,
                             struct runner_route *rt, struct runner_rcpt **g, size_t n,
                             struct smtpc_reply *last_r, char *last_host)
{
	for (size_t h = 0; h < rt->nhosts && !atomic_load(&t->qr->stopping); h++) {
		struct sockaddr_storage *addrs = NULL;
		size_t naddrs = 0;
		enum dns_result res =
		    dns_host_addrs(&t->qr->dns, rt->hosts[h].host, rt->port, &addrs, &naddrs);
		if (res != DNS_OK)
			smtpc_reply_set(last_r, 451, "4.4.4", "MX host has no address");
		for (size_t a = 0; a < naddrs && !atomic_load(&t->qr->stopping); a++) {
			rt->o.host = rt->hosts[h].host;
			struct smtpc_session *s = smtpc_open(&addrs[a], &rt->o, last_r);
			snprintf(last_host, DNS_NAME_MAX + 1, "%s", rt->hosts[h].host);
			if (s == NULL)
				continue;
			runner_set_active(t, smtpc_conn(s));
			runner_transaction(t, e, s, rt->hosts[h].host, g, n);
			runner_set_active(t, NULL);
			smtpc_close(&s);
			free(addrs);
			return true;
		}
		free(addrs);
	}
	return false;
}

/* Delivers the recipients g[0..n) of one domain over one connection. */
static void runner_deliver_domain(struct runner_thread *t, const struct queue_entry *e,
                                  struct runner_rcpt **g, size_t n)
{
	struct runner_route rt;
	struct smtpc_reply fail;
	char host[DNS_NAME_MAX + 1] = "";
	smtpc_reply_set(&fail, 451, "4.4.1", "no MX host could be reached");
	if (runner_route(t->qr, runner_domain(g[0]->rc->address), &rt, &fail) == 0 &&
	    runner_try_hosts(t, e, &rt, g, n, &fail, host)) {
		free(rt.hosts);
		return;
	}
	free(rt.hosts);
	if (atomic_load(&t->qr->stopping))
		smtpc_reply_set(&fail, 451, "4.3.2", "delivery interrupted by shutdown");
	for (size_t i = 0; i < n; i++) {
		g[i]->reply = fail;
		snprintf(g[i]->mta, sizeof(g[i]->mta), "%s", host);
		runner_record(t->qr, e, g[i]);
	}
}

/* Groups the pending recipients by domain, one connection per domain. */
static void runner_deliver(struct runner_thread *t, const struct queue_entry *e,
                           struct runner_rcpt *rs)
{
	struct runner_rcpt **g = xcalloc(e->nrcpts + 1, sizeof(*g));
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (rs[i].done || rs[i].rc->status != QUEUE_RCPT_PENDING)
			continue;
		const char *dom = runner_domain(rs[i].rc->address);
		size_t n = 0;
		for (size_t j = i; j < e->nrcpts; j++) {
			if (!rs[j].done && rs[j].rc->status == QUEUE_RCPT_PENDING &&
			    strcasecmp(runner_domain(rs[j].rc->address), dom) == 0)
				g[n++] = &rs[j];
		}
		runner_deliver_domain(t, e, g, n);
	}
	free(g);
}

/* Sends one kind of notice about the recipients in rs that want it. */
static void runner_notify(struct queue_runner *qr, const struct queue_entry *e,
                          struct runner_rcpt *rs, enum dsn_action action,
                          bool (*pick)(const struct runner_rcpt *r))
{
	struct dsn_rcpt *d = xcalloc(e->nrcpts + 1, sizeof(*d));
	size_t n = 0;
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (!pick(&rs[i]) || !dsn_wanted(rs[i].rc->notify, action))
			continue;
		d[n].rcpt = rs[i].rc;
		d[n].status = rs[i].reply.code != 0          ? rs[i].reply.esc
		              : rs[i].rc->dsn_status != NULL ? rs[i].rc->dsn_status
		                                             : "4.0.0";
		d[n].diagnostic = rs[i].reply.code != 0 ? rs[i].reply.text : rs[i].rc->last_error;
		d[n].remote_mta = rs[i].mta[0] != '\0' ? rs[i].mta : rs[i].rc->remote_mta;
		n++;
	}
	if (n > 0)
		dsn_send(qr->pool, qr->dir, qr->cfg, e, action, d, n);
	free(d);
}

static bool runner_pick_failed(const struct runner_rcpt *r)
{
	return r->done && r->rc->status == QUEUE_RCPT_FAILED;
}

static bool runner_pick_sent(const struct runner_rcpt *r)
{
	return r->done && r->rc->status == QUEUE_RCPT_SENT;
}

static bool runner_pick_pending(const struct runner_rcpt *r)
{
	return r->rc->status == QUEUE_RCPT_PENDING;
}

/* Past [queue] max_age, the recipients still pending fail with 4.4.7
 * (RFC 3463: delivery time expired), keeping their last error. */
static void runner_expire(struct queue_runner *qr, const struct queue_entry *e,
                          struct runner_rcpt *rs)
{
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (rs[i].rc->status != QUEUE_RCPT_PENDING)
			continue;
		char text[sizeof(rs[i].reply.text)];
		snprintf(text, sizeof(text), "%s",
		         rs[i].reply.code != 0          ? rs[i].reply.text
		         : rs[i].rc->last_error != NULL ? rs[i].rc->last_error
		                                        : "delivery time expired");
		rs[i].reply.code = 500; /* recorded as failed */
		snprintf(rs[i].reply.esc, sizeof(rs[i].reply.esc), "4.4.7");
		snprintf(rs[i].reply.text, sizeof(rs[i].reply.text), "%s", text);
		if (rs[i].mta[0] == '\0' && rs[i].rc->remote_mta != NULL)
			snprintf(rs[i].mta, sizeof(rs[i].mta), "%s", rs[i].rc->remote_mta);
		runner_record(qr, e, &rs[i]);
	}
}

static uint64_t runner_backoff(const struct config *cfg, unsigned attempts)
{
	uint64_t lo = config_uint(cfg, CFG_QUEUE_RETRY_MIN),
	         hi = config_uint(cfg, CFG_QUEUE_RETRY_MAX);
	uint64_t d = lo;
	for (unsigned i = 0; i < attempts && d < hi; i++)
		d *= 2;
	return d < hi ? d : (hi > lo ? hi : lo);
}

/* After the attempt: notices, then the row's fate (inside the claim). */
static int runner_finish(struct queue_runner *qr, PGconn *claim, const struct queue_entry *e,
                         struct runner_rcpt *rs)
{
	const struct config *cfg = qr->cfg;
	int64_t age = (int64_t)time(NULL) - (int64_t)e->created_at;
	if (age >= (int64_t)config_uint(cfg, CFG_QUEUE_MAX_AGE))
		runner_expire(qr, e, rs);
	runner_notify(qr, e, rs, DSN_FAILED, runner_pick_failed);
	runner_notify(qr, e, rs, DSN_RELAYED, runner_pick_sent);
	size_t pending = 0;
	for (size_t i = 0; i < e->nrcpts; i++)
		pending += rs[i].rc->status == QUEUE_RCPT_PENDING;
	if (pending == 0)
		return queue_remove(claim, e->id) < 0 ? -1 : 0;
	uint64_t notice = config_uint(cfg, CFG_QUEUE_DELAY_NOTICE);
	bool notified = e->delay_notified;
	if (!notified && notice > 0 && age >= (int64_t)notice) {
		runner_notify(qr, e, rs, DSN_DELAYED, runner_pick_pending);
		notified = true;
	}
	return queue_reschedule(claim, e->id, runner_backoff(cfg, e->attempts), notified) < 0 ? -1
	                                                                                      : 0;
}

/* Claims and delivers one due row. 1 done, 0 nothing due, -1 database
 * failure (the connection is then dropped). */
static int runner_one(struct runner_thread *t, PGconn *claim)
{
	struct queue_entry e;
	if (db_begin(claim) < 0)
		return -1;
	int got = queue_claim(claim, &e);
	if (got <= 0) {
		queue_entry_free(&e);
		if (got == 0 && db_commit(claim) == 0)
			return 0;
		db_rollback(claim);
		return -1;
	}
	char qid[32];
	snprintf(qid, sizeof(qid), "q%lld", (long long)e.id);
	log_set_msgid(qid);
	struct runner_rcpt *rs = xcalloc(e.nrcpts + 1, sizeof(*rs));
	for (size_t i = 0; i < e.nrcpts; i++)
		rs[i].rc = &e.rcpts[i];
	runner_deliver(t, &e, rs);
	int ret = runner_finish(t->qr, claim, &e, rs) == 0 && db_commit(claim) == 0 ? 1 : -1;
	if (ret < 0)
		db_rollback(claim);
	log_set_msgid(NULL);
	free(rs);
	queue_entry_free(&e);
	return ret;
}

/* Waits for a NOTIFY, the stop pipe or the poll interval. */
static void runner_wait(struct queue_runner *qr, PGconn *conn)
{
	struct pollfd pfd[2] = {{.fd = qr->stop_pipe[0], .events = POLLIN},
	                        {.fd = conn != NULL ? PQsocket(conn) : -1, .events = POLLIN}};
	if (poll(pfd, conn != NULL ? 2 : 1, RUNNER_POLL_MS) > 0 && conn != NULL &&
	    pfd[1].revents != 0) {
		PQconsumeInput(conn);
		PGnotify *n;
		while ((n = PQnotifies(conn)) != NULL)
			PQfreemem(n);
	}
}

static PGconn *runner_connect(struct queue_runner *qr)
{
	PGconn *conn = PQconnectdb(db_pool_conninfo(qr->pool));
	PGresult *r = NULL;
	if (PQstatus(conn) == CONNECTION_OK)
		r = db_exec(conn, "LISTEN " QUEUE_NOTIFY_CHANNEL, 0, NULL);
	if (r == NULL) {
		log_error("event=queue_db_connect error=\"%s\"", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQclear(r);
	return conn;
}

static void *runner_main(void *arg)
{
	struct runner_thread *t = arg;
	struct queue_runner *qr = t->qr;
	char sid[32];
	snprintf(sid, sizeof(sid), "queue-%zu", (size_t)(t - qr->threads));
	log_set_session(sid);
	PGconn *conn = NULL;
	while (!atomic_load(&qr->stopping)) {
		if (conn == NULL && (conn = runner_connect(qr)) == NULL) {
			runner_wait(qr, NULL);
			continue;
		}
		int r = runner_one(t, conn);
		if (r < 0) {
			PQfinish(conn);
			conn = NULL;
		}
		if (r <= 0)
			runner_wait(qr, conn);
	}
	PQfinish(conn);
	return NULL;
}

static void queue_runner_free(struct queue_runner *qr)
{
	for (size_t i = 0; i < qr->nthreads; i++)
		pthread_mutex_destroy(&qr->threads[i].lock);
	free(qr->threads);
	tls_ctx_unref(&qr->tls);
	tls_ctx_unref(&qr->relay_tls);
	close(qr->stop_pipe[0]);
	close(qr->stop_pipe[1]);
	free(qr);
}

/* A bad [dns] resolver is a config error; a machine without a usable
 * /etc/resolv.conf only defers mail (logged) until it has one and the
 * server restarts: local mail keeps working meanwhile. */
static int runner_dns_init(struct queue_runner *qr, const char **error_r)
{
	const char *server = config_str(qr->cfg, CFG_DNS_RESOLVER);
	unsigned timeout_ms = (unsigned)config_uint(qr->cfg, CFG_DNS_TIMEOUT) * 1000;
	const char *err;
	if (dns_resolver_init(&qr->dns, server, NULL, timeout_ms, &err) < 0) {
		if (server[0] != '\0') {
			*error_r = err;
			return -1;
		}
		log_warn("event=queue_dns error=\"%s\" note=\"outbound mail is deferred\"", err);
	}
	qr->dns.stop_fd = qr->stop_pipe[0];
	return 0;
}

/* The smarthost's context when relayhost_tls asks for TLS: the system trust
 * store, or only the CAs of [smtp] relayhost_ca (an unreadable file is a
 * config error, not a reason to trust more). */
static int runner_relay_tls_init(struct queue_runner *qr, const char **error_r)
{
	static char errbuf[512];
	const struct config *cfg = qr->cfg;
	bool verify = config_bool(cfg, CFG_SMTP_RELAYHOST_VERIFY);
	if (config_str(cfg, CFG_SMTP_RELAYHOST)[0] == '\0' ||
	    strcmp(config_str(cfg, CFG_SMTP_RELAYHOST_TLS), "none") == 0)
		return 0;
	qr->relay_tls = tls_client_ctx_new(verify, error_r);
	if (qr->relay_tls == NULL)
		return -1;
	char *ca = config_file_path(cfg, CFG_SMTP_RELAYHOST_CA);
	int ret = 0;
	if (verify && ca[0] != '\0') {
		X509_STORE *store = X509_STORE_new();
		if (store == NULL)
			fatal("event=out_of_memory what=x509_store");
		SSL_CTX_set_cert_store(qr->relay_tls, store); /* frees the system store */
		if (SSL_CTX_load_verify_locations(qr->relay_tls, ca, NULL) != 1) {
			char reason[256] = "";
			ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
			ERR_clear_error();
			snprintf(errbuf, sizeof(errbuf), "[smtp] relayhost_ca: cannot load %s: %s",
			         ca, reason);
			*error_r = errbuf;
			ret = -1;
		}
	}
	free(ca);
	return ret;
}

int queue_runner_start(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                       struct queue_runner **qr_r, const char **error_r)
{
	struct queue_runner *qr = xcalloc(1, sizeof(*qr));
	qr->cfg = cfg;
	qr->pool = pool;
	qr->dir = dir;
	atomic_init(&qr->stopping, false);
	if (pipe2(qr->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(qr);
		*error_r = "cannot create the queue runner's pipe";
		return -1;
	}
	if (runner_dns_init(qr, error_r) < 0 ||
	    (qr->tls = tls_client_ctx_new(false, error_r)) == NULL ||
	    runner_relay_tls_init(qr, error_r) < 0) {
		queue_runner_free(qr);
		return -1;
	}
	qr->nthreads = (size_t)config_uint(cfg, CFG_QUEUE_RUNNERS);
	qr->threads = xcalloc(qr->nthreads, sizeof(*qr->threads));
	for (size_t i = 0; i < qr->nthreads; i++) {
		struct runner_thread *t = &qr->threads[i];
		t->qr = qr;
		pthread_mutex_init(&t->lock, NULL);
		t->started = pthread_create(&t->tid, NULL, runner_main, t) == 0;
	}
	log_info("event=queue_start runners=%zu", qr->nthreads);
	*qr_r = qr;
	return 0;
}

void queue_runner_stop(struct queue_runner **qrp)
{
	struct queue_runner *qr = *qrp;
	if (qr == NULL)
		return;
	atomic_store(&qr->stopping, true);
	if (write(qr->stop_pipe[1], "x", 1) < 0)
		log_warn("event=queue_stop error=\"%s\"", strerror(errno));
	/* Connections in flight are cut: their recipients stay pending (a
	 * temporary failure), those already accepted are already recorded. */
	for (size_t i = 0; i < qr->nthreads; i++) {
		pthread_mutex_lock(&qr->threads[i].lock);
		if (qr->threads[i].active != NULL)
			conn_shutdown_force(qr->threads[i].active);
		pthread_mutex_unlock(&qr->threads[i].lock);
	}
	for (size_t i = 0; i < qr->nthreads; i++)
		if (qr->threads[i].started)
			pthread_join(qr->threads[i].tid, NULL);
	queue_runner_free(qr);
	*qrp = NULL;
}
