/* pop3.h - the POP3 server (RFC 1939, RFC 2449 CAPA and response codes,
 * RFC 2595 STLS, RFC 5034 AUTH PLAIN/LOGIN).
 *
 * The maildrop is the account's INBOX as the store shows it at login.
 * UIDLs are "<uidvalidity>.<uid>": both stored, stable across sessions and
 * restarts, and untouched by flag changes. DELE marks; the deletions happen
 * at QUIT, in one store_expunge() transaction that leaves ordinary expunge
 * tombstones (and a NOTIFY) for IMAP. A session that ends any other way
 * changes nothing.
 *
 * One POP3 session per maildrop at a time: the lock is an in-process set of
 * mailbox ids plus a PostgreSQL session-level advisory lock taken on one
 * dedicated connection per server (not a pooled one), so it is exclusive
 * across nodes and is released by PostgreSQL when the process dies; a
 * session's lock is released when the session function returns, whatever
 * the way out. A second login gets "-ERR [IN-USE]". */
#ifndef ROOST_POP3_H
#define ROOST_POP3_H

#include "config.h"
#include "directory.h"
#include "pool.h"

struct conn;
struct pop3_server;

/* Listener's answer when the connection bounds are reached. */
#define POP3_BUSY_REPLY "-ERR [SYS/TEMP] Too many connections, try later\r\n"

/* Creates the server state shared by every POP3 session. Validates
 * [pop3] expire ("NEVER", any case, or a number of days up to 36500);
 * -1 with a static message in *error_r if it is malformed. cfg, pool and
 * dir are borrowed and must outlive the server. */
int pop3_server_new(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                    struct pop3_server **srv_r, const char **error_r);
/* Closes the lock connection (releasing any advisory lock still held).
 * Sets *srv to NULL. Call only when no session runs any more. */
void pop3_server_free(struct pop3_server **srv);

/* One client connection, on its own thread; ctx is the struct pop3_server.
 * On an implicit-TLS listener (pop3s) the handshake is already done when
 * conn_is_tls(c) holds at entry. Returns when the client quits, times out
 * or misbehaves; the runtime frees the conn. */
void pop3_session(struct conn *c, void *ctx);

#endif
