#include "prepared.h"

#include "pool.h"
#include "xalloc.h"

#include <libpq-events.h>
#include <stdlib.h>
#include <string.h>

struct prepared_conn {
	unsigned bits[DB_PREPARED_SETS];
};

static int prepared_event(PGEventId id, void *info, void *pass)
{
	(void)pass;
	switch (id) {
	case PGEVT_REGISTER: {
		PGEventRegister *e = info;
		return PQsetInstanceData(e->conn, prepared_event,
		                         xcalloc(1, sizeof(struct prepared_conn)));
	}
	case PGEVT_CONNRESET: {
		PGEventConnReset *e = info;
		struct prepared_conn *p = PQinstanceData(e->conn, prepared_event);
		if (p != NULL)
			memset(p->bits, 0, sizeof(p->bits));
		return 1;
	}
	case PGEVT_CONNDESTROY: {
		PGEventConnDestroy *e = info;
		free(PQinstanceData(e->conn, prepared_event));
		return 1;
	}
	default:
		return 1;
	}
}

unsigned *db_prepared_bits(PGconn *conn, enum db_prepared_set set)
{
	struct prepared_conn *p = PQinstanceData(conn, prepared_event);
	if (p == NULL && PQregisterEventProc(conn, prepared_event, "roost_prepared", NULL) == 1)
		p = PQinstanceData(conn, prepared_event);
	return p != NULL ? &p->bits[set] : NULL;
}

bool db_prepare_once(PGconn *conn, unsigned *bits, unsigned i, const char *name, const char *sql,
                     int nparams)
{
	if (*bits & (1u << i))
		return true;
	PGresult *res = PQprepare(conn, name, sql, nparams, NULL);
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	bool ok =
	    PQresultStatus(res) == PGRES_COMMAND_OK || (st != NULL && strcmp(st, "42P05") == 0);
	PQclear(res);
	if (ok)
		*bits |= 1u << i;
	return ok;
}

static bool sqlstate_is(const PGresult *res, const char *state)
{
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return st != NULL && strcmp(st, state) == 0;
}

PGresult *db_exec_prepared(PGconn *conn, enum db_prepared_set set, unsigned i,
                           const struct db_stmt *stmt, const char *const *params)
{
	unsigned *prepared = db_prepared_bits(conn, set);
	for (int attempt = 0; prepared != NULL && attempt < 2; attempt++) {
		if (!db_prepare_once(conn, prepared, i, stmt->name, stmt->sql, stmt->nparams))
			break;
		PGresult *res =
		    PQexecPrepared(conn, stmt->name, stmt->nparams, params, NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
			return res;
		bool lost = sqlstate_is(res, "26000");
		PQclear(res);
		if (!lost)
			break;
		*prepared &= ~(1u << i);
	}
	return db_exec(conn, stmt->sql, stmt->nparams, params);
}
