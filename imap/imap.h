/* imap.h - the IMAP server (RFC 3501 IMAP4rev1 and RFC 9051 IMAP4rev2 with
 * the extensions listed in docs/protocols.md).
 *
 * Sessions keep a view of the selected mailbox (message sequence numbers,
 * UIDs, flags) and bring it up to date from the store when the notifier
 * says the mailbox changed, reporting EXISTS, FETCH and EXPUNGE/VANISHED
 * only where RFC 3501 section 7.4.1 allows. The database is borrowed per
 * command, never for the whole session. */
#ifndef ROOST_IMAP_H
#define ROOST_IMAP_H

#include "config.h"
#include "directory.h"
#include "notifier.h"
#include "pool.h"

struct conn;
struct imap_server;

/* Listener's answer when the connection bounds are reached. */
#define IMAP_BUSY_REPLY "* BYE [UNAVAILABLE] Too many connections, try later\r\n"

/* Creates the state shared by every IMAP session. cfg, pool, dir and
 * notifier (may be NULL: IDLE then polls) are borrowed and must outlive the
 * server. -1 with a static message in *error_r on failure. */
int imap_server_new(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                    struct notifier *notifier, struct imap_server **srv_r, const char **error_r);
/* Sets *srv to NULL. Call only when no session runs any more. */
void imap_server_free(struct imap_server **srv);

/* One client connection on its own thread; ctx is the struct imap_server.
 * On the imaps listener the TLS handshake is already done. Returns when the
 * client logs out, times out or misbehaves; the runtime frees the conn. */
void imap_session(struct conn *c, void *ctx);

#endif
