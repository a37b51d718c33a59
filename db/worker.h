/* worker.h - a background thread that works in rounds and sleeps between
 * them until it is told to stop (the indexer, the store cleanup). */
#ifndef ROOST_DB_WORKER_H
#define ROOST_DB_WORKER_H

#include <stdbool.h>

struct worker;

/* One round of work; returns how long to sleep before the next, in ms. */
typedef unsigned (*worker_round_fn)(struct worker *w, void *arg);

/* Starts a thread that logs as session and runs round(w, arg) until
 * worker_stop(); the first round after first_ms. NULL with a malloc'd
 * *error_r on failure. */
struct worker *worker_start(const char *session, unsigned first_ms, worker_round_fn round,
                            void *arg, char **error_r);

/* True once worker_stop() was called: a long round should end early. */
bool worker_stopping(struct worker *w);

/* Asks the thread to stop, waits for the round in flight to end, frees
 * the worker and sets *w to NULL. */
void worker_stop(struct worker **w);

#endif
