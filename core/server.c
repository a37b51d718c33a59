#include "server.h"

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "tls.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SERVER_MAX_PROTOS       16
#define SERVER_MAX_LISTENERS    64
#define SERVER_IP_BUCKETS       4096
#define SERVER_ACCEPT_BURST     64
#define SERVER_GRACE_DEFAULT_MS 10000
/* Session threads get an explicit stack instead of whatever RLIMIT_STACK
 * gives (8 MiB usually, 2 MiB under "ulimit -s unlimited", less if an admin
 * lowered it). Only touched pages cost memory (about 16 KiB for an idle IMAP
 * session), so the size is address space, not RSS. The deepest paths decide
 * it: ordinary commands, TLS, SASL/argon2, libpq and LDAP stay under 64 KiB
 * (measured in Debug and ASan builds over the integration tests), but IMAP
 * LIST pattern matching recurses once per wildcard (up to line_length, 64K
 * by default: about 3 MiB in a Debug build) and THREAD once per reply level.
 * Until those are iterative, 8 MiB keeps that margin. */
#define SERVER_THREAD_STACK (8u * 1024 * 1024)
/* Larger than any single frame of ours (the biggest holds a 32 KiB buffer),
 * so an overflow faults in the guard and cannot jump over it into the
 * neighbouring thread's stack. */
#define SERVER_THREAD_GUARD (64u * 1024)

struct server_listener {
	int fd;
	size_t proto;  /* index into srv.protos */
	size_t index;  /* n-th listener of that protocol */
	unsigned port; /* bound port */
};

/* A client address as counted for connections_per_ip: IPv4 in full, IPv6
 * by its /64 (one customer line usually gets a whole /64). */
struct server_ipkey {
	unsigned char bytes[8];
	unsigned char len; /* 0: not counted (AF_UNIX) */
};

struct server_ipcount {
	struct server_ipkey key;
	uint64_t count;
	struct server_ipcount *next;
};

struct server_session {
	struct conn *conn;
	size_t proto;
	struct server_ipkey key;
	struct server_session *prev, *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t ended; /* a session ended */
	struct server_session *sessions;
	struct server_ipcount *ip[SERVER_IP_BUCKETS];
	uint64_t max_total, max_per_ip;

	const struct config *cfg;
	/* A copy: the caller's table may be gone before a cut-off session. */
	struct server_protocol protos[SERVER_MAX_PROTOS];
	size_t n_protos;
	char names[SERVER_MAX_PROTOS][32];
	struct server_listener listeners[SERVER_MAX_LISTENERS];
	size_t n_listeners;

	_Atomic uint64_t accepted, rejected, open_total;
	_Atomic uint64_t open[SERVER_MAX_PROTOS];
	atomic_bool stop, reload;
	atomic_int pipe_w; /* self-pipe: signal handlers write a byte */
	int pipe_r;
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER, .pipe_w = -1, .pipe_r = -1};

static pthread_once_t server_once = PTHREAD_ONCE_INIT;
static _Thread_local char server_errbuf[768];

/* The pipe lives for the whole process, so a late signal never writes into
 * a closed (and maybe reused) descriptor. */
static void server_init_once(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv.ended, &ca);
	pthread_condattr_destroy(&ca);
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("event=server_init error=\"pipe: %s\"", strerror(errno));
	srv.pipe_r = p[0];
	atomic_store(&srv.pipe_w, p[1]);
}

static void server_poke(char what)
{
	int fd = atomic_load(&srv.pipe_w);
	if (fd >= 0) {
		ssize_t r = write(fd, &what, 1);
		(void)r; /* a full pipe already holds a wake-up */
	}
}

void server_request_stop(void)
{
	atomic_store(&srv.stop, true);
	server_poke('T');
}

void server_request_reload(void)
{
	atomic_store(&srv.reload, true);
	server_poke('H');
}

bool server_stopping(void)
{
	return atomic_load(&srv.stop);
}

static void server_on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGHUP)
		server_request_reload();
	else
		server_request_stop();
	errno = saved;
}

void server_stats_get(struct server_stats *r)
{
	r->accepted = atomic_load(&srv.accepted);
	r->rejected_limits = atomic_load(&srv.rejected);
	r->open = atomic_load(&srv.open_total);
}

