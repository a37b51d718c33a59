/* smtp.h - the SMTP server: inbound MX (port 25), submission (587, STARTTLS)
 * and submissions (465, implicit TLS), with local delivery through the
 * store and remote recipients handed to the outbound queue (outbound.h).
 *
 * `roost serve` (core/cli-serve.c) creates one struct smtp_server, adds one
 * server_protocol row per listener with smtp_session() and the listener's
 * ctx, starts the queue runner once privileges are dropped, and frees the
 * server after server_run() returns. What each listener allows:
 *   MX:          no AUTH; only recipients in local domains (554 5.7.1
 *                otherwise: never an open relay).
 *   submission:  AUTH PLAIN/LOGIN after STARTTLS (or on loopback when
 *                [server] allow_plaintext_loopback), required before MAIL;
 *                any recipient; only senders the user owns.
 *   submissions: the same over implicit TLS. */
#ifndef ROOST_SMTP_H
#define ROOST_SMTP_H

#include "config.h"
#include "conn.h"
#include "directory.h"
#include "pool.h"

struct smtp_server;

enum smtp_listener { SMTP_LISTENER_MX, SMTP_LISTENER_SUBMISSION, SMTP_LISTENER_SUBMISSIONS };

/* The reply of a listener past its connection bounds (core/server.h). */
#define SMTP_BUSY_REPLY "421 4.3.2 Too many connections, try later\r\n"

/* cfg, pool and dir must outlive the server. Settings are read from cfg when
 * each session starts (config_current() after a reload). -1 with a static
 * message in *error_r. */
int smtp_server_new(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                    struct smtp_server **srv_r, const char **error_r);
/* The ctx of that listener's server_protocol row; valid as long as srv. */
void *smtp_server_listener_ctx(struct smtp_server *srv, enum smtp_listener which);
/* One SMTP session on c (ctx from smtp_server_listener_ctx()); returns when
 * the client quits or is disconnected. The runtime frees c. */
void smtp_session(struct conn *c, void *ctx);
/* Starts the outbound queue runner (call after dropping privileges). */
int smtp_server_start_queue(struct smtp_server *srv, const char **error_r);
/* Stops the queue runner and frees the server; sets *srv to NULL. */
void smtp_server_free(struct smtp_server **srv);

#endif
