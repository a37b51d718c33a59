/* indexer.h - the search index of messages, built off the delivery path.
 *
 * Delivery stores the decoded search text in search_pending, which has no
 * index but its key; the indexer moves it, with a copy of the message's
 * header fields, into message_search, where trigram (pg_trgm) GIN indexes
 * serve IMAP SEARCH BODY/TEXT, within a moment of the commit. Several nodes
 * may index at once: batches are claimed with FOR UPDATE SKIP LOCKED. SEARCH
 * reads both tables, so a message not indexed yet is still found. */
#ifndef ROOST_DB_INDEXER_H
#define ROOST_DB_INDEXER_H

#include "pool.h"

struct indexer;

/* Indexes up to batch pending messages, in one transaction.
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