uint64_t server_stats_open(const char *proto_name)
{
	for (size_t i = 0; i < SERVER_MAX_PROTOS; i++)
		if (srv.names[i][0] != '\0' && strcmp(srv.names[i], proto_name) == 0)
			return atomic_load(&srv.open[i]);
	return 0;
}

unsigned server_listener_port(const char *proto_name, size_t index)
{
	for (size_t i = 0; i < srv.n_listeners; i++) {
		const struct server_listener *l = &srv.listeners[i];
		if (l->index == index && strcmp(srv.names[l->proto], proto_name) == 0)
			return l->port;
	}
	return 0;
}

/* The config in force: server_run's, until a reload hook publishes a new
 * one with config_set_current(). */
static _Atomic(const struct config *) server_active_cfg;

static const struct config *server_config(void)
{
	return atomic_load(&server_active_cfg);
}

/* --- Binding. --- */

static int server_bind_fail(const char *proto, const struct config_listen_addr *a, const char *what,
                            const char **error_r)
{
	bool v6 = strchr(a->host, ':') != NULL;
	snprintf(server_errbuf, sizeof(server_errbuf), "listener %s: cannot bind %s%s%s:%s: %s",
	         proto, v6 ? "[" : "", a->host, v6 ? "]" : "", a->port, what);
	*error_r = server_errbuf;
	return -1;
}

static unsigned server_sock_port(int fd)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* One socket for one resolved address; -1 with errno set on failure. */
static int server_listen_ai(const struct addrinfo *ai)
{
	int fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* [::] must not take the IPv4 port too, so 0.0.0.0 can be bound beside it. */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int server_bind_addr(size_t proto, const struct config_listen_addr *a, size_t *index,
                            const char **error_r)
{
	const char *name = srv.names[proto];
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(a->host, a->port, &hints, &res);
	if (gai != 0)
		return server_bind_fail(name, a, gai_strerror(gai), error_r);
	int ret = 0;
	for (struct addrinfo *ai = res; ai != NULL && ret == 0; ai = ai->ai_next) {
		if (srv.n_listeners == SERVER_MAX_LISTENERS) {
			ret = server_bind_fail(name, a, "too many listen addresses", error_r);
			break;
		}
		int fd = server_listen_ai(ai);
		if (fd < 0) {
			ret = server_bind_fail(name, a, strerror(errno), error_r);
			break;
		}
		srv.listeners[srv.n_listeners++] = (struct server_listener){
		    .fd = fd, .proto = proto, .index = (*index)++, .port = server_sock_port(fd)};
		log_info("event=listen proto=%s addr=%s port=%u", name, a->host,
		         server_sock_port(fd));
	}
	freeaddrinfo(res);
	return ret;
}

static int server_bind_all(const char **error_r)
{
	for (size_t p = 0; p < srv.n_protos; p++) {
		struct config_listen_addr *addrs = NULL;
		size_t n = 0, index = 0;
		if (config_listen(srv.cfg, srv.protos[p].listen_key, &addrs, &n) < 0) {
			snprintf(server_errbuf, sizeof(server_errbuf),
			         "listener %s: invalid listen setting", srv.names[p]);
			*error_r = server_errbuf;
			return -1;
		}
		int r = 0;
		for (size_t i = 0; i < n && r == 0; i++)
			r = server_bind_addr(p, &addrs[i], &index, error_r);
		free(addrs);
		if (r < 0)
			return -1;
	}
	return 0;
}

static void server_close_listeners(void)
{
	for (size_t i = 0; i < srv.n_listeners; i++)
		close(srv.listeners[i].fd);
	srv.n_listeners = 0;
}

/* --- Connection bounds (caller holds srv.lock). --- */

static void server_ipkey(const struct sockaddr_storage *ss, struct server_ipkey *k)
{
	memset(k, 0, sizeof(*k));
	if (ss->ss_family == AF_INET) {
		memcpy(k->bytes, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		k->len = 4;
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(k->bytes, &a->s6_addr[12], 4);
			k->len = 4;
		} else {
			memcpy(k->bytes, a->s6_addr, 8);
			k->len = 8;
		}
	}
}

static struct server_ipcount **server_ip_slot(const struct server_ipkey *k)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < k->len; i++)
		h = (h ^ k->bytes[i]) * 16777619u;
	struct server_ipcount **pp = &srv.ip[h % SERVER_IP_BUCKETS];
	while (*pp != NULL &&
	       ((*pp)->key.len != k->len || memcmp((*pp)->key.bytes, k->bytes, k->len) != 0))
		pp = &(*pp)->next;
	return pp;
}

