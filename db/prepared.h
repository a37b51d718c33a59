/* prepared.h - which named statements a pooled connection has prepared.
 *
 * A module that prepares statements once per connection keeps a bit per
 * statement here, with the PGconn itself: a libpq event procedure holds the
 * bits, clears them when PQreset() loses the session's statements, and
 * frees them with the connection. Each module has its own set of bits. */
#ifndef ROOST_DB_PREPARED_H
#define ROOST_DB_PREPARED_H

#include <libpq-fe.h>
#include <stdbool.h>

enum db_prepared_set {
	DB_PREPARED_STORE,     /* store_deliver() (db/store-deliver.c) */
	DB_PREPARED_DIRECTORY, /* the local directory's RCPT lookups */
	DB_PREPARED_INDEXER,   /* the search indexer (db/indexer.c) */
	DB_PREPARED_NOTIFY,    /* the deliveries' notifications (db/notify-batch.c) */
	DB_PREPARED_SETS
};

/* The set's bits for conn (bit i: statement i is prepared), zero at
 * first; valid as long as conn. NULL if the event procedure cannot be
 * registered: then prepare nothing and send statement texts. */
unsigned *db_prepared_bits(PGconn *conn, enum db_prepared_set set);

/* Prepares statement i of a set (name, sql, nparams typed by the SQL's
 * casts) on conn unless bits says it is; 42P05 (prepared already: our
 * memory of it was lost, not the server's) counts as done. Outside
 * pipeline mode. False if it could not be prepared. */
bool db_prepare_once(PGconn *conn, unsigned *bits, unsigned i, const char *name, const char *sql,
                     int nparams);

/* One statement of a set, as db_prepare_once() and db_exec() take it. */
struct db_stmt {
	const char *name;
	const char *sql;
	int nparams;
};

/* Runs statement i of a set prepared on conn (preparing it the first
 * time), with text parameters; like db_exec(): the result if it succeeded,
 * else NULL with the failure noted. A statement the server no longer knows
 * (26000, e.g. after DISCARD ALL) is prepared again once; any other failure
 * is repeated as plain text through db_exec(), which logs it and keeps its
 * SQLSTATE: failures are rare, and the text also runs where preparing
 * does not. */
PGresult *db_exec_prepared(PGconn *conn, enum db_prepared_set set, unsigned i,
                           const struct db_stmt *stmt, const char *const *params);

#endif
