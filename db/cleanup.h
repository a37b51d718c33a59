/* cleanup.h - reclaims the space of deleted mail: a thread that runs
 * store_gc() every [database] cleanup_interval, the first time one
 * interval after the start. A run ends early (between batches) when the
 * thread is stopped. */
#ifndef ROOST_DB_CLEANUP_H
#define ROOST_DB_CLEANUP_H

#include "pool.h"

struct store_cleanup;

/* NULL with a malloc'd *error_r on failure. */
struct store_cleanup *store_cleanup_start(struct db_pool *pool, unsigned interval_s,
                                          char **error_r);

/* Stops the thread (ending a run in flight after its batch) and sets *c
 * to NULL. */
void store_cleanup_stop(struct store_cleanup **c);

#endif
