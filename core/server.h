/* server.h - listeners and the thread-per-connection runtime.
 *
 * Each protocol is one row of a table handed to server_run(). server_run()
 * binds every address of each row's CONFIG_LISTEN setting, calls the
 * after_bind hook (read keys, drop privileges), then accepts until
 * server_request_stop(), SIGTERM or SIGINT. Every accepted socket becomes a
 * struct conn (core/conn.h) served by its own detached thread that calls the
 * row's session function; when it returns, the runtime flushes, logs
 * event=disconnect and frees the conn (the session must not free it).
 *
 * Bounds: [limits] connections in total and connections_per_ip (an IPv6
 * client counts per /64). Past a bound the listener writes the row's
 * busy_reply (not on implicit-TLS listeners, which just close) and closes,
 * without starting a thread.
 *
 * TLS: if no server context is installed yet when the listeners are bound,
 * server_run calls tls_server_setup(cfg) itself (before after_bind, so the
 * keys are read while still root).
 *
 * Shutdown: stop accepting (listeners closed), conn_set_stopping(true) which
 * wakes idle sessions at once with CONN_STOPPING and lets busy ones finish
 * the command in flight, then wait up to grace_ms for the session threads;
 * any still running are then cut off (shutdown both ways) and waited for one
 * more second. SIGHUP calls the reload hook, then re-reads [limits]
 * connections and connections_per_ip and reloads the TLS server context
 * (core/tls.h) from the config in force: the cfg given to server_run, or
 * the one a reload hook published with config_set_current(). New sessions
 * get their preauth limits from it too. SIGPIPE is ignored. Signal handlers are installed for the
 * duration of server_run and the previous ones restored afterwards.
 *
 * The protocol table is copied; each row's ctx (and name and busy_reply)
 * must stay valid until every session has ended: normally when server_run
 * returns, but a session cut off at the end of the grace period may still
 * be unwinding then, so keep them until exit if that matters. */
#ifndef ROOST_SERVER_H
#define ROOST_SERVER_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

struct server_protocol {
	const char *name;           /* "imap"; session id prefix and log proto= */
	enum config_key listen_key; /* a CONFIG_LISTEN key; empty value: not bound */
	bool implicit_tls;          /* TLS handshake (preauth timeout) first */
	/* Runs on the connection's own thread. The conn starts with the
	 * preauth limits of conn_limits_from_config(). */
	void (*session)(struct conn *c, void *ctx);
	const char *busy_reply; /* e.g. "421 4.3.2 Too busy, try later\r\n" */
	void *ctx;
};

struct server_hooks {
	/* After all listeners are bound, before accepting (read keys, drop
	 * privileges). Returning -1 makes server_run fail. May be NULL. */
	int (*after_bind)(void *arg);
	/* On SIGHUP or server_request_reload(), on the accept thread, before
	 * the TLS context is reloaded. May be NULL. */
	void (*reload)(void *arg);
	void *arg;
	/* How long sessions get to finish at shutdown; 0 means 10000. */
	uint32_t grace_ms;
};

/* Runs the listeners until stopped. cfg gives [limits] and the listen
 * addresses. Returns 0 after a clean stop, or -1 with *error_r (a static or
 * thread-local message naming the listener and address, e.g.
 * "listener imap: cannot bind 0.0.0.0:143: Address already in use") if
 * binding, the hook or the TLS set-up fails. Only one server_run at a time. */
int server_run(const struct config *cfg, const struct server_protocol *protos, size_t n_protos,
               const struct server_hooks *hooks, const char **error_r);
/* Ask server_run to stop / reload; async-signal-safe, callable from any
 * thread, also before server_run has finished binding. */
void server_request_stop(void);
void server_request_reload(void);
/* True once a stop was requested (sessions may check it between steps). */
bool server_stopping(void);

/* Counters for /metrics and status; readable at any time. */
struct server_stats {
	uint64_t accepted;        /* connections accepted since start */
	uint64_t rejected_limits; /* turned away by connections / per-IP bounds */
	uint64_t open;            /* sessions running now, all protocols */
};
void server_stats_get(struct server_stats *r);
/* Sessions of protocol name running now (0 if unknown). */
uint64_t server_stats_open(const char *proto_name);

/* Port a listener of protocol name is bound to (index-th address of its
 * listen setting), or 0. Valid between after_bind and server_run's return. */
unsigned server_listener_port(const char *proto_name, size_t index);

#endif