static uint64_t server_ip_count(const struct server_ipkey *k)
{
	struct server_ipcount **pp = server_ip_slot(k);
	return *pp != NULL ? (*pp)->count : 0;
}

static void server_ip_add(const struct server_ipkey *k, int delta)
{
	if (k->len == 0)
		return;
	struct server_ipcount **pp = server_ip_slot(k);
	if (*pp == NULL) {
		*pp = xcalloc(1, sizeof(**pp));
		(*pp)->key = *k;
	}
	(*pp)->count += (uint64_t)(int64_t)delta;
	if ((*pp)->count == 0) {
		struct server_ipcount *dead = *pp;
		*pp = dead->next;
		free(dead);
	}
}

/* --- Sessions. --- */

static void server_session_end(struct server_session *s)
{
	pthread_mutex_lock(&srv.lock);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv.sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	server_ip_add(&s->key, -1);
	atomic_fetch_sub(&srv.open[s->proto], 1);
	atomic_fetch_sub(&srv.open_total, 1);
	pthread_cond_broadcast(&srv.ended);
	pthread_mutex_unlock(&srv.lock);
	conn_free(&s->conn);
	free(s);
}

static void *server_session_main(void *arg)
{
	struct server_session *s = arg;
	struct conn *c = s->conn;
	const struct server_protocol *p = &srv.protos[s->proto];
	struct conn_limits limits;
	conn_limits_from_config(server_config(), true, &limits);
	conn_set_limits(c, &limits);
	log_set_session(conn_session_id(c));
	log_info("event=connect proto=%s peer=%s port=%u local_port=%u", srv.names[s->proto],
	         conn_peer_ip(c), conn_peer_port(c), conn_local_port(c));
	enum conn_status st = CONN_OK;
	if (p->implicit_tls)
		st = conn_tls_accept(c, NULL, limits.idle_timeout_ms);
	if (st == CONN_OK) {
		p->session(c, p->ctx);
		conn_flush(c);
	}
	log_info("event=disconnect proto=%s peer=%s duration_ms=%llu bytes_in=%llu bytes_out=%llu",
	         srv.names[s->proto], conn_peer_ip(c), (unsigned long long)conn_age_ms(c),
	         (unsigned long long)conn_bytes_in(c), (unsigned long long)conn_bytes_out(c));
	server_session_end(s);
	log_set_session(NULL);
	return NULL;
}

/* Turns a connection away without a thread and without blocking. */
static void server_reject(size_t proto, int fd, const struct sockaddr_storage *ss,
                          const char *reason)
{
	const struct server_protocol *p = &srv.protos[proto];
	atomic_fetch_add(&srv.rejected, 1);
	if (!p->implicit_tls && p->busy_reply != NULL) {
		ssize_t r =
		    send(fd, p->busy_reply, strlen(p->busy_reply), MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)r; /* best effort: the client is being turned away anyway */
	}
	close(fd);
	char ip[INET6_ADDRSTRLEN] = "local";
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
	log_warn("event=busy proto=%s peer=%s limit=%s", srv.names[proto], ip, reason);
}

static int server_spawn(struct server_session *s)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, SERVER_THREAD_STACK);
	pthread_attr_setguardsize(&attr, SERVER_THREAD_GUARD);
	pthread_t t;
	int e = pthread_create(&t, &attr, server_session_main, s);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		log_error("event=thread_failed proto=%s error=\"%s\"", srv.names[s->proto],
		          strerror(e));
		return -1;
	}
	return 0;
}

