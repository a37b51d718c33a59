/* outbound.h - the outbound side of SMTP: the durable queue of messages for
 * remote recipients and the runner threads that deliver it.
 *
 * The SMTP server hands every accepted message with remote recipients to
 * outbound_enqueue(); `roost serve` starts the runners once privileges are
 * dropped (smtp_server_start_queue) and stops them at shutdown. Queue rows
 * live in PostgreSQL (tables queue, queue_recipients): a crash or restart
 * loses nothing, and runners on any number of nodes share one queue
 * (SELECT ... FOR UPDATE SKIP LOCKED). */
#ifndef ROOST_SMTP_OUTBOUND_H
#define ROOST_SMTP_OUTBOUND_H

#include "config.h"
#include "directory.h"
#include "pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One message for the queue. Nothing is kept after the call returns. */
struct outbound_message {
	const char *sender;            /* envelope sender; "" is the null sender */
	const char *const *recipients; /* nrecipients remote addresses */
	size_t nrecipients;
	/* DSN (RFC 3461) per recipient, parallel to recipients; either array,
	 * or any element, may be NULL (absent). notify: the NOTIFY value as a
	 * comma-separated list of NEVER, SUCCESS, FAILURE, DELAY (e.g.
	 * "SUCCESS,FAILURE"); orcpt: the ORCPT value "addr-type;address". */
	const char *const *notify;
	const char *const *orcpt;
	const char *envid;   /* DSN ENVID, decoded; NULL or "" when absent */
	const char *dsn_ret; /* "FULL", "HDRS" or NULL */
	int64_t account_id;  /* the authenticated sender's account, 0 if none */
	bool smtputf8;       /* MAIL FROM ... SMTPUTF8 was given */
	/* The raw message as accepted (CRLF line ends), with Received: already
	 * added; not dot-stuffed. */
	const void *data;
	size_t len;
};

/* Signs the message with DKIM when the sender's domain (or else the From:
 * header's domain) is local and has a key, stores the (signed) message as a
 * content-addressed blob, and the queue row and its recipient rows, all in
 * one transaction; then wakes the runners (NOTIFY roost_queue, in the same
 * transaction). Returns 0 with the new queue id in *queue_id_r (may be
 * NULL), or -1 with a static message in *error_r (a temporary failure: the
 * caller answers 451 4.3.0). */
int outbound_enqueue(struct db_pool *pool, const struct outbound_message *m, int64_t *queue_id_r,
                     const char **error_r);

/* Same, on a connection the caller has already borrowed and on which it
 * runs its own transaction (BEGIN done by the caller, COMMIT after). Lets
 * local delivery and the queue commit together. */
int outbound_enqueue_conn(PGconn *conn, const struct outbound_message *m, int64_t *queue_id_r,
                          const char **error_r);

struct queue_runner;

/* Starts [queue] runners delivery threads. They LISTEN roost_queue and also
 * poll next_attempt_at, claim due rows with FOR UPDATE SKIP LOCKED, deliver
 * them (MX lookup or [smtp] relayhost), retry with backoff, send DSNs.
 * cfg, pool and dir must outlive the runner. Returns 0 with *qr_r set, or
 * -1 with a static message in *error_r. */
int queue_runner_start(const struct config *cfg, struct db_pool *pool, struct directory *dir,
                       struct queue_runner **qr_r, const char **error_r);

/* Stops the runners promptly (at SIGTERM) and frees; sets *qr to NULL.
 * A delivery in flight either records its result or is left to be retried:
 * each recipient is marked sent right after the remote 250, so none is
 * delivered twice. NULL is allowed. */
void queue_runner_stop(struct queue_runner **qr);

#endif
