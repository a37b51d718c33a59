/* indexer.h - the full-text index of messages, built off the delivery path.
 *
 * Delivery stores the decoded search text (messages.search_text); the
 * indexer turns it into messages.search (tsvector, 'simple' configuration,
 * GIN index) within a moment of the commit. Several nodes may index at once:
 * batches are claimed with FOR UPDATE SKIP LOCKED. Until a message is
 * indexed its search is NULL, and IMAP SEARCH treats it as a candidate and
 * checks the substring on search_text, so no result is ever missed. */
#ifndef ROOST_DB_INDEXER_H
#define ROOST_DB_INDEXER_H

#include "pool.h"

struct indexer;

/* Indexes up to batch messages without a vector, in one transaction.
 * Returns how many were indexed, or -1 (logged). */
int store_index_pending(PGconn *conn, unsigned batch);

/* Starts a thread that calls store_index_pending() with a connection
 * borrowed from pool for each batch, right after a full batch and every
 * interval_ms otherwise. Deliveries come first: while this process is
 * delivering (one in the last INDEXER_QUIET_MS), indexing waits, but never
 * longer than INDEXER_MAX_DEFER_MS; then it indexes the whole backlog before
 * it waits again, so the index stays seconds behind at most, even under
 * sustained load. NULL with a malloc'd *error_r on failure. */
struct indexer *indexer_start(struct db_pool *pool, unsigned interval_ms, char **error_r);
#define INDEXER_QUIET_MS     50
#define INDEXER_MAX_DEFER_MS 2000

/* Called by store_deliver(): a delivery just ended (any thread). */
void indexer_note_delivery(void);

/* Stops the thread (after the batch in flight) and sets *ix to NULL. */
void indexer_stop(struct indexer **ix);

#endif
