/* notify-batch.h - mailbox change notifications of deliveries, sent in
 * batches by one thread.
 *
 * Every NOTIFY takes a database-wide lock in its transaction's pre-commit
 * (PostgreSQL's async.c), so deliveries that each sent their own waited
 * for one another: it was the most frequent wait of 16 connections
 * delivering at once. Instead store_deliver() hands the ids of the
 * mailboxes it changed to this sender, which sends whatever has gathered
 * in one transaction (one notification per mailbox): at once when it
 * was idle, else at most every few milliseconds. Listeners (notifier.h)
 * get the same notifications, a moment later at most. Without a running sender (the
 * CLI, tests) deliveries notify by themselves. */
#ifndef ROOST_DB_NOTIFY_BATCH_H
#define ROOST_DB_NOTIFY_BATCH_H

#include "pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ids waiting at most; past this a delivery notifies by itself. */
#define NOTIFY_BATCH_MAX 65536

/* Starts the sender with connections borrowed from pool. -1 with a
 * malloc'd *error_r if the thread cannot start (or one runs already). */
int notify_batch_start(struct db_pool *pool, char **error_r);

/* Sends what is queued, then stops the sender. */
void notify_batch_stop(void);

/* Queues notifications for these mailboxes. False when no sender runs or
 * the queue is full: then the caller must notify by itself. */
bool notify_batch_add(const int64_t *mailbox_ids, size_t n);

/* Sends notifications for these mailboxes on conn at once (the order of
 * ids may change). */
void notify_now(PGconn *conn, int64_t *mailbox_ids, size_t n);

/* Whether a sender runs now (a hint: notify_batch_add() decides). */
bool notify_batch_running(void);

#endif
