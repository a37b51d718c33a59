/* pool.h - the PostgreSQL connection pool.
 *
 * Sessions borrow a connection per unit of work (one command, one SMTP
 * transaction) and give it back at once (DESIGN.md). Borrowing blocks until a
 * connection is free or the timeout passes. A connection returned in a bad
 * state (broken, or inside a transaction) is reset or replaced, so a
 * borrower always gets a healthy idle connection. */
#ifndef ROOST_DB_POOL_H
#define ROOST_DB_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>

struct db_pool;

/* Opens up to size connections to conninfo (at least one is opened now to
 * report errors early). On error returns -1 with a static or malloc'd
 * message in *error_r (free with free()). */
int db_pool_create(const char *conninfo, unsigned size, struct db_pool **pool_r, char **error_r);
/* Closes every connection; waits for none. Sets *pool to NULL. */
void db_pool_destroy(struct db_pool **pool);
/* A connection for exclusive use, or NULL if none became free within
 * timeout_ms or the server is unreachable (logged). */
PGconn *db_pool_borrow(struct db_pool *pool, unsigned timeout_ms);
/* Gives the connection back and sets *conn to NULL. */
void db_pool_return(struct db_pool *pool, PGconn **conn);
/* The conninfo string the pool was created with. */
const char *db_pool_conninfo(const struct db_pool *pool);

/* Helpers for the common shapes of unit of work. Each returns 0 on success,
 * -1 on failure (logged with the statement's name and the SQLSTATE). */
int db_begin(PGconn *conn);
int db_commit(PGconn *conn);
void db_rollback(PGconn *conn);
/* PQexecParams with text parameters; the result must be PQclear'd. Returns
 * NULL (logged) unless the status is PGRES_TUPLES_OK or PGRES_COMMAND_OK. */
PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params);
/* After PQpipelineSync(): reads every answer up to the sync and leaves
 * pipeline mode. 0 if every statement succeeded; -1 otherwise (the first
 * failure logged as what), and then also when a statement could not be
 * queued and the sync was never sent. The transaction, if any, is the
 * caller's to commit or roll back. */
int db_pipeline_finish(PGconn *conn, const char *what);
/* SQLSTATE of the last failure on this thread ("" if none), e.g. "23505". */
const char *db_last_sqlstate(void);

#endif
