/* indexer.h - the search index of messages, built off the delivery path.
 *
 * Delivery notes each new message's id in search_pending. The indexer
 * takes the message's text from its stored blob (the MIME parser's
 * searchable text, cut at 256 KB) and files it in message_search in lower
 * case (core/search-words.h's search_lower()), with its distinct words and
 * a lower-case copy of its header fields; a trigram (pg_trgm) GIN index on
 * the words serves IMAP SEARCH BODY/TEXT. That happens within moments of
 * the commit; several nodes may index at once (batches are claimed with
 * FOR UPDATE SKIP LOCKED). Before a BODY/TEXT search, the mailbox's
 * messages still pending are filed by the search itself
 * (store_index_mailbox()), so none is missed. */
#ifndef ROOST_DB_INDEXER_H
#define ROOST_DB_INDEXER_H

#include "mime.h"
#include "pool.h"

#include <stdint.h>

struct indexer;

/* Indexes up to batch pending messages, in one transaction, parsing them
 * with limits (NULL: the defaults; the search text is always cut at
 * 256 KB). Returns how many were claimed, or -1 (logged). */
int store_index_pending(PGconn *conn, unsigned batch, const struct mime_limits *limits);

/* Inside the caller's transaction: indexes every pending message with an
 * entry in mailbox_id, waiting for those another indexer holds. Returns
 * how many it claimed, or -1 (logged; the caller rolls back). */
int store_index_mailbox(PGconn *conn, int64_t mailbox_id, const struct mime_limits *limits);

/* Starts a thread that calls store_index_pending() (with limits, copied;
 * NULL for the defaults) with a connection borrowed from pool for each batch, right after a full
 * batch and every interval_ms otherwise. Deliveries come first: while this process is delivering
 * (one in the last INDEXER_QUIET_MS), indexing waits, but never longer than INDEXER_MAX_DEFER_MS;
 * then it indexes the whole backlog before it waits again, so the index stays seconds behind at
 * most, even under sustained load. NULL with a malloc'd *error_r on failure. */
struct indexer *indexer_start(struct db_pool *pool, unsigned interval_ms,
                              const struct mime_limits *limits, char **error_r);
#define INDEXER_QUIET_MS     50
#define INDEXER_MAX_DEFER_MS 2000

/* Called by store_deliver(): a delivery just ended (any thread). */
void indexer_note_delivery(void);

/* Stops the thread (after the batch in flight) and sets *ix to NULL. */
void indexer_stop(struct indexer **ix);

#endif