static void server_admit(size_t proto, int fd, const struct sockaddr_storage *ss)
{
	atomic_fetch_add(&srv.accepted, 1);
	struct server_ipkey key;
	server_ipkey(ss, &key);
	pthread_mutex_lock(&srv.lock);
	const char *over = NULL;
	if (atomic_load(&srv.open_total) >= srv.max_total)
		over = "connections";
	else if (key.len > 0 && server_ip_count(&key) >= srv.max_per_ip)
		over = "connections_per_ip";
	if (over != NULL) {
		pthread_mutex_unlock(&srv.lock);
		server_reject(proto, fd, ss, over);
		return;
	}
	struct server_session *s = xcalloc(1, sizeof(*s));
	s->conn = conn_new(fd, srv.names[proto]);
	s->proto = proto;
	s->key = key;
	s->next = srv.sessions;
	if (srv.sessions != NULL)
		srv.sessions->prev = s;
	srv.sessions = s;
	server_ip_add(&key, 1);
	atomic_fetch_add(&srv.open[proto], 1);
	atomic_fetch_add(&srv.open_total, 1);
	pthread_mutex_unlock(&srv.lock);
	if (server_spawn(s) < 0) {
		const char *busy = srv.protos[proto].busy_reply;
		if (!srv.protos[proto].implicit_tls && busy != NULL) {
			ssize_t r = send(fd, busy, strlen(busy), MSG_DONTWAIT | MSG_NOSIGNAL);
			(void)r; /* best effort, as in server_reject */
		}
		server_session_end(s);
	}
}

/* Accepts what is waiting on one listener; false when out of descriptors. */
static bool server_accept_burst(const struct server_listener *l)
{
	for (int i = 0; i < SERVER_ACCEPT_BURST; i++) {
		struct sockaddr_storage ss = {0};
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd >= 0) {
			if (len == 0 || len > sizeof(ss))
				ss.ss_family = AF_UNSPEC;
			server_admit(l->proto, fd, &ss);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_error("event=accept_failed proto=%s error=\"%s\"", srv.names[l->proto],
			          strerror(errno));
			return false;
		}
		if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO)
			break; /* EAGAIN: drained */
	}
	return true;
}

/* --- Signals, reload, the accept loop. --- */

struct server_sigsave {
	struct sigaction term, intr, hup, pipe;
};

static void server_signals_install(struct server_sigsave *save)
{
	struct sigaction sa = {.sa_handler = server_on_signal};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, &save->term);
	sigaction(SIGINT, &sa, &save->intr);
	sigaction(SIGHUP, &sa, &save->hup);
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, &save->pipe);
}

static void server_signals_restore(const struct server_sigsave *save)
{
	sigaction(SIGTERM, &save->term, NULL);
	sigaction(SIGINT, &save->intr, NULL);
	sigaction(SIGHUP, &save->hup, NULL);
	/* SIGPIPE stays ignored: a late write to a closed socket must not kill us. */
}

static void server_read_limits(const struct config *cfg)
{
	pthread_mutex_lock(&srv.lock);
	srv.max_total = config_uint(cfg, CFG_LIMITS_CONNECTIONS);
	srv.max_per_ip = config_uint(cfg, CFG_LIMITS_CONNECTIONS_PER_IP);
	pthread_mutex_unlock(&srv.lock);
}

static void server_do_reload(const struct server_hooks *hooks)
{
	log_info("event=reload");
	const struct config *before = config_current();
	if (hooks != NULL && hooks->reload != NULL)
		hooks->reload(hooks->arg);
	if (config_current() != before)
		atomic_store(&server_active_cfg, config_current());
	const struct config *cfg = server_config();
	server_read_limits(cfg);
	const char *err;
	tls_server_reload(cfg, &err); /* logs; the old context stays on failure */
}

static void server_drain_pipe(void)
{
	char tmp[64];
	while (read(srv.pipe_r, tmp, sizeof(tmp)) > 0)
		;
}

static void server_accept_loop(const struct server_hooks *hooks)
{
	struct pollfd pfd[SERVER_MAX_LISTENERS + 1];
	bool backoff = false;
	while (!atomic_load(&srv.stop)) {
		/* Out of descriptors: the listener stays readable, so pause
		 * (watching only the pipe) to let sessions end. */
		for (size_t i = 0; i < srv.n_listeners; i++)
			pfd[i] = (struct pollfd){.fd = backoff ? -1 : srv.listeners[i].fd,
			                         .events = POLLIN};
		pfd[srv.n_listeners] = (struct pollfd){.fd = srv.pipe_r, .events = POLLIN};
		int r = poll(pfd, srv.n_listeners + 1, backoff ? 100 : -1);
		backoff = false;
		if (r < 0 && errno != EINTR)
			fatal("event=poll_failed error=\"%s\"", strerror(errno));
		if (pfd[srv.n_listeners].revents != 0)
			server_drain_pipe();
		if (atomic_exchange(&srv.reload, false))
			server_do_reload(hooks);
		for (size_t i = 0; r > 0 && i < srv.n_listeners && !atomic_load(&srv.stop); i++)
			if (pfd[i].revents != 0 && !server_accept_burst(&srv.listeners[i]))
				backoff = true;
	}
}

