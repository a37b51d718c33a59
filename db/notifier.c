/* notifier.c - LISTEN/NOTIFY fan-out to mailbox subscribers (notifier.h). */
#include "notifier.h"

#include "buf.h"
#include "log.h"
#include "strnum.h"
#include "xalloc.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define NOTIFIER_BUCKETS_MIN        64
#define NOTIFIER_BACKOFF_MIN_MS     100
#define NOTIFIER_BACKOFF_MAX_MS     5000
#define NOTIFIER_CONNECT_TIMEOUT_MS 10000

struct notifier_sub {
	struct notifier *n; /* NULL once the notifier stopped */
	int64_t mailbox_id;
	int efd;
	struct notifier_sub *prev, *next; /* in the bucket's chain */
};

struct notifier {
	char *conninfo;
	PGconn *conn; /* used only by the thread once it runs */
	pthread_t thread;
	int stop_efd; /* readable when the thread must end */
	atomic_uint reconnects;
	pthread_mutex_t mutex; /* guards the map below */
	struct notifier_sub **buckets;
	size_t nbuckets; /* a power of two */
	size_t nsubs;
};

static char *notifier_error(const char *prefix, const PGconn *conn)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_printf(&b, "%s: %s", prefix, conn != NULL ? PQerrorMessage(conn) : "out of memory");
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		buf_truncate(&b, b.len - 1);
	return buf_steal(&b, NULL);
}

/* ---- the subscription map ------------------------------------------- */

static size_t notifier_bucket(const struct notifier *n, int64_t mailbox_id)
{
	/* Fibonacci hashing spreads sequential ids over the buckets. */
	uint64_t h = (uint64_t)mailbox_id * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 32) & (n->nbuckets - 1);
}

static void notifier_link(struct notifier *n, struct notifier_sub *s)
{
	struct notifier_sub **head = &n->buckets[notifier_bucket(n, s->mailbox_id)];
	s->prev = NULL;
	s->next = *head;
	if (*head != NULL)
		(*head)->prev = s;
	*head = s;
}

static void notifier_unlink(struct notifier *n, struct notifier_sub *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		n->buckets[notifier_bucket(n, s->mailbox_id)] = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
}

/* Under the mutex: keeps chains short as subscribers come. */
static void notifier_grow(struct notifier *n)
{
	struct notifier_sub **old = n->buckets;
	size_t oldn = n->nbuckets;
	n->nbuckets = oldn * 2;
	n->buckets = xcalloc(n->nbuckets, sizeof(struct notifier_sub *));
	for (size_t i = 0; i < oldn; i++) {
		struct notifier_sub *s = old[i];
		while (s != NULL) {
			struct notifier_sub *next = s->next;
			notifier_link(n, s);
			s = next;
		}
	}
	free(old);
}

static void notifier_signal(int efd)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is full: the wake-up is pending anyway. */
	(void)!write(efd, &one, sizeof(one));
}

static void notifier_wake_mailbox(struct notifier *n, int64_t mailbox_id)
{
	pthread_mutex_lock(&n->mutex);
	for (struct notifier_sub *s = n->buckets[notifier_bucket(n, mailbox_id)]; s != NULL;
	     s = s->next)
		if (s->mailbox_id == mailbox_id)
			notifier_signal(s->efd);
	pthread_mutex_unlock(&n->mutex);
}

static void notifier_wake_all(struct notifier *n)
{
	pthread_mutex_lock(&n->mutex);
	for (size_t i = 0; i < n->nbuckets; i++)
		for (struct notifier_sub *s = n->buckets[i]; s != NULL; s = s->next)
			notifier_signal(s->efd);
	pthread_mutex_unlock(&n->mutex);
}

/* ---- the connection ------------------------------------------------- */

/* Waits up to timeout_ms for fd to be ready for events, or for a stop.
 * Returns 1 ready, 0 timeout, -1 stop requested. */
static int notifier_poll(struct notifier *n, int fd, short events, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = n->stop_efd, .events = POLLIN}, {.fd = fd, .events = events}};
	for (;;) {
		int r = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0 && (p[0].revents & POLLIN) != 0)
			return -1;
		return r > 0 ? 1 : 0;
	}
}

static void notifier_notice(void *arg, const char *message)
{
	char q[LOG_QUOTE_MAX];
	log_info("event=notifier_notice notice=%s", log_quote(q, sizeof(q), message));
}

/* Drives a non-blocking connect so that notifier_stop() never waits for a
 * server that does not answer. NULL with *error_r on failure or stop. */
static PGconn *notifier_connect(struct notifier *n, char **error_r)
{
	const char *const keys[] = {"application_name",
	                            "keepalives",
	                            "keepalives_idle",
	                            "keepalives_interval",
	                            "keepalives_count",
	                            "dbname",
	                            NULL};
	const char *const values[] = {"roost-notifier", "1", "30", "10", "3", n->conninfo, NULL};
	PGconn *conn = PQconnectStartParams(keys, values, 1);
	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD) {
		*error_r = notifier_error("cannot connect to PostgreSQL", conn);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notifier_notice, NULL);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		short ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		int r = notifier_poll(n, PQsocket(conn), ev, NOTIFIER_CONNECT_TIMEOUT_MS);
		if (r <= 0) {
			*error_r = xstrdup(r < 0 ? "stopped while connecting"
			                         : "timed out connecting to PostgreSQL");
			PQfinish(conn);
			return NULL;
		}
		st = PQconnectPoll(conn);
	}
	PGresult *res = st == PGRES_POLLING_OK ? PQexec(conn, "LISTEN " NOTIFIER_CHANNEL) : NULL;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*error_r = notifier_error("cannot LISTEN on " NOTIFIER_CHANNEL, conn);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

static void notifier_dispatch(struct notifier *n)
{
	PGnotify *note;
	while ((note = PQnotifies(n->conn)) != NULL) {
		uint64_t id;
		if (strcmp(note->relname, NOTIFIER_CHANNEL) == 0 &&
		    str_to_u64(note->extra, INT64_MAX, &id) == 0)
			notifier_wake_mailbox(n, (int64_t)id);
		else
			log_warn("event=notifier_bad_payload channel=%s", NOTIFIER_CHANNEL);
		PQfreemem(note);
	}
}

/* Serves the connection until it breaks (0) or a stop is requested (-1). */
static int notifier_listen(struct notifier *n)
{
	for (;;) {
		int r = notifier_poll(n, PQsocket(n->conn), POLLIN, -1);
		if (r < 0)
			return -1;
		if (PQconsumeInput(n->conn) == 0 || PQstatus(n->conn) != CONNECTION_OK)
			return 0;
		notifier_dispatch(n);
	}
}

/* Reconnects with backoff; 0 once connected, -1 when stopped. */
static int notifier_reconnect(struct notifier *n)
{
	int backoff = NOTIFIER_BACKOFF_MIN_MS;
	for (;;) {
		if (notifier_poll(n, -1, 0, backoff) < 0)
			return -1;
		char *error = NULL;
		n->conn = notifier_connect(n, &error);
		if (n->conn != NULL)
			return 0;
		char q[LOG_QUOTE_MAX];
		log_warn("event=notifier_reconnect_failed retry_ms=%d error=%s", backoff,
		         log_quote(q, sizeof(q), error));
		free(error);
		backoff =
		    backoff * 2 < NOTIFIER_BACKOFF_MAX_MS ? backoff * 2 : NOTIFIER_BACKOFF_MAX_MS;
	}
}