/* --- Shutdown. --- */

/* Waits (holding srv.lock) until no session is left or deadline passes. */
static void server_wait_sessions(uint64_t deadline)
{
	struct timespec ts = clock_monotonic_at(deadline);
	while (srv.sessions != NULL && clock_monotonic_ms() < deadline)
		pthread_cond_timedwait(&srv.ended, &srv.lock, &ts);
}

static void server_shutdown(uint32_t grace_ms)
{
	server_close_listeners();
	conn_set_stopping(true); /* wakes idle sessions: they say goodbye and end */
	pthread_mutex_lock(&srv.lock);
	log_info("event=shutdown sessions=%llu grace_ms=%u",
	         (unsigned long long)atomic_load(&srv.open_total), grace_ms);
	server_wait_sessions(clock_monotonic_ms() + grace_ms);
	if (srv.sessions != NULL) {
		log_warn("event=shutdown_forced sessions=%llu",
		         (unsigned long long)atomic_load(&srv.open_total));
		for (struct server_session *s = srv.sessions; s != NULL; s = s->next)
			conn_shutdown_force(s->conn);
		server_wait_sessions(clock_monotonic_ms() + 1000);
	}
	pthread_mutex_unlock(&srv.lock);
}

static int server_setup(const struct config *cfg, const struct server_protocol *protos, size_t n,
                        const char **error_r)
{
	if (n > SERVER_MAX_PROTOS) {
		*error_r = "too many protocols";
		return -1;
	}
	srv.cfg = cfg;
	atomic_store(&server_active_cfg, cfg);
	memcpy(srv.protos, protos, n * sizeof(*protos));
	srv.n_protos = n;
	srv.n_listeners = 0;
	memset(srv.names, 0, sizeof(srv.names));
	for (size_t i = 0; i < n; i++) {
		snprintf(srv.names[i], sizeof(srv.names[i]), "%s", protos[i].name);
		atomic_store(&srv.open[i], 0);
	}
	atomic_store(&srv.stop, false);
	atomic_store(&srv.reload, false);
	conn_set_stopping(false);
	server_drain_pipe();
	server_read_limits(cfg);
	return 0;
}

/* Makes sure a TLS context exists before privileges are dropped: the keys
 * may be readable by root only. */
static int server_tls_ready(const char **error_r)
{
	struct ssl_ctx_st *ctx = tls_server_ctx_ref();
	if (ctx != NULL) {
		tls_ctx_unref(&ctx);
		return 0;
	}
	return tls_server_setup(srv.cfg, error_r);
}

int server_run(const struct config *cfg, const struct server_protocol *protos, size_t n_protos,
               const struct server_hooks *hooks, const char **error_r)
{
	pthread_once(&server_once, server_init_once);
	if (server_setup(cfg, protos, n_protos, error_r) < 0)
		return -1;
	struct server_sigsave save;
	server_signals_install(&save);
	int ret = server_bind_all(error_r);
	if (ret == 0)
		ret = server_tls_ready(error_r);
	if (ret == 0 && hooks != NULL && hooks->after_bind != NULL &&
	    hooks->after_bind(hooks->arg) < 0) {
		*error_r = "start-up hook failed";
		ret = -1;
	}
	if (ret == 0) {
		log_info("event=started listeners=%zu", srv.n_listeners);
		server_accept_loop(hooks);
		uint32_t grace = hooks != NULL && hooks->grace_ms != 0 ? hooks->grace_ms
		                                                       : SERVER_GRACE_DEFAULT_MS;
		server_shutdown(grace);
		log_info("event=stopped");
	} else {
		server_close_listeners();
	}
	server_signals_restore(&save);
	return ret;
}