static void *notifier_thread(void *arg)
{
	struct notifier *n = arg;
	log_set_session("notifier");
	while (notifier_listen(n) == 0) {
		char q[LOG_QUOTE_MAX];
		log_warn("event=notifier_connection_lost error=%s",
		         log_quote(q, sizeof(q), PQerrorMessage(n->conn)));
		PQfinish(n->conn);
		n->conn = NULL;
		if (notifier_reconnect(n) < 0)
			break;
		atomic_fetch_add(&n->reconnects, 1);
		log_info("event=notifier_reconnected");
		/* Whatever was notified while we were away is lost. */
		notifier_wake_all(n);
	}
	return NULL;
}

/* ---- public API ----------------------------------------------------- */

struct notifier *notifier_start(const char *conninfo, char **error_r)
{
	struct notifier *n = xcalloc(1, sizeof(*n));
	n->conninfo = xstrdup(conninfo);
	n->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->stop_efd < 0)
		fatal("event=notifier_start error=\"eventfd: %s\"", strerror(errno));
	n->conn = notifier_connect(n, error_r);
	if (n->conn == NULL) {
		close(n->stop_efd);
		free(n->conninfo);
		free(n);
		return NULL;
	}
	pthread_mutex_init(&n->mutex, NULL);
	n->nbuckets = NOTIFIER_BUCKETS_MIN;
	n->buckets = xcalloc(n->nbuckets, sizeof(struct notifier_sub *));
	int err = pthread_create(&n->thread, NULL, notifier_thread, n);
	if (err != 0)
		fatal("event=notifier_start error=\"pthread_create: %s\"", strerror(err));
	return n;
}

void notifier_stop(struct notifier **np)
{
	struct notifier *n = *np;
	if (n == NULL)
		return;
	*np = NULL;
	notifier_signal(n->stop_efd);
	pthread_join(n->thread, NULL);
	PQfinish(n->conn);
	for (size_t i = 0; i < n->nbuckets; i++)
		for (struct notifier_sub *s = n->buckets[i]; s != NULL; s = s->next)
			s->n = NULL;
	pthread_mutex_destroy(&n->mutex);
	free(n->buckets);
	close(n->stop_efd);
	free(n->conninfo);
	free(n);
}

unsigned notifier_reconnects(const struct notifier *n)
{
	return atomic_load(&n->reconnects);
}

struct notifier_sub *notifier_subscribe(struct notifier *n, int64_t mailbox_id)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0) {
		/* Out of file descriptors: the session's problem, not fatal. */
		log_error("event=notifier_subscribe mailbox=%lld error=\"eventfd: %s\"",
		          (long long)mailbox_id, strerror(errno));
		return NULL;
	}
	struct notifier_sub *s = xcalloc(1, sizeof(*s));
	s->n = n;
	s->mailbox_id = mailbox_id;
	s->efd = efd;
	pthread_mutex_lock(&n->mutex);
	if (n->nsubs >= n->nbuckets * 2)
		notifier_grow(n);
	notifier_link(n, s);
	n->nsubs++;
	pthread_mutex_unlock(&n->mutex);
	return s;
}

void notifier_unsubscribe(struct notifier_sub **sp)
{
	struct notifier_sub *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	struct notifier *n = s->n;
	if (n != NULL) {
		pthread_mutex_lock(&n->mutex);
		notifier_unlink(n, s);
		n->nsubs--;
		pthread_mutex_unlock(&n->mutex);
	}
	close(s->efd);
	free(s);
}

int notifier_sub_fd(const struct notifier_sub *s)
{
	return s->efd;
}

bool notifier_sub_changed(struct notifier_sub *s)
{
	uint64_t count;
	return read(s->efd, &count, sizeof(count)) == (ssize_t)sizeof(count);
}

static long notifier_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int notifier_wait(struct notifier_sub *s, int timeout_ms)
{
	long deadline = notifier_now_ms() + timeout_ms;
	for (;;) {
		if (notifier_sub_changed(s))
			return 1;
		long left = timeout_ms < 0 ? -1 : deadline - notifier_now_ms();
		if (timeout_ms >= 0 && left <= 0)
			return 0;
		struct pollfd p = {.fd = s->efd, .events = POLLIN};
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return 0;
	}
}
